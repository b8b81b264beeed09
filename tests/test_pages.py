"""Every page SatShare serves, as a person meets it: in Chromium, at desktop and phone width,
with no internet, its QR codes read back from the pixels."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from playwright.async_api import Page

from satshare.access import service as access
from tests.browser import chromium, refuse_outside
from tests.conftest import Stack
from tests.helpers import buy, create_user, wait_until
from tests.qrkit import WIDTHS, decode, keep
from tests.sandboxkit import Sandbox, pay_in_sandbox


async def _order(sandbox: Sandbox) -> dict[str, Any]:
    buyer = await create_user(sandbox.client, "buyer")
    return await buy(sandbox.client, buyer["user_id"], "demo-monthly")


async def _shot(page: Page, name: str) -> bytes:
    image = await page.screenshot(full_page=True)
    keep(image, name)
    return image


@pytest.mark.browser
async def test_checkout_qr_codes_decode_from_the_screen(sandbox: Sandbox) -> None:
    order = await _order(sandbox)
    invoice = order["invoice"]
    bolt11, address = invoice["payment_request"], invoice["address"]
    assert bolt11.startswith("lnbcrt") and address.startswith("bcrt1")
    expected = [
        "lightning:" + bolt11.upper(),
        f"bitcoin:{address}?amount=0.00010000",  # 10,000 sats
    ]
    async with chromium() as browser:
        for label, width in WIDTHS.items():
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.goto(invoice["checkout_url"])
            assert (await page.inner_text("#bolt11")).strip() == bolt11
            assert decode(await _shot(page, f"checkout-open-{label}")) == expected, label
            for card in ("#lightning", "#onchain"):
                box = await page.locator(f"{card} .qr").bounding_box()
                assert box is not None and box["width"] <= width
            await page.close()


@pytest.mark.browser
async def test_every_page_renders_with_no_internet(sandbox: Sandbox) -> None:
    open_order, paid_order = await _order(sandbox), await _order(sandbox)
    await pay_in_sandbox(sandbox, paid_order["invoice"]["id"])
    base = sandbox.url
    processor_page = open_order["invoice"]["provider_checkout_url"]
    assert processor_page.startswith(base + "/sim/btcpay/")
    #: name → (path, a selector that is there only once the page has really rendered)
    pages = {
        "home": ("/", "#links a[href='/docs']"),
        "docs": ("/docs", ".swagger-ui .opblock-tag"),
        "checkout-open": (f"/pay/{open_order['invoice']['id']}", "#lightning .qr svg"),
        "checkout-paid": (f"/pay/{paid_order['invoice']['id']}", "#done:not([hidden])"),
        "checkout-unknown": ("/pay/inv_nothing_here", "#not-found"),
        "transparency": ("/transparency", "#months"),
        "sandbox-chat": ("/sandbox", "#new-user"),
        "sandbox-link": ("/sandbox/link/+nosuchlink", "#link"),  # Telegram's stand-in
        "problem-type": ("/problems/not-found", "h1"),
        "processor-checkout": (processor_page.removeprefix(base), "h1"),
    }
    async with chromium() as browser:
        for label, width in WIDTHS.items():
            context = await browser.new_context(viewport={"width": width, "height": 900})
            for name, (path, ready) in pages.items():
                page = await context.new_page()
                outside = await refuse_outside(page)
                errors: list[str] = []
                page.on("pageerror", lambda error, into=errors: into.append(str(error)))
                await page.goto(base + path)
                await page.wait_for_selector(ready, state="attached", timeout=30_000)
                await _shot(page, f"offline-{name}-{label}")
                assert outside == [], f"{path} reached out to {outside}"
                assert errors == [], f"{path}: {errors}"
                await page.close()
            await context.close()


async def test_home_is_html_for_browsers_and_json_for_programs(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.url) as client:
        browser = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert browser.headers["content-type"].startswith("text/html")
        assert 'href="/sandbox"' in browser.text and 'href="/docs"' in browser.text
        assert 'href="/admin"' in browser.text and 'href="/transparency"' in browser.text
        for accept in ("*/*", "application/json", "application/json, text/html"):
            program = await client.get("/", headers={"Accept": accept})
            assert program.json()["mode"] == "sandbox", accept
        page = await client.get("/pay/inv_nothing_here", headers={"Accept": "text/html"})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        api = await client.get("/pay/inv_nothing_here", headers={"Accept": "application/json"})
        assert api.status_code == 404
        assert api.headers["content-type"] == "application/problem+json"
        # A link cut or garbled: longer than any invoice id, still the not-found page.
        long_id = await client.get("/pay/" + "x" * 500, headers={"Accept": "text/html"})
        assert long_id.status_code == 404 and 'id="not-found"' in long_id.text
        # A wrong address: the site's page for a browser, a problem for a program.
        wrong = await client.get("/does/not/exist", headers={"Accept": "text/html"})
        assert wrong.status_code == 404 and 'id="not-found"' in wrong.text
        assert "There is no page at this address." in wrong.text
        wrong = await client.get("/does/not/exist?lang=ru", headers={"Accept": "text/html"})
        assert "По этому адресу нет страницы." in wrong.text
        # The language chosen on one page is kept on the next (a cookie), until changed.
        home = await client.get("/transparency", headers={"Accept": "text/html"})
        assert 'lang="ru"' in home.text
        home = await client.get("/transparency?lang=en", headers={"Accept": "text/html"})
        assert 'lang="en"' in home.text
        home = await client.get("/", headers={"Accept": "text/html"})
        assert 'lang="en"' in home.text
        wrong = await client.get("/api/v1/nothing", headers={"Accept": "text/html"})
        assert wrong.headers["content-type"] == "application/problem+json"  # the API: JSON
        wrong = await client.get("/does/not/exist", headers={"Accept": "application/json"})
        assert wrong.headers["content-type"] == "application/problem+json"
        # Every page names its icon; browsers ask for /favicon.ico anyway.
        assert '<link rel="icon" href="/favicon.ico"' in browser.text
        icon = await client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"


@pytest.mark.browser
async def test_sandbox_chat_shows_the_bots_pop_up_answers(sandbox_with_bot: Sandbox) -> None:
    async with chromium() as browser:
        for label, width in WIDTHS.items():
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.goto(f"{sandbox_with_bot.url}/sandbox")
            await page.fill("#new-name", f"Carol {label}")
            await page.click("#new-user")
            await page.click("button.kb >> text=Plans")
            await page.click("button.kb >> text=Demo channel, 30 days")
            await page.wait_for_selector(".msg img[alt='QR code']")
            await page.click("button.kb >> text=Check payment")
            await page.wait_for_selector("#alert[open]")
            assert (await page.inner_text("#alert-text")).startswith("Not paid yet")
            image = await _shot(page, f"sandbox-alert-{label}")
            assert await page.locator("#alert").is_visible()
            await page.click("#alert-ok")
            await page.wait_for_selector("#alert:not([open])", state="attached")
            # The invoice photo in the chat reads back as the invoice in its caption.
            caption = await page.inner_text(".msg:has(img) .text")
            bolt11 = next(word for word in caption.split() if word.startswith("lnbcrt"))
            photo = await page.locator(".msg img").last.screenshot()
            assert decode(photo) == ["lightning:" + bolt11.upper()]
            assert image
            await page.close()


@pytest.mark.browser
async def test_checkout_counts_down_then_shows_only_the_result_once_paid(
    sandbox: Sandbox,
) -> None:
    order = await _order(sandbox)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 900})
        await page.goto(order["invoice"]["checkout_url"])
        first = await page.inner_text("#countdown")
        assert re.fullmatch(r"1[45]:[0-5]\d", first), first  # a 15-minute invoice, as mm:ss
        await page.wait_for_function(
            "text => document.getElementById('countdown').textContent !== text", arg=first
        )
        assert re.fullmatch(r"1[45]:[0-5]\d", await page.inner_text("#countdown"))
        await page.click("#simulate")
        await page.wait_for_selector("#done", timeout=15_000)  # the page redraws itself
        await _shot(page, "checkout-paid-live-phone")
        assert await page.get_attribute("#status", "data-status") == "settled"
        assert await page.locator(".qr, #bolt11, #address, #simulate, #rails").count() == 0
        assert await page.locator("a[href^='lightning:'], a[href^='bitcoin:']").count() == 0
        assert "Open in wallet" not in await page.inner_text("body")
        until = await page.inner_text("#active-until")
        assert re.fullmatch(r"\w{3} \d{1,2}, \d{4}, \d{1,2}:\d\d\s?[AP]M UTC", until), until
        assert await page.get_attribute("#back-to-bot", "href") == "/sandbox"
        assert await page.locator("#countdown").count() == 0

        await page.goto(order["invoice"]["checkout_url"] + "?lang=ru")
        assert "Оплата получена" in await page.inner_text("#done")
        assert await page.inner_text("#status") == "оплачен"  # an invoice, not a payout
        assert "\u0433.," in await page.inner_text("#active-until")  # the year as Babel writes it
        await page.close()


async def test_paid_page_links_into_the_plans_channels(stack: Stack) -> None:
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"], "monthly")
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    url = order["invoice"]["checkout_url"]
    html = {"Accept": "text/html"}
    async with stack.anonymous() as client:

        async def settled() -> bool:
            status = (await client.get(f"/pay/{order['invoice']['id']}/status")).json()
            return bool(status["status"] == "settled")

        await wait_until(settled, timeout=15)
        # No bot has made the channel's join-request link yet: the page says where to look.
        page = (await client.get(url, headers=html)).text
        assert "<title>Payment received · " in page  # the tab, too, no longer asks to pay
        assert "The bot has sent you the links into the channels." in page
        assert "lightning:" not in page and "Open in wallet" not in page
        async with stack.db.transaction() as session:
            await access.save_shared_link(
                session, -1001000000001, "https://t.me/+premium", stack.container.clock.now()
            )
        page = (await client.get(url, headers=html)).text
        assert '<a href="https://t.me/+premium" rel="noopener">Join Premium, 30 days</a>' in page
        assert "The private channel for a month" in page  # the plan's description


@pytest.mark.browser
async def test_sandbox_chat_names_channels_and_people_and_serves_the_report(
    sandbox_with_bot: Sandbox,
) -> None:
    base = sandbox_with_bot.url
    channel = "Demo channel, 30 days / Demo channel, 365 days"  # the plans that grant it
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(f"{base}/sandbox")
        await page.fill("#new-name", "Olga")
        await page.check("#new-admin")
        await page.click("#new-user")
        await page.wait_for_selector(".user.active .badge")
        await page.fill("#new-name", "Alice")
        await page.click("#new-user")
        await page.wait_for_selector(".msg >> text=Welcome to SatShare")
        await page.fill("#new-name", "Bob")
        await page.click("#invite-user")
        await page.wait_for_selector("#sum-referrer >> text=Alice (@alice2)")
        await page.click("button.kb >> text=Plans")
        await page.click("button.kb >> text=Demo channel, 30 days")
        await page.wait_for_selector(".msg img[alt='QR code']")
        # The chat stays scrolled to its end once the QR code has its height.
        await page.wait_for_function(
            "() => { const box = document.getElementById('messages');"
            " return box.scrollHeight - box.clientHeight - box.scrollTop < 2; }",
            timeout=5_000,
        )
        invoice_id = (await page.inner_text(".msg:has(img)")).split("/pay/")[1].split()[0]
        await pay_in_sandbox(sandbox_with_bot, invoice_id)
        async with context.expect_page() as opened:
            await page.click(f"button.kb >> text=Join {channel}", timeout=15_000)
        joining = await opened.value  # the sandbox's "Request to join" page
        await joining.click("#act")
        await joining.wait_for_selector("#result.ok", timeout=30_000)
        await joining.close()
        await page.wait_for_selector(f"#channels li >> text={channel}: member", timeout=30_000)
        await _shot(page, "sandbox-joined-desktop")

        await page.click(".user >> text=Olga")
        await page.wait_for_selector(".msg >> text=New sale", timeout=30_000)
        await page.fill("#text", "/report")
        await page.press("#text", "Enter")
        chart = page.locator(".msg img[alt='Chart']")
        await chart.wait_for(timeout=30_000)
        assert await chart.evaluate("img => img.naturalWidth") >= 800
        assert (await chart.bounding_box() or {}).get("width", 0) > 600  # not a thumbnail
        await _shot(page, "sandbox-report-desktop")
        async with page.expect_download() as downloading:
            await page.click(".msg a.file")
        download = await downloading.value
        assert download.suggested_filename.endswith(".xlsx")
        saved = await download.path()
        workbook = load_workbook(io.BytesIO(saved.read_bytes()), read_only=True)
        assert workbook.sheetnames
        await context.close()


async def test_a_payment_being_confirmed_offers_no_way_to_pay_again(stack: Stack) -> None:
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"], "monthly")
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"], method="BTC-CHAIN")
    async with stack.anonymous() as client:

        async def seen() -> bool:
            status = (await client.get(f"/pay/{order['invoice']['id']}/status")).json()
            return bool(status["status"] == "processing")

        await wait_until(seen, timeout=15)
        page = await client.get(order["invoice"]["checkout_url"], headers={"Accept": "text/html"})
        assert 'id="confirming"' in page.text and "Do not pay again." in page.text
        assert "<title>Pay " not in page.text
        assert 'class="qr"' not in page.text and "lightning:" not in page.text
        assert "bitcoin:" not in page.text and 'id="countdown"' not in page.text


#: How many lines an element's text takes on the screen (its line boxes, by their tops).
LINES = """element => {
    const range = document.createRange();
    range.selectNodeContents(element);
    return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
}"""


@pytest.mark.browser
async def test_buttons_and_the_curl_example_read_well_in_russian_on_a_phone(
    sandbox: Sandbox,
) -> None:
    """Russian labels are longer: no label broken inside its button or link, no command cut
    inside its address, nothing wider than the screen, at phone and desktop width."""
    order = await _order(sandbox)
    async with chromium() as browser:
        for language in ("ru", "en"):
            for label, width in WIDTHS.items():
                context = await browser.new_context(viewport={"width": width, "height": 900})
                cookie = {"name": "satshare_lang", "value": language, "url": sandbox.url}
                await context.add_cookies([cookie])  # type: ignore[list-item]
                page = await context.new_page()
                await page.goto(sandbox.url + "/")
                curl = page.locator("#curl")
                assert await curl.inner_text() == f"curl {sandbox.url}/"
                assert await curl.evaluate(LINES) == 1, (language, label)
                box = await curl.bounding_box()
                assert box is not None and box["x"] + box["width"] <= width
                await _shot(page, f"home-{language}-{label}")
                assert await page.evaluate("document.documentElement.scrollWidth") <= width

                await page.goto(order["invoice"]["checkout_url"])
                await page.click("#promo summary")  # its Apply button too
                assert await page.get_attribute("html", "lang") == language
                wallets = "a[href^='lightning:'], a[href^='bitcoin:']"
                actions = page.locator(f"button:visible, {wallets}")
                assert await actions.count() == 6  # 2 copy, 2 wallet links, apply, simulate
                for action in await actions.all():
                    text = await action.inner_text()
                    assert await action.evaluate(LINES) == 1, (language, label, text)
                    box = await action.bounding_box()
                    assert box is not None and box["x"] + box["width"] <= width, text
                await _shot(page, f"checkout-actions-{language}-{label}")
                assert await page.evaluate("document.documentElement.scrollWidth") <= width
                await context.close()
