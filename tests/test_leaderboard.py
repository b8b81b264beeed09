"""The leaderboard (by sales and by paying referrals, per period, opt-in names, refunds not
counted), the affiliate funnel and earnings per month, in the API and in the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from satshare.clock import FrozenClock
from tests.botkit import BotStack, close_bot_stack, open_bot_stack, text_of
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, buy, create_user, invoice_status, wait_until


@pytest.fixture
async def clocked(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[tuple[Stack, FrozenClock]]:
    clock = FrozenClock(datetime(2026, 10, 5, 12, 0, tzinfo=UTC))
    stack = await open_stack(database_url, btcpay, clock=clock)
    yield stack, clock
    await close_stack(stack)


async def _paid(stack: Stack, buyer_id: int, plan: str = "monthly") -> str:
    order = await buy(stack.client, buyer_id, plan)
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    return str(order["invoice"]["id"])


async def _buyer(stack: Stack, referrer: int) -> int:
    return int((await create_user(stack.client, "buyer", referral_id=referrer))["user_id"])


async def test_leaderboard_periods_names_and_refunds(clocked: tuple[Stack, FrozenClock]) -> None:
    stack, clock = clocked
    alice, bob, carol, dave = [
        int((await create_user(stack.client, name))["user_id"])
        for name in ("alice", "bob", "carol", "dave")
    ]
    await _paid(stack, await _buyer(stack, bob), "yearly")  # 500,001 sats, in October
    clock.advance(timedelta(days=40))  # November
    first = await _buyer(stack, alice)
    await _paid(stack, first)
    await _paid(stack, first)  # a renewal: more sales, still one paying referral
    await _paid(stack, await _buyer(stack, alice))
    refunded = await _paid(stack, await _buyer(stack, carol))
    assert (await stack.client.post(f"/api/v1/invoices/{refunded}/refund")).status_code == 200
    await _paid(stack, await _buyer(stack, dave))

    async def board(**params: str) -> list[tuple[int, int, str | None, int]]:
        response = await stack.client.get("/api/v1/leaderboard", params=params)
        assert response.status_code == 200, response.text
        return [(r["rank"], r["user_id"], r["name"], r["value"]) for r in response.json()["items"]]

    assert await board(by="sales", period="all") == [
        (1, bob, None, 500_001),
        (2, alice, None, 150_000),
        (3, dave, None, 50_000),
    ]
    # The last 30 days: bob's October sale is out; carol's refunded sale never counts.
    assert await board(by="sales", period="month") == [
        (1, alice, None, 150_000),
        (2, dave, None, 50_000),
    ]
    assert await board(by="referrals", period="week") == [
        (1, alice, None, 2),
        (2, dave, None, 1),
    ]
    ties = await board(by="referrals", period="all")
    assert ties[0] == (1, alice, None, 2)
    assert {(rank, uid) for rank, uid, _, _ in ties[1:]} == {(2, bob), (2, dave)}  # equal: rank 2

    # Names are opt-in.
    named = await stack.client.put(
        f"/api/v1/affiliates/{alice}/leaderboard-name", json={"name": " Alice  B "}
    )
    assert named.json() == {"name": "Alice B"}
    assert (await board(by="sales", period="month"))[0][2] == "Alice B"
    assert_problem(
        await stack.client.put(
            f"/api/v1/affiliates/{alice}/leaderboard-name", json={"name": "   "}
        ),
        422,
    )
    await stack.client.put(f"/api/v1/affiliates/{alice}/leaderboard-name", json={"name": None})
    assert (await board(by="sales", period="month"))[0][2] is None
    assert_problem(await stack.client.get("/api/v1/leaderboard", params={"by": "clicks"}), 422)
    async with stack.anonymous() as public:
        assert (await public.get("/api/v1/leaderboard")).status_code == 401


async def test_funnel_and_earnings_per_month(clocked: tuple[Stack, FrozenClock]) -> None:
    stack, clock = clocked
    alice = await create_user(stack.client, "alice")
    code = alice["referral_code"]
    for source in ("website", "website", "discord"):
        clicked = await stack.client.post(
            "/api/v1/referral-clicks", json={"referral_code": code, "source": source}
        )
        assert clicked.status_code == 201 and clicked.json() == {
            "affiliate_user_id": alice["user_id"]
        }
    before = await stack.counts()
    unknown = await stack.client.post("/api/v1/referral-clicks", json={"referral_code": "nobody"})
    assert_problem(unknown, 404)
    bad = await stack.client.post(
        "/api/v1/referral-clicks", json={"referral_code": code, "source": "fax"}
    )
    assert "unknown source 'fax'" in assert_problem(bad, 422)["detail"]
    assert await stack.counts() == before

    await _paid(stack, await _buyer(stack, alice["user_id"]))  # October
    await _buyer(stack, alice["user_id"])  # registered, never pays
    clock.advance(timedelta(days=31))
    refunded = await _paid(stack, await _buyer(stack, alice["user_id"]))  # November
    await stack.client.post(f"/api/v1/invoices/{refunded}/refund")
    await _paid(stack, await _buyer(stack, alice["user_id"]))

    response = await stack.client.get(f"/api/v1/affiliates/{alice['user_id']}/stats")
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["funnel"] == {"clicks": 3, "registrations": 4, "paying": 2}
    assert stats["earnings_by_month"] == [
        {"month": "2026-10", "earned_sats": 25_000, "commissions": 1},
        {"month": "2026-11", "earned_sats": 25_000, "commissions": 2},  # one clawed back
    ]
    user = (await stack.client.get(f"/api/v1/users/{alice['user_id']}")).json()
    assert user["referrals"] == {"registered": 4, "paying": 2}
    assert_problem(await stack.client.get("/api/v1/affiliates/999/stats"), 404)


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(database_url, btcpay)
    yield stack
    await close_bot_stack(stack)


async def test_top_and_clicks_in_the_bot(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code
    bob = bot.new_user("bob")
    await bot.say(bob, f"/start ref_{code}")
    await bot.say(bob, f"/start ref_{code}")  # opened twice: two clicks, one registration
    await bot.say(alice, f"/start ref_{code}")  # her own link is not a click
    bob_id = (await bot.user_row(bob)).id
    async with httpx.AsyncClient(
        timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
    ) as api:
        order = await buy(api, bob_id)
        await bot.btcpay.pay(order["invoice"]["provider_invoice_id"])

        async def settled() -> bool:
            return await invoice_status(api, order["subscription_id"]) == "settled"

        await wait_until(settled)
    await bot.notify()

    (menu,) = await bot.say(alice, "/start")
    await bot.press(alice, menu, "Invite & earn")
    invite = text_of(bot.last(alice))
    assert "Your link was opened 2 times." in invite and "Paying: 1" in invite

    (board,) = await bot.say(alice, "/top")
    text = text_of(board)
    assert "Top affiliates by referred sales</b>, last 30 days" in text
    assert "1. anonymous affiliate (you): 25,000 sats" not in text  # sales, not commission
    assert "1. anonymous affiliate (you): 50,000 sats" in text
    assert "You are shown as an anonymous affiliate." in text
    await bot.press(alice, board, "Show my name")
    shown = text_of(bot.last(alice))
    assert "1. @alice (you)" in shown and "You are shown as @alice." in shown
    await bot.press(alice, bot.last(alice), "By referrals")
    assert "1. @alice (you): 1 paying" in text_of(bot.last(alice))
    await bot.press(alice, bot.last(alice), "Hide my name")
    assert "1. anonymous affiliate (you): 1 paying" in text_of(bot.last(alice))
    (other,) = await bot.say(bob, "/top")
    assert "1. anonymous affiliate: 50" in text_of(other)


async def test_invite_shows_the_level_the_next_one_and_earnings_per_month(
    database_url: str, btcpay: BTCPaySim
) -> None:
    levels = [
        {"name": "partner", "share_bps": 5000},
        {"name": "gold", "min_paying_referrals": 2, "share_bps": 6000},
    ]
    bot = await open_bot_stack(database_url, btcpay, affiliate={"levels": levels})
    try:
        alice = bot.new_user("alice")
        await bot.say(alice, "/start")
        alice_id = (await bot.user_row(alice)).id

        async def referred_sale() -> None:
            async with httpx.AsyncClient(
                timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
            ) as api:
                buyer = await create_user(api, "buyer", referral_id=alice_id)
                order = await buy(api, buyer["user_id"])
                await bot.btcpay.pay(order["invoice"]["provider_invoice_id"])

                async def settled() -> bool:
                    return await invoice_status(api, order["subscription_id"]) == "settled"

                await wait_until(settled)
            await bot.notify()

        async def invite_text() -> str:
            (menu,) = await bot.say(alice, "/start")
            await bot.press(alice, menu, "Invite & earn")
            return text_of(bot.last(alice))

        await referred_sale()
        text = await invite_text()
        assert "Your level: partner." in text
        assert "Next level: gold (60%). Still to go: paying referrals: 1 more." in text
        month = datetime.now(UTC).strftime("%Y-%m")
        assert f"• {month}: 25,000 sats (sales: 1)" in text

        await referred_sale()
        text = await invite_text()
        assert "Your level: gold." in text and "Next level" not in text
        assert "You earn 60% of every subscription" in text
    finally:
        await close_bot_stack(bot)
