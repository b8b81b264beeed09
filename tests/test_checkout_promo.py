"""A promo code on the web checkout (#13): the same rules and reasons as the bot and the API.
A code that applies makes a new invoice at its price (original price, discount and price to
pay shown); a bad, expired, used-up or wrong-plan code says why, in the page's language, and
changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from satshare.api import texts as web
from satshare.api.presenters import invoice_out
from satshare.i18n import translate
from satshare.payments.models import Invoice
from satshare.promos.models import CODE_MAX_LENGTH
from tests.browser import chromium
from tests.helpers import buy, create_user, wait_until
from tests.qrkit import WIDTHS, decode, keep
from tests.sandboxkit import Sandbox

CODES: list[dict[str, Any]] = [
    {"code": "SPRING20", "kind": "percent", "value": 20},
    {"code": "YEARLY", "kind": "fixed_sats", "value": 5_000, "plans": ["demo-yearly"]},
    {
        "code": "OLD",
        "kind": "percent",
        "value": 50,
        "valid_from": "2020-01-01T00:00:00Z",
        "valid_until": "2021-01-01T00:00:00Z",
    },
    {"code": "ONCE", "kind": "percent", "value": 10, "max_uses": 1},
    {"code": "WEEK", "kind": "extra_days", "value": 7},
]


async def _codes(sandbox: Sandbox) -> None:
    for body in CODES:
        created = await sandbox.client.post("/api/v1/promo-codes", json=body)
        assert created.status_code == 201, created.text
    # Someone else takes the one use of ONCE.
    other = await create_user(sandbox.client, "other")
    taken = await sandbox.client.post(
        "/api/v1/subscriptions",
        json={
            "user_id": other["user_id"],
            "subscription_type": "demo-monthly",
            "promo_code": "ONCE",
        },
    )
    assert taken.status_code == 201, taken.text


async def _invoices_of(sandbox: Sandbox, user_id: int) -> list[dict[str, Any]]:
    """The buyer's invoices, oldest first, as the API shows them."""
    async with sandbox.container.db.reading() as session:
        rows = (
            await session.execute(
                select(Invoice).where(Invoice.user_id == user_id).order_by(Invoice.created_at)
            )
        ).scalars()
        return [invoice_out(row, sandbox.container.payments).model_dump() for row in rows]


def _refused(language: str, code: str, reason: str) -> str:
    return translate(language, web.PROMO_REFUSED, code=code, reason=translate(language, reason))


