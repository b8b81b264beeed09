"""The links the bot sends in the sandbox stay in the sandbox (#10): invite links and Telegram
Stars links lead to a sandbox page that plays what Telegram shows, the bot's own t.me links
(?start=…) to the sandbox chat; nothing leads to t.me or a dead URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page

from satshare.bot import texts
from satshare.cli import SANDBOX_PLANS
from satshare.i18n import translate
from satshare.sandbox import SANDBOX_TELEGRAM_PATH
from tests.browser import chromium, refuse_outside
from tests.qrkit import keep
from tests.sandboxkit import Sandbox, close_sandbox, open_sandbox, pay_in_sandbox


async def _shot(page: Page, name: str) -> None:
    keep(await page.screenshot(full_page=True), name)


async def _buttons(sandbox: Sandbox, telegram_id: int) -> list[dict[str, Any]]:
    chat = (await sandbox.client.get(f"/sandbox/api/chat/{telegram_id}")).json()
    return [b for m in chat["messages"] for row in m["buttons"] for b in row]


@pytest.mark.browser
async def test_a_join_button_opens_a_sandbox_page_where_the_user_joins(
    sandbox_with_bot: Sandbox,
) -> None:
    base = sandbox_with_bot.url
    channel = "Demo channel, 30 days / Demo channel, 365 days"
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        outside = await refuse_outside(context)
        page = await context.new_page()
        await page.goto(f"{base}/sandbox")
        await page.fill("#new-name", "Alice")
        await page.click("#new-user")
        await page.wait_for_selector(".msg >> text=Welcome to SatShare")
        await page.click("button.kb >> text=Plans")
        await page.click("button.kb >> text=Demo channel, 30 days")
        await page.wait_for_selector(".msg img[alt='QR code']")
        invoice_id = (await page.inner_text(".msg:has(img)")).split("/pay/")[1].split()[0]
        await pay_in_sandbox(sandbox_with_bot, invoice_id)
        join = page.locator(f"button.kb >> text=Join {channel}")
        await join.wait_for(timeout=15_000)
        alice = int((await page.get_attribute(".user.active", "data-id")) or 0)
        links = [b["url"] for b in await _buttons(sandbox_with_bot, alice) if "url" in b]
        assert links and all(url.startswith(f"{base}/sandbox/link/+") for url in links), links

        async with context.expect_page() as opened:
            await join.click()
        joining = await opened.value
        await joining.wait_for_selector("#act")
        assert urlsplit(joining.url).path.startswith("/sandbox/link/+")
        assert await joining.inner_text("#title") == channel
        assert "Opened by Alice (@alice1)" in await joining.inner_text("#who")
        assert await joining.inner_text("#act") == "Request to join"
        await _shot(joining, "sandbox-link-join-desktop")
        await joining.click("#act")
        await joining.wait_for_selector("#result.ok", timeout=30_000)
        assert await joining.inner_text("#result") == f"Alice joined {channel}: now a member."
        assert await joining.get_attribute("#status", "data-status") == "member"
        await _shot(joining, "sandbox-link-joined-desktop")

        # The chat shows it too: the bot let her in and said so, the channel lists her.
        approved = translate("en", texts.JOIN_APPROVED, chat=channel)
        await page.wait_for_selector(f".msg >> text={approved}", timeout=30_000)
        await page.wait_for_selector(f"#channels li >> text={channel}: member")
        # Opened again, the link says she is in already; "back" returns to her chat.
        await joining.reload()
        assert await joining.inner_text("#act") == "Already a member"
        await joining.click("#back")
        await joining.wait_for_selector(".user.active >> text=Alice (@alice1)")
        await joining.wait_for_selector(f".msg >> text={approved}")

        # At phone width the page fits the screen.
        phone = await browser.new_context(viewport={"width": 390, "height": 844})
        small = await phone.new_page()
        await small.goto(links[-1] + f"?as={alice}")
        width = await small.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        await _shot(small, "sandbox-link-joined-phone")
        await phone.close()
        assert outside == []
        await context.close()


@pytest.mark.browser
async def test_the_invitation_link_opens_the_sandbox_chat_for_a_new_invited_user(
    sandbox_with_bot: Sandbox,
) -> None:
    base = sandbox_with_bot.url
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        outside = await refuse_outside(context)
        page = await context.new_page()
        await page.goto(f"{base}/sandbox")
        await page.fill("#new-name", "Alice")
        await page.click("#new-user")
        await page.click("button.kb >> text=Invite & earn")
        await page.wait_for_selector(".msg >> text=Your invitation link")
        code = (await page.inner_text("#sum-code")).strip()
        link = page.locator(f".msg a:has-text('start=ref_{code}')").first
        assert await link.get_attribute("href") == f"/sandbox?start=ref_{code}"
        async with context.expect_page() as opened:
            await link.click()
        invited = await opened.value
        await invited.wait_for_selector("#opened:not([hidden])")
        assert f"?start=ref_{code}" in await invited.inner_text("#opened")
        await invited.fill("#new-name", "Bob")
        await invited.click("#new-user")
        await invited.wait_for_selector("#sum-referrer >> text=Alice (@alice1)", timeout=30_000)
        assert await invited.is_hidden("#opened")
        assert outside == []
        await context.close()


async def test_an_unknown_link_is_a_page_that_says_so(sandbox_with_bot: Sandbox) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=sandbox_with_bot.url) as browser:
        page = await browser.get("/sandbox/link/+nosuchlink", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "This link does not work" in page.text
    assert "earlier run of the sandbox" in page.text


@pytest.fixture
async def stars_sandbox(database_url: str) -> AsyncIterator[Sandbox]:
    """A sandbox that also sells the monthly plan for Telegram Stars, its bot running."""
    from satshare.bot.app import build_runtime, start_bot, stop_bot

    plans = [p.model_dump() for p in SANDBOX_PLANS]
    plans[0]["price_stars"] = 500  # 30 days: a Stars subscription link
    plans[1]["price_stars"] = 5_000  # 365 days: a one-off Stars invoice in the chat
    sandbox = await open_sandbox(
        database_url,
        plans=plans,
        stars={"enabled": True, "sats_per_star": 20},
        branding={"name": "Night Owls"},
    )
    container = sandbox.container
    runtime = build_runtime(
        container.bot_services(),
        token=container.telegram_token,
        api_base_url=sandbox.server.url + SANDBOX_TELEGRAM_PATH,
    )
    dispatcher = await start_bot(runtime)
    yield sandbox
    await stop_bot(runtime, dispatcher)
    await close_sandbox(sandbox)


@pytest.mark.browser
async def test_telegram_stars_are_paid_inside_the_sandbox(
    stars_sandbox: Sandbox,
) -> None:
    base = stars_sandbox.url
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        outside = await refuse_outside(context)
        page = await context.new_page()
        await page.goto(f"{base}/sandbox")
        await page.fill("#new-name", "Carol")
        await page.click("#new-user")
        await page.wait_for_selector(".msg >> text=Welcome to Night Owls")
        await page.click("button.kb >> text=Plans")
        await page.click("button.kb >> text=Demo channel, 30 days")
        await page.click("button.kb >> text=Telegram Stars")
        pay = page.locator("button.kb >> text=Pay 500 Stars")
        async with context.expect_page() as opened:
            await pay.click()
        paying = await opened.value
        await paying.wait_for_selector("#act")
        assert urlsplit(paying.url).path.startswith("/sandbox/link/$")
        assert await paying.inner_text("#title") == "Demo channel, 30 days"
        description = await paying.inner_text("#description")
        assert description.endswith("30 days of access from Night Owls.")
        await _shot(paying, "sandbox-link-stars-desktop")
        await paying.click("#act")
        await paying.wait_for_selector("#result.ok", timeout=15_000)
        await page.wait_for_selector(".msg >> text=Payment received", timeout=15_000)
        assert "demo-monthly" in await page.inner_text("#sum-subs")

        # A one-off invoice is a card in the chat with its own Pay button, as in Telegram.
        await page.fill("#text", "/plans")
        await page.press("#text", "Enter")
        await page.wait_for_selector(".msg.mine >> text=/plans")
        yearly = page.locator(".msg:last-child button.kb >> text=Demo channel, 365 days")
        await yearly.click()
        await page.locator(".msg:last-child button.kb >> text=Telegram Stars").click()
        # She has the 30-day plan: the bot says this one runs alongside, then sells it.
        await page.wait_for_selector(".msg:last-child >> text=is a different plan")
        await page.locator(".msg:last-child button.kb >> text=Continue to payment").click()
        card = page.locator(".msg.invoice").last
        await card.wait_for()
        assert "Demo channel, 365 days" in await card.inner_text()
        assert "365 days of access from Night Owls." in await card.inner_text()
        await _shot(page, "sandbox-stars-invoice-desktop")
        await card.locator("button.kb >> text=Pay 5,000 Stars").click()
        await page.wait_for_selector("#sum-subs >> text=demo-yearly", timeout=15_000)
        await page.wait_for_selector(".msg:last-child >> text=Payment received")
        assert outside == []
        await context.close()


async def test_the_checkout_pages_stars_link_stays_in_the_sandbox(
    stars_sandbox: Sandbox,
) -> None:
    """ "Pay with Stars" on a bitcoin checkout page opens the sandbox chat following the bot's
    /start stars_<plan> link, not t.me."""
    client = stars_sandbox.client
    made = await client.post("/api/v1/users", json={"username": "dora", "platform": "api"})
    assert made.status_code == 201, made.text
    user = made.json()
    plan_id = SANDBOX_PLANS[0].id
    created = await client.post(
        "/api/v1/subscriptions", json={"user_id": user["user_id"], "subscription_type": plan_id}
    )
    assert created.status_code == 201, created.text
    invoice_id = created.json()["invoice"]["id"]
    async with httpx.AsyncClient(timeout=30, base_url=stars_sandbox.url) as anonymous:
        page = await anonymous.get(f"/pay/{invoice_id}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert f'id="stars-link" href="/sandbox?start=stars_{plan_id}"' in page.text
    assert "t.me/" not in page.text
