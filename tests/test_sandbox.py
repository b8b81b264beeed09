"""Sandbox mode: no processor configured, the built-in BTCPay emulator is mounted in the
app and reached over HTTP; the checkout page pays through 'Simulate payment' in Chromium."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Request

from satshare.config import Settings
from satshare.container import build_container
from satshare.rates.service import source_name
from satshare.sandbox import issue_sandbox_key
from tests.browser import chromium, refuse_outside
from tests.conftest import BTCPAY_KEY, STORE_ID, BTCPaySim
from tests.helpers import buy, create_user, wait_until
from tests.qrkit import WIDTHS, keep
from tests.sandboxkit import Sandbox


async def test_sandbox_announces_itself(sandbox: Sandbox) -> None:
    welcome = (await sandbox.client.get("/")).json()
    assert welcome["mode"] == "sandbox"
    assert "emulator" in welcome["sandbox"]
    assert (await sandbox.client.get("/health")).json()["mode"] == "sandbox"


async def test_new_sandbox_key_revokes_the_previous_one(sandbox: Sandbox) -> None:
    old = sandbox.client.headers["Authorization"]
    await issue_sandbox_key(sandbox.container.db, sandbox.container.clock)
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.server.url) as anon:
        response = await anon.get("/api/v1/users", headers={"Authorization": old})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("rates", "labelled", "shown"),
    [
        ({"source": "kraken"}, "kraken-sandbox", ("Kraken", True)),
        ({"source": "btcpay"}, "btcpay-sandbox", ("BTCPay Server", True)),
        ({"source": "fixed", "fixed": {"USD": "100000"}}, "fixed", ("fixed", False)),
        # An operator's own rates URL is a real service even in the sandbox.
        ({"source": "yadio", "url": "https://rates.example"}, "yadio", ("Yadio", False)),
    ],
)
async def test_sandbox_rates_say_they_are_emulated(
    rates: dict[str, object], labelled: str, shown: tuple[str, bool]
) -> None:
    """Invoices record whose rate it really was: an emulator standing in is named so."""
    container = build_container(Settings(database={"url": "sqlite+aiosqlite://"}, rates=rates))
    try:
        assert container.sandbox is not None
        source = container.payments.rates
        assert source is not None
        assert source.name == labelled
        assert source_name(source.name) == shown
    finally:
        await container.aclose()


@pytest.mark.browser
async def test_checkout_page_simulate_payment_in_chromium(sandbox: Sandbox) -> None:
    affiliate = await create_user(sandbox.client, "affiliate")
    buyer = await create_user(sandbox.client, "buyer", referral_id=affiliate["referral_code"])
    order = await buy(sandbox.client, buyer["user_id"], "demo-monthly")
    url = order["invoice"]["checkout_url"]
    assert url.startswith(sandbox.server.url + "/pay/inv_")

    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(url)
        assert "10,000 sats" in await page.inner_text("#amount")
        assert await page.get_attribute("#status", "data-status") == "new"
        assert (await page.inner_text("#bolt11")).startswith("lnbcrt")
        assert await page.locator(".qr svg").count() == 2
        await page.click("#simulate")
        await page.wait_for_selector("#done:not([hidden])", timeout=15_000)
        assert await page.get_attribute("#status", "data-status") == "settled"
        assert "active until" in await page.inner_text("#done")
        await page.close()

    user = (await sandbox.client.get(f"/api/v1/users/{affiliate['user_id']}")).json()
    assert user["balance_sats"] == 5_000
    sub = (await sandbox.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    assert sub["status"] == "active"


async def test_simulate_is_refused_twice_and_unknown_invoice_is_404(sandbox: Sandbox) -> None:
    buyer = await create_user(sandbox.client, "buyer")
    order = await buy(sandbox.client, buyer["user_id"], "demo-monthly")
    invoice_id = order["invoice"]["id"]
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.server.url) as anon:
        assert (await anon.post(f"/pay/{invoice_id}/simulate")).status_code == 200
        second = await anon.post(f"/pay/{invoice_id}/simulate")
        assert second.status_code == 422
        assert second.headers["content-type"] == "application/problem+json"
        missing = await anon.get("/pay/inv_nope")
        assert missing.status_code == 404


#: The sandbox's one channel, named after the plans that grant it.
CHANNEL = "Demo channel, 30 days / Demo channel, 365 days"


@pytest.mark.browser
async def test_sandbox_chat_page_in_chromium(sandbox_with_bot: Sandbox) -> None:
    """The no-secrets demo: two users, a referral, a purchase, a channel, a commission."""
    base = sandbox_with_bot.server.url
    async with chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{base}/sandbox")
        await page.fill("#new-name", "Alice")
        await page.click("#new-user")
        await page.wait_for_selector(".msg >> text=Welcome to SatShare")
        await page.click("button.kb >> text=Invite & earn")
        await page.wait_for_selector(".msg >> text=Your invitation link")
        code = (await page.inner_text("#sum-code")).strip()
        assert f"start=ref_{code}" in await page.inner_text("#messages")

        await page.fill("#new-name", "Bob")
        await page.click("#invite-user")
        await page.wait_for_selector(".msg >> text=invitation")
        await page.click("button.kb >> text=Plans")
        await page.click("button.kb >> text=Demo channel, 30 days")
        await page.wait_for_selector(".msg img[alt='QR code']")
        async with context.expect_page() as opened:
            await page.click(".msg a[href*='/pay/inv_']")
        checkout = await opened.value
        await checkout.wait_for_selector("#simulate")
        await checkout.click("#simulate")
        await checkout.wait_for_selector("#done:not([hidden])", timeout=15_000)

        await page.wait_for_selector(".msg >> text=Payment received", timeout=15_000)
        # The join button opens the sandbox's stand-in for Telegram's "Request to join".
        async with context.expect_page() as opened:
            await page.click(f"button.kb >> text=Join {CHANNEL}")
        joining = await opened.value
        await joining.click("#act")
        await joining.wait_for_selector("#result.ok", timeout=30_000)
        await page.wait_for_selector("#channels li >> text=member", timeout=30_000)
        assert "demo-monthly" in await page.inner_text("#sum-subs")

        await page.click(".user >> text=Alice")
        await page.wait_for_selector(".msg >> text=You earned 5", timeout=30_000)
        await page.wait_for_function(
            "document.querySelector('#sum-balance') && "
            "document.querySelector('#sum-balance').textContent.startsWith('5')"
        )
        assert (await page.inner_text("#sum-referrals")).strip() == "1 / 1"
        await context.close()


async def test_sandbox_pays_affiliates_to_its_own_lightning_addresses(sandbox: Sandbox) -> None:
    affiliate = await create_user(sandbox.client, "affiliate")
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.server.url) as anon:
        for _ in range(2):
            buyer = await create_user(sandbox.client, "buyer", referral_id=affiliate["user_id"])
            order = await buy(sandbox.client, buyer["user_id"], "demo-monthly")
            paid = await anon.post(f"/pay/{order['invoice']['id']}/simulate")
            assert paid.status_code == 200, paid.text
    uid = affiliate["user_id"]
    version = (await sandbox.client.get("/api/v1/affiliate-program")).json()["terms_version"]
    await sandbox.client.post(
        f"/api/v1/affiliates/{uid}/terms-acceptance", json={"version": version}
    )
    host = sandbox.server.url.split("://", 1)[1]

    async def earned() -> bool:
        shown = (await sandbox.client.get(f"/api/v1/affiliates/{uid}")).json()
        return bool(shown["balance"]["available_sats"] == 10_000)

    await wait_until(earned)
    refused = await sandbox.client.post(
        "/api/v1/payouts",
        json={"user_id": uid, "amount_sats": 10_000, "destination": f"No Such@{host}"},
    )
    assert refused.status_code == 422
    created = await sandbox.client.post(
        "/api/v1/payouts",
        json={"user_id": uid, "amount_sats": 10_000, "destination": f"alice@{host}"},
    )
    assert created.status_code == 201, created.text
    payout_id = created.json()["payout_id"]
    assert created.json()["status"] == "awaiting_approval"  # auto_approve_max_sats: 0
    approved = await sandbox.client.post(f"/api/v1/payouts/{payout_id}/approve")
    assert approved.status_code == 200, approved.text
    await sandbox.container.payout_runner.flush()
    done = (await sandbox.client.get(f"/api/v1/payouts/{payout_id}")).json()
    assert done["status"] == "paid" and done["proof"], done
    (sent,) = sandbox.container.sandbox.btcpay.payouts.payouts.values()  # type: ignore[union-attr]
    assert (sent.method, sent.destination, sent.amount_sats) == ("BTC-LN", f"alice@{host}", 10_000)


#: What makes a page look like the sandbox's pages: the page and its card.
LOOK = """() => {
    const style = selector => {
        const element = document.querySelector(selector);
        return element ? getComputedStyle(element) : {};
    };
    const body = style('body'), card = style('.card'), kicker = style('.kicker');
    return [body.backgroundColor, body.fontFamily, card.backgroundColor, card.borderRadius,
            card.boxShadow, kicker.textTransform];
}"""


@pytest.mark.browser
async def test_the_btcpay_emulators_checkout_looks_like_the_other_sandbox_pages(
    sandbox: Sandbox, btcpay: BTCPaySim
) -> None:
    buyer = await create_user(sandbox.client, "buyer")
    invoice = (await buy(sandbox.client, buyer["user_id"], "demo-monthly"))["invoice"]
    mounted = invoice["provider_checkout_url"]
    assert mounted.startswith(f"{sandbox.url}/sim/btcpay/i/")
    # The emulator run on its own (`satshare sim btcpay`) serves the same page.
    async with httpx.AsyncClient(
        base_url=btcpay.url, headers={"Authorization": f"token {BTCPAY_KEY}"}, timeout=30
    ) as api:
        body = {"amount": "5000", "currency": "SATS", "metadata": {"orderId": "o1"}}
        alone = await api.post(f"/api/v1/stores/{STORE_ID}/invoices", json=body)
    alone_url = alone.json()["checkoutLink"]
    async with chromium() as browser:
        for label, width in WIDTHS.items():
            context = await browser.new_context(viewport={"width": width, "height": 900})
            outside = await refuse_outside(context)
            page = await context.new_page()
            await page.goto(f"{sandbox.url}/sandbox/link/+nosuchlink")  # a sandbox page
            look = await page.evaluate(LOOK)
            for url, amount in ((mounted, "10,000 sats"), (alone_url, "5,000 sats")):
                fetched: list[str] = []

                def note(request: Request, into: list[str] = fetched) -> None:
                    into.append(request.url)

                page.on("request", note)
                await page.goto(url)
                page.remove_listener("request", note)
                assert await page.evaluate(LOOK) == look, (label, url)
                assert fetched == [url]  # styled inline: nothing else to load, offline or not
                assert await page.inner_text("h1") == amount
                bolt11 = (await page.inner_text("#bolt11")).strip()
                assert bolt11.startswith("lnbcrt")
                if url == mounted:
                    assert bolt11 == invoice["payment_request"]
                    assert (await page.inner_text("#address")).strip() == invoice["address"]
                assert await page.inner_text("#status") == "New"
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, (label, url, overflow)
                keep(await page.screenshot(full_page=True), f"btcpay-checkout-{label}")
            await page.click("text=All invoices")  # the emulator's list, styled the same
            assert "BTCPay Server emulator" in await page.inner_text("h1")
            assert await page.evaluate(LOOK) == look
            assert outside == []
            await context.close()