@pytest.mark.browser
async def test_a_promo_code_on_the_checkout_page(sandbox: Sandbox) -> None:
    await _codes(sandbox)
    buyer = (await create_user(sandbox.client, "buyer"))["user_id"]
    order = (await buy(sandbox.client, buyer, "demo-monthly"))["invoice"]
    refusals = [
        ("nope", "NOPE", web.PROMO_UNKNOWN),
        ("old", "OLD", web.PROMO_EXPIRED),
        ("once", "ONCE", web.PROMO_USED_UP),
        ("Yearly", "YEARLY", web.PROMO_WRONG_PLAN),
    ]
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(order["checkout_url"])
        await page.click("#promo summary")
        for typed, code, reason in refusals:
            await page.fill("#promo-code", typed)
            await page.click("#promo-apply")
            await page.wait_for_function(
                "(code) => document.querySelector('#promo-error').textContent.includes(code)",
                arg=code,
            )
            assert await page.inner_text("#promo-error") == _refused("en", code, reason)
            # Nothing changed: the same invoice, the same price, no new invoice.
            assert page.url == order["checkout_url"]
            assert await page.inner_text("#amount") == "10,000 sats"
            assert [i["id"] for i in await _invoices_of(sandbox, buyer)] == [order["id"]]
        keep(await page.screenshot(full_page=True), "checkout-promo-refused-desktop")

        # In Russian, the same reasons in Russian.
        await page.goto(order["checkout_url"] + "?lang=ru")
        await page.click("#promo summary")
        await page.fill("#promo-code", "old")
        await page.click("#promo-apply")
        await page.wait_for_selector("#promo-error:not([hidden])")
        assert await page.inner_text("#promo-error") == _refused("ru", "OLD", web.PROMO_EXPIRED)

        # A code that applies: a new invoice at its price, the way to pay it at once (back
        # in English: the page keeps the language last chosen).
        await page.goto(order["checkout_url"] + "?lang=en")
        await page.click("#promo summary")
        await page.fill("#promo-code", "spring20")
        await page.click("#promo-apply")
        await page.wait_for_url(lambda url: order["id"] not in url)
        invoices = await _invoices_of(sandbox, buyer)
        discounted = next(i for i in invoices if i["id"] != order["id"])
        assert (discounted["amount_sats"], discounted["original_sats"]) == (8_000, 10_000)
        assert (discounted["discount_sats"], discounted["promo_code"]) == (2_000, "SPRING20")
        assert page.url.startswith(discounted["checkout_url"])
        assert await page.inner_text("#amount") == "8,000 sats"
        assert await page.inner_text("#discount") == translate(
            "en", web.PROMO_DISCOUNT, original="10,000", code="SPRING20", discount="2,000"
        )
        for label, width in WIDTHS.items():
            await page.set_viewport_size({"width": width, "height": 900})
            shot = await page.screenshot(full_page=True)
            keep(shot, f"checkout-promo-applied-{label}")
            assert decode(shot)[0] == "lightning:" + discounted["payment_request"].upper()
        # The same code again: nothing new.
        await page.fill("#promo-code", "SPRING20")
        async with page.expect_navigation():
            await page.click("#promo-apply")
        assert page.url.startswith(discounted["checkout_url"])
        assert len(await _invoices_of(sandbox, buyer)) == 2

        # An extra-days code says so under the days of access.
        await page.fill("#promo-code", "week")
        await page.click("#promo-apply")
        await page.wait_for_url(lambda url: discounted["id"] not in url)
        await page.wait_for_selector("#bonus-days")
        assert await page.inner_text("#bonus-days") == "Plus 7 extra days."
        assert await page.inner_text("#amount") == "10,000 sats"
        await page.close()

    # Paid at the code's price: the split is of what was paid.
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.url) as anonymous:
        assert (await anonymous.post(f"/pay/{discounted['id']}/simulate")).status_code == 200

        async def settled() -> bool:
            status = (await anonymous.get(f"/pay/{discounted['id']}/status")).json()
            return bool(status["status"] == "settled")

        await wait_until(settled, timeout=15)
    stats = (await sandbox.client.get("/api/v1/promo-codes/SPRING20")).json()["stats"]
    assert (stats["uses"], stats["revenue_sats"], stats["discount_sats"]) == (1, 8_000, 2_000)


async def test_a_refused_code_is_a_problem_and_a_replaced_invoice_gives_its_use_back(
    sandbox: Sandbox,
) -> None:
    for body in (
        {"code": "ALPHA", "kind": "percent", "value": 10},  # once per user (the default)
        {"code": "BETA", "kind": "fixed_sats", "value": 1_000},
    ):
        assert (await sandbox.client.post("/api/v1/promo-codes", json=body)).status_code == 201
    buyer = (await create_user(sandbox.client, "buyer"))["user_id"]
    order = (await buy(sandbox.client, buyer, "demo-monthly"))["invoice"]
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.url) as page:
        refused = await page.post(f"/pay/{order['id']}/promo", json={"code": "nope"})
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["reason"] == "unknown"
        assert len(await _invoices_of(sandbox, buyer)) == 1  # nothing changed

        alpha = (await page.post(f"/pay/{order['id']}/promo", json={"code": "alpha"})).json()
        beta = (await page.post(f"/pay/{alpha['invoice_id']}/promo", json={"code": "BETA"})).json()
        # ALPHA's use went back when its invoice was replaced: the buyer may take it again.
        again = await page.post(f"/pay/{beta['invoice_id']}/promo", json={"code": "ALPHA"})
        assert again.status_code == 200, again.text
    alpha_stats = (await sandbox.client.get("/api/v1/promo-codes/ALPHA")).json()["stats"]
    assert alpha_stats["pending"] == 1  # one use held, by the newest invoice only


