"""Withdrawing in the bot: terms acceptance, destination, amount, quote with the fee policy,
confirmation (a double tap requests once), approval by the owner, and every state change
told to the affiliate, against the Telegram, BTCPay, LNbits and Lightning Address emulators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from satshare.bot import texts
from satshare.bot.handlers.withdraw import approval_line
from satshare.i18n import translate
from satshare.payouts.models import Payout
from satshare.payouts.policy import PayoutPolicy
from tests.botkit import ADMIN_CHAT, BotStack, close_bot_stack, open_bot_stack, text_of
from tests.conftest import BTCPaySim
from tests.helpers import buy, create_user, invoice_status, wait_until
from tests.lightningkit import ADMIN_KEY, INVOICE_KEY, Lightning

#: Babel writes 25,000 in English and 25\u00a0000 (a no-break space) in Russian.
RU_SPACE = "\u00a0"


@pytest.fixture
async def bot(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning
) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(
        database_url,
        btcpay,
        lnbits={
            "url": lightning.lnbits_server.url,
            "invoice_key": INVOICE_KEY,
            "admin_key": ADMIN_KEY,
        },
        payouts={
            "network": "regtest",
            "min_sats": 5_000,
            "auto_approve_max_sats": 10_000,
            "lightning_fee_sats": 100,
            "timeout_seconds": 5,
        },
    )
    lightning.reachable_from(stack.container)
    yield stack
    await close_bot_stack(stack)


def fragment(language: str, message: str) -> str:
    return translate(language, message).split("{")[0].strip()


async def _api(bot: BotStack) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
    )


async def _referred_sale(bot: BotStack, affiliate_user_id: int) -> None:
    async with await _api(bot) as api:
        buyer = await create_user(api, "buyer", referral_id=affiliate_user_id)
        order = await buy(api, buyer["user_id"])
        await bot.btcpay.pay(order["invoice"]["provider_invoice_id"])

        async def settled() -> bool:
            return await invoice_status(api, order["subscription_id"]) == "settled"

        await wait_until(settled)
    await bot.notify()  # the commission message goes out before the test talks again


async def _payouts(bot: BotStack) -> list[Any]:
    async with bot.container.db.reading() as session:
        return list((await session.execute(select(Payout).order_by(Payout.id))).scalars())


async def test_withdraw_in_the_bot(bot: BotStack, lightning: Lightning) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    alice_id = (await bot.user_row(alice)).id
    await _referred_sale(bot, alice_id)

    # First visit: the terms come first; no withdrawal before they are accepted.
    (screen,) = await bot.say(alice, "/withdraw")
    text = text_of(screen)
    assert "Available now: 25,000 sats" in text
    assert "Affiliate terms, version 1" in text
    assert "Lightning: 100 sats deducted; on-chain fee paid by the owner" in text
    labels = [b["text"] for b in screen.buttons()]
    assert labels[0] == "I accept the terms"
    assert not any(label.startswith("Withdraw") for label in labels)

    await bot.press(alice, screen, "I accept the terms")
    screen = bot.last(alice)
    assert "Affiliate terms" not in text_of(screen)
    assert fragment("en", texts.WITHDRAW_NO_DESTINATION) in text_of(screen)
    async with await _api(bot) as api:
        shown = (await api.get(f"/api/v1/affiliates/{alice_id}")).json()
    assert shown["terms_accepted_at"] is not None

    # Destination: a wrong one is explained and nothing is saved; a good one is checked.
    await bot.press(alice, screen, "Set destination")
    assert "Lightning Address" in text_of(bot.last(alice))
    (refused,) = await bot.say(alice, "bc1qnot-an-address")
    assert fragment("en", texts.DESTINATION_INVALID) in text_of(refused)
    (refused,) = await bot.say(alice, "nobody@" + lightning.address("alice").split("@")[1])
    assert "cannot receive payments" in text_of(refused)
    saved, screen = await bot.say(alice, lightning.address("alice"), replies=2)
    assert "Saved: you will be paid to alice@" in text_of(saved)
    labels = [b["text"] for b in screen.buttons()]
    assert "Withdraw 25,000 sats" in labels and "Other amount" in labels

    # An amount out of range is refused; a good one gets a quote stating the fee.
    await bot.press(alice, screen, "Other amount")
    (refused,) = await bot.say(alice, "99999999")
    assert fragment("en", texts.AMOUNT_INVALID) in text_of(refused)
    (quote,) = await bot.say(alice, "8 000")
    quote_text = text_of(quote)
    assert "Amount: 8,000 sats" in quote_text
    assert "Fee: 100 sats" in quote_text
    assert "You receive: <b>7,900 sats</b>" in quote_text
    assert "approved by the owner" not in quote_text  # under auto_approve_max_sats
    assert await _payouts(bot) == []  # nothing until confirmed

    # A double tap: both presses reach the bot before it answers; one payout is requested.
    taps = [bot.telegram.user_presses(alice, quote.message_id, "w:ok:8000") for _ in range(2)]
    for tap in taps:
        await wait_until_answered(bot, tap)
    answers = sorted(str(bot.telegram.callback_answer(tap)) for tap in taps)
    assert answers == ["None", translate("en", texts.WITHDRAW_ALREADY)]
    (edited,) = [m for m in bot.telegram.sent_to(alice) if m.message_id == quote.message_id]
    assert "Withdrawal #1 requested" in text_of(edited)
    await bot.container.payout_runner.flush()
    assert lightning.received_sats("alice") == [7_900]
    assert [p.status for p in await _payouts(bot)] == ["paid"]
    await bot.notify()
    told = [text_of(m) for m in bot.telegram.sent_to(alice)]
    assert any("Withdrawal #1: 8,000 sats to alice@" in m and "approved" in m for m in told)
    paid = next(m for m in told if m.startswith("Withdrawal #1 is done"))
    assert "7,900 sats were sent" in paid and "Proof:" in paid
    assert "A fee of 100 sats was kept" in paid

    # Above auto_approve_max_sats: the owner approves first, and is asked in Telegram.
    await _referred_sale(bot, alice_id)
    (screen,) = await bot.say(alice, "/withdraw")
    assert "Available now: 42,000 sats" in text_of(screen)
    await bot.press(alice, screen, "Withdraw 42,000 sats")
    quote = bot.last(alice)
    assert "above 10,000 sats are approved by the owner" in text_of(quote)
    await bot.press(alice, quote, "Confirm")
    second = (await _payouts(bot))[-1]
    assert (second.status, second.amount_sats) == ("awaiting_approval", 42_000)
    await bot.notify()
    assert "waiting for the owner's approval" in text_of(bot.last(alice))
    request = bot.last(ADMIN_CHAT)
    assert "satshare payout approve 2" in text_of(request)
    assert [b["text"] for b in request.buttons()] == ["Approve", "Cancel payout"]
    await bot.press(ADMIN_CHAT, request, "Approve")
    (decided,) = [m for m in bot.telegram.sent_to(ADMIN_CHAT) if m.message_id == request.message_id]
    assert text_of(decided) == "Payout #2 approved by Admin: it is being sent."
    assert decided.buttons() == []
    await bot.container.payout_runner.flush()
    assert lightning.received_sats("alice") == [7_900, 41_900]
    await bot.notify()

    # The history, newest first.
    (screen,) = await bot.say(alice, "/withdraw")
    await bot.press(alice, screen, "My withdrawals")
    history = text_of(bot.last(alice)).splitlines()
    assert history[0] == "Your last withdrawals:"
    assert history[1].startswith("• #2 ") and history[1].endswith(": paid")
    assert history[2].startswith("• #1 ") and "8,000 sats" in history[2]


async def wait_until_answered(bot: BotStack, update_id: int) -> None:
    async def answered() -> bool:
        return bot.telegram.callback_answered(update_id)

    await wait_until(answered)


async def test_withdraw_refusals_are_friendly_and_write_nothing(
    bot: BotStack, lightning: Lightning
) -> None:
    bob = bot.new_user("bob", language="ru")
    await bot.say(bob, "/start")
    bob_id = (await bot.user_row(bob)).id
    (screen,) = await bot.say(bob, "/withdraw")
    assert "Доступно сейчас: 0 сат." in text_of(screen)
    await bot.press(bob, screen, translate("ru", texts.BTN_ACCEPT_TERMS))
    await bot.press(bob, bot.last(bob), translate("ru", texts.BTN_SET_DESTINATION))
    saved, screen = await bot.say(bob, lightning.address("bob"), replies=2)
    assert "bob@" in text_of(saved)
    assert not any("Вывести" in b["text"] for b in screen.buttons())  # nothing to withdraw
    # ... and the screen says why: how far the minimum is.
    assert f"Вывести можно, когда доступно 5{RU_SPACE}000 сат.: осталось 5{RU_SPACE}000 сат." in (
        text_of(screen)
    )

    await _referred_sale(bot, bob_id)
    (screen,) = await bot.say(bob, "/withdraw")
    await bot.press(bob, screen, f"Вывести 25{RU_SPACE}000 сат.")
    quote = bot.last(bob)
    # Meanwhile most of the balance leaves through the API: the quote is now too much.
    async with await _api(bot) as api:
        taken = await api.post("/api/v1/payouts", json={"user_id": bob_id, "amount_sats": 9_000})
        assert taken.status_code == 201, taken.text
    await bot.notify()
    await bot.press(bob, quote, translate("ru", texts.BTN_CONFIRM))
    (edited,) = [m for m in bot.telegram.sent_to(bob) if m.message_id == quote.message_id]
    refusal = text_of(edited)
    assert refusal.startswith("Вывод не выполнен:") and "available" in refusal
    assert [p.amount_sats for p in await _payouts(bot)] == [9_000]
    # An admin cancels a payout waiting for approval from the admin chat: money back.
    async with await _api(bot) as api:
        waiting = await api.post("/api/v1/payouts", json={"user_id": bob_id, "amount_sats": 12_000})
        assert waiting.json()["status"] == "awaiting_approval", waiting.text
    await bot.notify()
    request = bot.last(ADMIN_CHAT)
    await bot.press(ADMIN_CHAT, request, "Cancel payout")
    assert [p.status for p in await _payouts(bot)] == ["paid", "canceled"]
    async with await _api(bot) as api:
        shown = (await api.get(f"/api/v1/affiliates/{bob_id}")).json()
    assert shown["balance"]["available_sats"] == 25_000 - 9_000
    await bot.notify()
    # After the menu, typed text is not taken as an answer any more.
    await bot.press(bob, edited, translate("ru", texts.BTN_BACK))
    (reply,) = await bot.say(bob, "hello")
    assert text_of(reply) == translate("ru", texts.UNKNOWN)


async def test_commission_statements_in_the_bot(bot: BotStack) -> None:
    carol = bot.new_user("carol")
    await bot.say(carol, "/start")
    carol_id = (await bot.user_row(carol)).id
    await bot.say(carol, "/start")
    await bot.press(carol, bot.last(carol), "Invite & earn")
    await bot.press(carol, bot.last(carol), "Proof of my commissions")
    assert text_of(bot.last(carol)) == translate("en", texts.STATEMENTS_EMPTY)

    await _referred_sale(bot, carol_id)
    await bot.container.sealer.flush()
    (menu,) = await bot.say(carol, "/start")
    await bot.press(carol, menu, "Invite & earn")
    await bot.press(carol, bot.last(carol), "Proof of my commissions")
    statement = text_of(bot.last(carol))
    async with await _api(bot) as api:
        (item,) = (await api.get(f"/api/v1/affiliates/{carol_id}/statements")).json()["items"]
    assert f"invoice <code>{item['invoice_id']}</code>" in statement
    assert "Paid 50,000 sats → your 50% (base) = <b>25,000 sats</b>" in statement
    assert f"Proof (btcpay_invoice_id): <code>{item['proof']}" in statement
    assert f"Ledger entry #{item['seq']}: <code>{item['entry_hash']}</code>" in statement


def test_amounts_are_read_as_people_type_them() -> None:
    from satshare.bot.handlers.withdraw import _parse_amount

    for typed in (
        "25000",
        "25 000",
        "25\u202f000",
        "25,000",
        "25_000",
        "25000 sats",
        "25 000 сат.",
    ):
        assert _parse_amount(typed) == 25_000, typed
    for typed in ("", "abc", "-5", "2.5", "١٢", "9" * 13):
        assert _parse_amount(typed) is None, typed


@pytest.mark.parametrize(
    ("language", "auto_approve", "amount", "expected"),
    [
        ("en", 0, 5_000, "Every withdrawal is approved by the owner first."),
        ("ru", 0, 5_000, "Каждый вывод сначала одобряет владелец."),
        ("en", 10_000, 42_000, "Withdrawals above 10,000 sats are approved by the owner first."),
        ("en", 10_000, 10_000, None),  # at the limit: approved at once
    ],
)
def test_the_quote_says_when_the_owner_approves_first(
    language: str, auto_approve: int, amount: int, expected: str | None
) -> None:
    policy = PayoutPolicy(provider="lnbits", auto_approve_max_sats=auto_approve)
    assert approval_line(language, amount, policy) == expected
