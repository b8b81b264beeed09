"""Exactly-once settlement under abuse: a thousand concurrent deliveries of one event
(redeliveries included), many distinct payments at once, and two SatShare servers sharing
one database, each receiving the same notifications."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select

from satshare.ledger.models import Entry
from satshare.notifications.models import OutboxMessage
from satshare.payments.models import Payment
from satshare.sim.loadclient import Reply, Request, send_all
from tests.conftest import STORE_ID, WEBHOOK_SECRET, BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import buy, create_user, signed

pytestmark = pytest.mark.slow  # hundreds of concurrent requests per test

WEBHOOK = "/api/v1/webhooks/btcpay"


def deliveries(provider_id: str, copies: int) -> list[Request]:
    """``copies`` notifications for one paid invoice: originals, redeliveries with new
    deliveryIds, and other event types, shuffled deterministically."""
    kinds = ["InvoiceSettled", "InvoicePaymentSettled", "InvoiceReceivedPayment"]
    result = []
    for n in range(copies):
        kind = kinds[n % len(kinds)]
        payload = {
            "deliveryId": f"delivery-{n}",
            "webhookId": "wh",
            "originalDeliveryId": f"delivery-{n % 7}",
            "isRedelivery": n >= len(kinds),
            "type": kind,
            "timestamp": 1_795_000_000 + n,
            "storeId": STORE_ID,
            "invoiceId": provider_id,
            "metadata": {},
        }
        body, headers = signed(WEBHOOK_SECRET, json.dumps(payload).encode())
        result.append(Request("POST", WEBHOOK, body, tuple(headers.items())))
    return result


def statuses(replies: list[Reply]) -> list[str]:
    assert all(r.status == 200 for r in replies), {r.status for r in replies}
    return [json.loads(r.body)["status"] for r in replies]


async def deliver(base_url: str, batch: list[Request], concurrency: int) -> list[Reply]:
    """Deliver as a processor does: a notification answered 503 retry-later (another
    request holds its claim) is sent again until it is acknowledged. Returns the
    acknowledgements, in the order of ``batch``."""
    acknowledged: dict[int, Reply] = {}
    pending = list(range(len(batch)))
    for _ in range(100):
        replies = await send_all(base_url, [batch[i] for i in pending], concurrency)
        retry = []
        for index, reply in zip(pending, replies, strict=True):
            if reply.status == 200:
                acknowledged[index] = reply
                continue
            assert reply.status == 503, (reply.status, reply.body)
            assert json.loads(reply.body)["type"] == "/problems/retry-later"
            retry.append(index)
        if not retry:
            return [acknowledged[i] for i in range(len(batch))]
        pending = retry
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"{len(pending)} deliveries were never acknowledged: {replies[0].body[:300]!r}"
    )


async def _counts(stack: Stack) -> tuple[int, int, int]:
    async with stack.db.reading() as session:
        payments = (await session.execute(select(func.count(Payment.id)))).scalar_one()
        entries = (await session.execute(select(func.count(Entry.id)))).scalar_one()
        notices = (
            await session.execute(
                select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.kind == "commission.earned"
                )
            )
        ).scalar_one()
    return payments, entries, notices


async def test_thousand_concurrent_deliveries_settle_exactly_once(stack: Stack) -> None:
    stack.btcpay.emulator.drop_webhooks = True
    aff = await create_user(stack.client, "aff")
    buyer = await create_user(stack.client, "buyer", referral_id=aff["user_id"])
    order = await buy(stack.client, buyer["user_id"])
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id)

    replies = await deliver(stack.url, deliveries(provider_id, 1000), concurrency=1000)
    assert len(replies) == 1000
    assert statuses(replies).count("settled") == 1
    assert await _counts(stack) == (1, 1, 1)

    sub = (await stack.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    from datetime import datetime, timedelta

    started = datetime.fromisoformat(sub["started_at"])
    assert datetime.fromisoformat(sub["ends_at"]) - started == timedelta(days=30)  # one extension
    affiliate = (await stack.client.get(f"/api/v1/users/{aff['user_id']}")).json()
    assert affiliate["balance_sats"] == 25_000


async def test_many_distinct_payments_at_once_credit_every_referrer(stack: Stack) -> None:
    stack.btcpay.emulator.drop_webhooks = True
    affiliates = [await create_user(stack.client, f"aff{i}") for i in range(5)]
    orders = []
    for i in range(40):
        referrer = affiliates[i % 5]
        buyer = await create_user(stack.client, f"b{i}", referral_id=referrer["referral_code"])
        orders.append(await buy(stack.client, buyer["user_id"]))
    for order in orders:
        await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    batch: list[Request] = []
    for order in orders:
        # Each invoice notified four times (three event types and one redelivery).
        batch += deliveries(order["invoice"]["provider_invoice_id"], 4)
    replies = await deliver(stack.url, batch, concurrency=160)
    assert statuses(replies).count("settled") == 40
    assert await _counts(stack) == (40, 40, 40)
    for affiliate in affiliates:
        data = (await stack.client.get(f"/api/v1/users/{affiliate['user_id']}")).json()
        assert data["balance_sats"] == 8 * 25_000
        assert data["referrals"] == {"registered": 8, "paying": 8}


async def test_two_servers_sharing_one_database_settle_once(
    database_url: str, btcpay: BTCPaySim
) -> None:
    first = await open_stack(database_url, btcpay)
    second = await open_stack(database_url, btcpay)
    try:
        btcpay.emulator.drop_webhooks = True
        aff = await create_user(first.client, "aff")
        buyers = [
            await create_user(first.client, f"b{i}", referral_id=aff["user_id"]) for i in range(10)
        ]
        orders = [await buy(second.client, b["user_id"]) for b in buyers]
        for order in orders:
            await btcpay.pay(order["invoice"]["provider_invoice_id"])
        batch: list[Request] = []
        for order in orders:
            batch += deliveries(order["invoice"]["provider_invoice_id"], 20)
        # Every notification goes to both servers at the same time.
        to_first, to_second = await asyncio.gather(
            deliver(first.url, batch, concurrency=100),
            deliver(second.url, batch, concurrency=100),
        )
        assert (statuses(to_first) + statuses(to_second)).count("settled") == 10
        assert await _counts(first) == (10, 10, 10)
        assert (await first.client.get(f"/api/v1/users/{aff['user_id']}")).json()[
            "balance_sats"
        ] == 10 * 25_000
    finally:
        await close_stack(second, verify=False)
        await close_stack(first)