@pytest.mark.browser
async def test_the_longest_code_fits_the_field_and_a_longer_entry_is_no_such_code(
    sandbox: Sandbox,
) -> None:
    longest = "L" * (CODE_MAX_LENGTH - 1) + "9"
    body = {"code": longest, "kind": "percent", "value": 10}
    assert (await sandbox.client.post("/api/v1/promo-codes", json=body)).status_code == 201
    too_long = {**body, "code": longest + "X"}
    assert (await sandbox.client.post("/api/v1/promo-codes", json=too_long)).status_code == 422
    buyer = (await create_user(sandbox.client, "buyer"))["user_id"]
    order = (await buy(sandbox.client, buyer, "demo-monthly"))["invoice"]
    # Far longer than any code (and than the 64 the page's endpoint once took as a bound).
    pasted = "Z" * (CODE_MAX_LENGTH * 3)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 900})
        for language in ("ru", "en"):
            await page.goto(f"{order['checkout_url']}?lang={language}")
            await page.click("#promo summary")
            field = page.locator("#promo-code")
            assert await field.get_attribute("maxlength") == str(CODE_MAX_LENGTH)
            # What the page sends anyway (an old page, a script): refused as no such code,
            # in the page's language, and nothing changes.
            await field.evaluate("input => input.removeAttribute('maxlength')")
            await field.fill(pasted.lower())
            await page.click("#promo-apply")
            await page.wait_for_selector("#promo-error:not([hidden])")
            expected = _refused(language, pasted, web.PROMO_UNKNOWN)
            assert await page.inner_text("#promo-error") == expected
            assert page.url.startswith(order["checkout_url"])
            keep(await page.screenshot(full_page=True), f"checkout-promo-too-long-{language}")
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        assert [i["id"] for i in await _invoices_of(sandbox, buyer)] == [order["id"]]

        # Typed by hand, one key at a time: the field takes the longest code and no more.
        await page.reload()
        await page.click("#promo summary")
        await page.locator("#promo-code").press_sequentially(longest.lower() + "x")
        assert await page.input_value("#promo-code") == longest.lower()
        await page.click("#promo-apply")
        await page.wait_for_url(lambda url: order["id"] not in url)
        discounted = next(i for i in await _invoices_of(sandbox, buyer) if i["id"] != order["id"])
        assert (discounted["promo_code"], discounted["discount_sats"]) == (longest, 1_000)
        assert await page.inner_text("#amount") == "9,000 sats"
        assert longest in await page.inner_text("#discount")
        keep(await page.screenshot(full_page=True), "checkout-promo-longest-applied")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.close()


async def test_an_entry_longer_than_any_code_is_refused_as_no_such_code(
    sandbox: Sandbox,
) -> None:
    buyer = (await create_user(sandbox.client, "buyer"))["user_id"]
    order = (await buy(sandbox.client, buyer, "demo-monthly"))["invoice"]
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.url) as page:
        for length in (CODE_MAX_LENGTH + 1, 65, 10_000):
            refused = await page.post(f"/pay/{order['id']}/promo", json={"code": "A" * length})
            assert refused.status_code == 422, length
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["reason"] == "unknown", length
        empty = await page.post(f"/pay/{order['id']}/promo", json={"code": ""})
        assert empty.status_code == 422  # nothing typed: malformed, as before
    assert len(await _invoices_of(sandbox, buyer)) == 1
