"""Outbox messages are typed: every row the writers queue (and every row queued before)
decodes into its message and encodes back to the same JSON, and the bot renders each kind
through its registry, unknown kinds as the generic admin alert."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from sqlalchemy import select

from satshare.bot import dispatcher
from satshare.notifications import messages
from satshare.notifications import service as outbox
from satshare.notifications.models import OutboxMessage
from tests.botkit import ADMIN_CHAT, BotStack, close_bot_stack, open_bot_stack, text_of
from tests.conftest import BTCPaySim, Stack
from tests.helpers import buy, create_user, invoice_status, wait_until

PAYOUT = {
    "payout_id": 7,
    "user_id": 3,
    "status": "failed",
    "amount_sats": 25_000,
    "fee_sats": 100,
    "send_sats": 24_900,
    "destination_kind": "lightning_address",
    "destination": "alice@example.com",
    "instant": False,
    "failure": "no route",
    "proof": None,
}

#: Rows exactly as the writers queued them before messages were typed.
QUEUED: list[tuple[str, dict[str, Any], type[Any]]] = [
    (
        "payment.confirmed",
        {
            "invoice_id": "inv_a",
            "subscription_id": 4,
            "plan_id": "monthly",
            "plan_title": "Premium, 30 days",
            "amount_sats": 50_000,
            "amount_stars": None,
            "currency": "SAT",
            "active_until": "2026-12-23T10:05:00.123456+00:00",
            "channels": [-1001000000001, -1001000000002],
            "paid_late": False,
        },
        messages.PaymentConfirmed,
    ),
    (
        "access.resent",
        {
            "subscription_id": 4,
            "plan_id": "monthly",
            "plan_title": "Premium, 30 days",
            "active_until": "2026-12-23T10:05:00.123456+00:00",
            "channels": [-1001000000001],
        },
        messages.AccessResent,
    ),
    (
        "payment.refunded",
        {"invoice_id": "inv_s", "plan_id": "monthly", "plan_title": "P", "amount_stars": 250},
        messages.PaymentRefunded,
    ),
    (
        "payment.refunded",
        {
            "invoice_id": "inv_b",
            "plan_id": "monthly",
            "plan_title": "P",
            "amount_stars": None,
            "amount_sats": 21_000,
        },
        messages.PaymentRefunded,
    ),
    (
        "commission.reversed",
        {"invoice_id": "inv_a", "commission_sats": 25_000, "transaction_id": 12},
        messages.CommissionReversed,
    ),
    (
        "commission.earned",
        {
            "invoice_id": "inv_a",
            "buyer_user_id": 5,
            "commission_sats": 25_000,
            "share_bps": 5000,
            "transaction_id": 9,
        },
        messages.CommissionEarned,
    ),
    (
        "referral.registered",
        {"referral_user_id": 5, "referral_username": None, "referral_platform": "telegram"},
        messages.ReferralRegistered,
    ),
    (
        "subscription.expired",
        {"subscription_id": 4, "plan_id": "monthly"},
        messages.SubscriptionExpired,
    ),
    (
        "subscription.reminder",
        {
            "subscription_id": 4,
            "plan_id": "monthly",
            "days": 3,
            "ends_at": "2026-12-23T10:05:00+00:00",
        },
        messages.SubscriptionReminder,
    ),
    (
        "sale.new",
        {
            "invoice_id": "inv_a",
            "plan_id": "monthly",
            "buyer_user_id": 5,
            "currency": "SAT",
            "amount_sats": 50_000,
            "amount_stars": None,
            "owner_sats": 25_000,
            "affiliate_sats": 25_000,
            "affiliate_user_id": 3,
            "overpaid_sats": 0,
            "paid_late": True,
        },
        messages.SaleNew,
    ),
    (
        "admin.invoice_mismatch",
        {"invoice_id": "inv_a", "expected_sats": 50_000, "provider_says_sats": 5_000},
        messages.InvoiceMismatch,
    ),
    (
        "admin.invoice_mismatch",
        {"invoice_id": "inv_s", "expected_stars": 250, "paid_stars": 1},
        messages.InvoiceMismatch,
    ),
    ("admin.invoice_gone", {"invoice_id": "inv_a", "provider": "lnbits"}, messages.InvoiceGone),
    (
        "admin.payment_invalidated",
        {"invoice_id": "inv_a", "provider_status": "Invalid"},
        messages.PaymentInvalidated,
    ),
    ("payout.failed", PAYOUT, messages.PayoutChanged),
    ("payout.paid", {**PAYOUT, "status": "paid", "proof": "ab" * 32}, messages.PayoutChanged),
    (
        "admin.payout_approval",
        {**PAYOUT, "status": "awaiting_approval", "failure": None},
        messages.PayoutApproval,
    ),
    ("admin.payout_unknown", {**PAYOUT, "status": "unknown"}, messages.PayoutUnknown),
    (
        "admin.payout_contradiction",
        {**PAYOUT, "status": "paid", "previous_status": "failed", "provider_says": "paid"},
        messages.PayoutContradiction,
    ),
    (
        "admin.webhook_failing",
        {
            "endpoint_id": 4,
            "url": "https://crm.example/hooks",
            "since": "2026-11-30T05:00:00+00:00",
        },
        messages.WebhookFailing,
    ),
    (
        "trial.started",
        {
            "subscription_id": 4,
            "plan_id": "monthly",
            "plan_title": "Premium, 30 days",
            "active_until": "2026-12-07T10:05:00+00:00",
            "channels": [-1001000000001],
        },
        messages.TrialStarted,
    ),
    (
        "admin.broadcast_preview",
        {"broadcast_id": 3, "language": "ru"},
        messages.BroadcastPreview,
    ),
]


@pytest.mark.parametrize(("kind", "payload", "expected"), QUEUED, ids=[q[0] for q in QUEUED])
def test_queued_rows_decode_and_encode_to_the_same_json(
    kind: str, payload: dict[str, Any], expected: type[Any]
) -> None:
    message = messages.decode(kind, payload)
    assert type(message) is expected
    assert message.kind == kind
    assert json.dumps(message.to_payload()) == json.dumps(payload)


def test_a_kind_this_version_does_not_know_is_passed_on_as_it_is() -> None:
    payload = {"invoice_id": "inv_a", "extra": [1, {"b": None}]}
    message = messages.decode("admin.something_new", payload)
    assert message == messages.Unrecognised("admin.something_new", payload)
    assert json.dumps(message.to_payload()) == json.dumps(payload)


def test_every_message_kind_has_a_queued_example_and_a_renderer() -> None:
    known = set(get_args(messages.KnownMessage))
    assert {expected for _, _, expected in QUEUED} == known
    assert set(dispatcher.RENDERERS) == known


async def _settled(stack: Stack, subscription_id: int) -> bool:
    return await invoice_status(stack.client, subscription_id) == "settled"


async def test_the_rows_settlement_queues_are_typed_messages(stack: Stack) -> None:
    affiliate = await create_user(stack.client, "affiliate", external_id="100")
    buyer = await create_user(
        stack.client, "buyer", external_id="200", referral_id=affiliate["referral_code"]
    )
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"], method="BTC-LN")
    await wait_until(lambda: _settled(stack, order["subscription_id"]))

    async with stack.db.reading() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert sorted(r.kind for r in rows) == [
        "commission.earned",
        "payment.confirmed",
        "referral.registered",
        "sale.new",
    ]
    for row in rows:
        message = messages.decode(row.kind, row.payload)
        assert not isinstance(message, messages.Unrecognised)
        assert json.dumps(message.to_payload()) == json.dumps(row.payload)


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(database_url, btcpay)
    yield stack
    await close_bot_stack(stack)


async def test_an_unknown_admin_kind_reaches_every_admin_as_the_generic_alert(
    bot: BotStack,
) -> None:
    payload = {"invoice_id": "inv_a1", "extra": [1, {"b": None}]}
    async with bot.container.db.transaction() as session:
        await outbox.enqueue(
            session,
            messages.Unrecognised("admin.something_new", payload),
            dedupe_key="something-new",
            now=datetime.now(UTC),
        )
    await bot.notify()
    assert text_of(bot.last(ADMIN_CHAT)) == "Attention: admin.something_new (invoice inv_a1)."
    async with bot.container.db.reading() as session:
        copy = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.chat_id == ADMIN_CHAT))
        ).scalar_one()
    assert copy.kind == "admin.something_new"
    assert json.dumps(copy.payload) == json.dumps(payload)
    assert copy.status == "sent"


@pytest.mark.parametrize(
    ("amount_stars", "amount_sats", "expected"),
    [
        (250, None, "Your payment for Premium was refunded: 250 Stars are back in your balance."),
        (
            None,
            21_000,
            "Your payment of 21,000 sats for Premium was refunded to you, and the time it paid "
            "for was taken off your subscription.",
        ),
        # Queued before bitcoin refunds carried their amount: no "None Stars".
        (
            None,
            None,
            "Your payment for Premium was refunded to you, and the time it paid for was taken "
            "off your subscription.",
        ),
    ],
    ids=["stars", "bitcoin", "bitcoin-queued-earlier"],
)
async def test_a_refund_is_told_in_the_currency_it_was_paid_in(
    bot: BotStack, amount_stars: int | None, amount_sats: int | None, expected: str
) -> None:
    carol = bot.new_user("carol")
    await bot.say(carol, "/start")
    user_id = (await bot.user_row(carol)).id
    refunded = messages.PaymentRefunded(
        invoice_id="inv_r1",
        plan_id="monthly",
        plan_title="Premium",
        amount_stars=amount_stars,
        amount_sats=amount_sats,
    )
    async with bot.container.db.transaction() as session:
        await outbox.enqueue(
            session, refunded, dedupe_key="refund-1", user_id=user_id, now=datetime.now(UTC)
        )
    await bot.notify()
    assert text_of(bot.last(carol)) == expected


async def test_an_affiliate_is_told_when_a_commission_is_taken_back(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    user_id = (await bot.user_row(alice)).id
    reversed_ = messages.CommissionReversed(
        invoice_id="inv_r2", commission_sats=5_000, transaction_id=17
    )
    async with bot.container.db.transaction() as session:
        await outbox.enqueue(
            session, reversed_, dedupe_key="reversed-1", user_id=user_id, now=datetime.now(UTC)
        )
    await bot.notify()
    assert text_of(bot.last(alice)) == (
        "A sale you earned 5,000 sats on was refunded, so that commission was taken back from "
        "your balance (transaction #17)."
    )
