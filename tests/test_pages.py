"""Every page SatShare serves, as a person meets it: in Chromium, at desktop and phone width,
with no internet, its QR codes read back from the pixels."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser import chromium
from tests.helpers import buy, create_user
from tests.qrkit import WIDTHS, decode, keep
from tests.sandboxkit import Sandbox


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
