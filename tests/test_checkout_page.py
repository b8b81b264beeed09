"""The checkout page in Chromium: every rail the plan allows, switching rail, Russian and
English, live status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from satshare.sim.esplora import EsploraEmulator
from satshare.sim.esplora import build_app as build_esplora
from satshare.sim.lnbits import LNbitsEmulator
from satshare.sim.lnbits import build_app as build_lnbits
from tests.browser import chromium
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import REGTEST_TPUB, create_user
from tests.servers import start_server

PLANS: list[dict[str, Any]] = [
    {
        "id": "monthly",
        "title": "Premium, 30 days",
        "price": {"amount": "9.99", "currency": "USD"},
        "duration_days": 30,
    }
]


@pytest.fixture
async def multi(
    database_url: str, btcpay: BTCPaySim
) -> AsyncIterator[tuple[Stack, LNbitsEmulator]]:
    lnbits = LNbitsEmulator(invoice_key="inv-key-123", admin_key="adm-key-456")
    lnbits_server = await start_server(build_lnbits(lnbits))
    esplora_server = await start_server(build_esplora(EsploraEmulator()))
    stack = await open_stack(
        database_url,
        btcpay,
        plans=PLANS,
        rates={"source": "fixed", "fixed": {"USD": "100000"}},
        lnbits={"url": lnbits_server.url, "invoice_key": "inv-key-123"},
        onchain={"xpub": REGTEST_TPUB, "network": "regtest", "esplora_url": esplora_server.url},
    )
    yield stack, lnbits
    await close_stack(stack)
    await lnbits_server.stop()
    await esplora_server.stop()
    await lnbits.aclose()


@pytest.mark.browser
async def test_switch_rail_in_russian_and_pay(multi: tuple[Stack, LNbitsEmulator]) -> None:
    stack, lnbits = multi
    user = await create_user(stack.client, "buyer")
    order = (
        await stack.client.post(
            "/api/v1/subscriptions",
            json={"user_id": user["user_id"], "subscription_type": "monthly"},
        )
    ).json()
    url = order["invoice"]["checkout_url"]
    async with chromium() as browser:
        page = await browser.new_page(extra_http_headers={"Accept-Language": "ru-RU,ru;q=0.9"})
        await page.goto(url)
        body = await page.inner_text("body")
        assert "Способ оплаты" in body and "Истекает через" in body
        assert "9.99 USD" in await page.inner_text("#fiat")
        assert await page.inner_text("#amount") == "9\u00a0990 сат."  # Babel: ru groups by spaces
        labels = await page.locator("#rails button").all_inner_texts()
        assert labels == ["Биткоин (BTCPay)", "Lightning", "Блокчейн"]
        assert await page.get_attribute("#status", "data-status") == "new"

        await page.click("#rails button[data-rail='lnbits']")
        await page.wait_for_url("**/pay/inv_*?lang=ru")
        assert page.url != url
        bolt11 = (await page.inner_text("#bolt11")).strip()
        assert bolt11.startswith("lnbcrt")
        assert await page.locator("#onchain").count() == 0
        payment_hash = next(p.payment_hash for p in lnbits.payments.values() if p.bolt11 == bolt11)
        lnbits.settle(payment_hash)
        await page.wait_for_selector("#done:not([hidden])", timeout=15_000)
        assert await page.get_attribute("#status", "data-status") == "settled"
        assert "Оплата получена" in await page.inner_text("#done")

        await page.click("nav.lang >> text=English")
        await page.wait_for_selector("text=Payment received")
        await page.close()
