"""Telegram Stars: XTR invoices and monthly subscription links, the pre-checkout answer,
settlement on successful_payment, renewals, and the multi-currency ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from satshare.ledger.verify import verify_ledger
from satshare.payments.models import Invoice
from satshare.plans.models import Plan
from tests.botkit import BotStack, close_bot_stack, open_bot_stack, text_of, wait_for
from tests.conftest import BTCPaySim
from tests.helpers import wait_until

PLANS: list[dict[str, Any]] = [
    {
        "id": "monthly",
        "title": "Premium, 30 days",
        "price_sats": 50_000,
        "price_stars": 500,
        "duration_days": 30,
        "channels": [-1001000000001],
    },
    {
        "id": "yearly",
        "title": "Premium, 365 days",
        "price_stars": 5_000,
        "duration_days": 365,
        "providers": ["stars"],
        "channels": [-1001000000001],
    },
]


async def _open(database_url: str, btcpay: BTCPaySim, **telegram: Any) -> BotStack:
    return await open_bot_stack(
        database_url,
        btcpay,
        plans=PLANS,
        stars={"enabled": True, "sats_per_star": 20},
        telegram=telegram,
    )


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await _open(database_url, btcpay)
    yield stack
    await close_bot_stack(stack)


async def _to_plans(bot: BotStack, user: int, ref: str | None = None) -> None:
    await bot.say(user, f"/start ref_{ref}" if ref else "/start")
    await bot.press(user, bot.last(user), "Plans")


async def test_monthly_stars_subscription_with_commission_and_renewal(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code
    bob = bot.new_user("bob")
    await _to_plans(bot, bob, code)
    await bot.press(bob, bot.last(bob), "buy:monthly")
    choice = bot.last(bob)
    assert text_of(choice) == "How do you want to pay?"
    assert [b["text"] for b in choice.buttons()] == ["Bitcoin (BTCPay)", "Telegram Stars", "« Menu"]
    await bot.press(bob, choice, "pay:stars:monthly")
    offer = bot.last(bob)
    assert "500 Stars a month" in text_of(offer)
    link = next(b["url"] for b in offer.buttons() if "url" in b)
    spec = bot.telegram.invoice_links[link]
    assert (spec["currency"], spec["total_amount"], spec["subscription_period"]) == (
        "XTR",
        500,
        2_592_000,
    )

    result = await bot.telegram.user_pays(bob, link=link)
    assert result["status"] == "paid"
    await bot.notify()
    await wait_for(lambda: "Payment received" in text_of(bot.last(bob)))
    # 500 Stars valued at 20 sats each, 50% of that to the affiliate, in sats.
    await wait_for(lambda: "You earned 5,000 sats" in text_of(bot.last(alice)))

    async with bot.container.db.reading() as session:
        from satshare.ledger.models import Entry

        entry = (await session.execute(select(Entry))).scalar_one()
    api = httpx.AsyncClient(
        timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
    )
    async with api:
        listed = (await api.get(f"/api/v1/transactions/{entry.id}")).json()
        assert listed["kind"] == "stars_sale"
        assert sorted((p["account"], p["amount_sats"]) for p in listed["postings"]) == sorted(
            [
                ("clearing:xtr", 500),
                ("revenue:xtr", -500),
                ("expense:stars-commission", 5_000),
                (f"payable:affiliate:{(await bot.user_row(alice)).id}", -5_000),
            ]
        )
        subscription = (await api.get("/api/v1/subscriptions", params={"status": "active"})).json()
        first_end = datetime.fromisoformat(subscription["items"][0]["ends_at"])

        # Telegram renews the subscription a month later: a new charge, a new settled invoice.
        renewal = bot.telegram.renew(bob, link)
        await wait_until(lambda: _invoices_settled(bot, 2))
        again = (
            await api.get(f"/api/v1/subscriptions/{subscription['items'][0]['subscription_id']}")
        ).json()
        assert datetime.fromisoformat(again["ends_at"]) - first_end == timedelta(days=30)
        # The same charge delivered again changes nothing.
        bot.telegram.redeliver(renewal["update_id"])
        bot.telegram.user_sends(bob, "/help")
        await bot.wait_messages(bob, len(bot.telegram.sent_to(bob)) + 1)
        assert await _settled_count(bot) == 2
    await bot.container.sealer.flush()
    async with bot.container.db.reading() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems


async def _settled_count(bot: BotStack) -> int:
    async with bot.container.db.reading() as session:
        rows = (
            (await session.execute(select(Invoice).where(Invoice.status == "settled")))
            .scalars()
            .all()
        )
    return len(rows)


async def _invoices_settled(bot: BotStack, count: int) -> bool:
    return await _settled_count(bot) == count


async def test_one_off_stars_invoice_for_a_stars_only_plan(bot: BotStack) -> None:
    carol = bot.new_user("carol")
    await _to_plans(bot, carol)
    await bot.press(carol, bot.last(carol), "buy:yearly")  # only Stars: no choice to make
    invoice_message = bot.last(carol)
    assert invoice_message.invoice is not None
    assert invoice_message.invoice["total_amount"] == 5_000
    assert invoice_message.invoice["subscription_period"] is None
    result = await bot.telegram.user_pays(carol, message_id=invoice_message.message_id)
    assert result["status"] == "paid"
    await bot.notify()
    await wait_for(lambda: "Payment received" in text_of(bot.last(carol)))
    assert "Join Premium -1001000000001" in [b["text"] for b in bot.last(carol).buttons()]


async def test_pre_checkout_refuses_a_changed_price(bot: BotStack) -> None:
    dave = bot.new_user("dave")
    await _to_plans(bot, dave)
    await bot.press(dave, bot.last(dave), "buy:yearly")
    invoice_message = bot.last(dave)
    async with bot.container.db.transaction() as session:
        await session.execute(update(Plan).where(Plan.id == "yearly").values(price_stars=6_000))
    result = await bot.telegram.user_pays(dave, message_id=invoice_message.message_id)
    assert result == {
        "status": "refused",
        "error": "The price has changed: please choose the plan again.",
    }
    assert await _settled_count(bot) == 0


async def test_stars_only_in_the_bot(database_url: str, btcpay: BTCPaySim) -> None:
    """An operator can sell Stars in the bot and bitcoin on the web checkout."""
    stack = await _open(database_url, btcpay, bot_rails=["stars"])
    try:
        erin = stack.new_user("erin")
        await _to_plans(stack, erin)
        await stack.press(erin, stack.last(erin), "buy:monthly")
        assert "500 Stars a month" in text_of(stack.last(erin))  # no choice offered
        api = httpx.AsyncClient(
            timeout=30, base_url=stack.url, headers={"Authorization": f"Bearer {stack.admin_key}"}
        )
        async with api:
            types = {
                t["subscription_type"]: t
                for t in (await api.get("/api/v1/subscriptions/types")).json()
            }
            assert types["monthly"]["providers"] == ["btcpay"]  # the web sells bitcoin
            assert types["monthly"]["price_stars"] == 500
    finally:
        await close_bot_stack(stack)


async def test_admin_refund_reverses_the_sale(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code
    carol = bot.new_user("carol")
    await _to_plans(bot, carol, code)
    await bot.press(carol, bot.last(carol), "buy:yearly")
    paid = await bot.telegram.user_pays(carol, message_id=bot.last(carol).message_id)
    await wait_until(lambda: _invoices_settled(bot, 1))
    async with bot.container.db.reading() as session:
        invoice = (await session.execute(select(Invoice))).scalar_one()
    api = httpx.AsyncClient(
        timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
    )
    async with api:
        alice_id = (await bot.user_row(alice)).id
        assert (await api.get(f"/api/v1/users/{alice_id}")).json()["balance_sats"] == 50_000
        refunded = await api.post(f"/api/v1/invoices/{invoice.id}/refund")
        assert refunded.status_code == 200, refunded.text
        assert refunded.json()["status"] == "refunded"
        assert bot.telegram.charges[paid["charge_id"]]["refunded"] is True
        assert (await api.get(f"/api/v1/users/{alice_id}")).json()[
            "balance_sats"
        ] == 0  # clawed back
        reversal = (
            await api.get(f"/api/v1/transactions/{refunded.json()['reversal_transaction_id']}")
        ).json()
        assert reversal["kind"] == "reversal"
        subs = (await api.get("/api/v1/subscriptions", params={"status": "active"})).json()
        assert subs["items"] == []
        again = await api.post(f"/api/v1/invoices/{invoice.id}/refund")
        assert again.status_code == 409
        await bot.notify()
        await wait_for(lambda: "refunded" in text_of(bot.last(carol)))
        # Bitcoin payments are refunded by the owner from their wallet, not here.
        bitcoin = await api.post("/api/v1/invoices/inv_nope/refund")
        assert bitcoin.status_code == 404


async def test_web_checkout_links_to_stars_in_the_bot(bot: BotStack) -> None:
    api = httpx.AsyncClient(
        timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
    )
    async with api:
        user = (
            await api.post("/api/v1/users", json={"username": "web", "platform": "website"})
        ).json()
        order = (
            await api.post(
                "/api/v1/subscriptions",
                json={"user_id": user["user_id"], "subscription_type": "monthly"},
            )
        ).json()
        page = (await api.get(order["invoice"]["checkout_url"])).text
    assert "https://t.me/satshare_sandbox_bot?start=stars_monthly" in page
    frank = bot.new_user("frank")
    messages = await bot.say(frank, "/start stars_monthly", replies=2)
    assert "500 Stars a month" in text_of(messages[-1])
