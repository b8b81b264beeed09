"""The admin panel in Debian's Chromium (#12): login, lockout, roles, CSRF refusal, the
dashboard against the ledger, a payout approved end to end, a refund, API keys, plans and
the audit log showing each of them; every page at desktop and phone width with nothing
loaded from outside the machine (requests to anywhere but loopback are blocked and counted)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from satshare.notifications.models import OutboxMessage
from satshare.staff.models import Role
from tests.adminkit import admin_user, audit_actions
from tests.adminkit import browser_login as login
from tests.browser import offline_context
from tests.conftest import Stack
from tests.historykit import history
from tests.historykit import stack as stack
from tests.lightningkit import Lightning
from tests.payoutkit import affiliate, earn, payout, settle_payouts

#: Read at import: the stack fixture clears SATSHARE_* variables from the environment.
SCREENSHOTS = os.environ.get("SATSHARE_SCREENSHOTS")


def sats(text: str) -> int:
    return int(text.replace(",", "").strip())


@pytest.mark.browser
async def test_the_owner_works_the_panel_in_chromium(stack: Stack, lightning: Lightning) -> None:
    seen = await history(stack, lightning)
    alice = seen["alice"]
    await admin_user(stack, "olga", Role.OWNER)
    figures = (await stack.client.get("/api/v1/transparency")).json()
    async with offline_context() as (context, outside):
        page = await context.new_page()
        # Login: a wrong password is explained, the right one opens the dashboard.
        await login(page, stack.url, "olga", "not the password")
        assert "Wrong user name or password." in await page.inner_text("#login-error")
        await login(page, stack.url, "olga")
        await page.wait_for_url(f"{stack.url}/admin/")
        # Dashboard: this month's figures are the ledger's (the public figures' definitions).
        await page.click("#period-30d")
        totals = figures["totals"]
        for key, field in (
            ("gross", "gross_sats"),
            ("owner", "owner_share_sats"),
            ("affiliate", "affiliate_share_sats"),
            ("paid-out", "paid_out_sats"),
        ):
            assert sats(await page.inner_text(f"#figure-{key}")) == totals[field], key
        assert sats(await page.inner_text("#figure-owed")) == figures["owed_sats"]
        assert "25,000" in await page.inner_text("#payouts-waiting")
        # Payouts desk: approve the waiting payout; the affiliate is paid and notified.
        await page.click("#payouts-waiting")
        row = page.locator("#payouts tbody tr").first
        payout_id = int((await row.get_attribute("id") or "").removeprefix("payout-"))
        asked: list[str] = []

        async def confirm(dialog: Any) -> None:  # money leaves at once: asked first
            asked.append(dialog.message)
            await dialog.accept()

        page.once("dialog", confirm)
        await row.locator("button", has_text="Approve").click()
        assert f"Payout {payout_id} is now" in await page.inner_text(".ss-notices")
        assert asked and asked[0].startswith(f"Approve payout #{payout_id}: 25,000 sats to ")
        await settle_payouts(stack)
        assert (await payout(stack.client, payout_id))["status"] == "paid"
        async with stack.db.reading() as session:
            kinds = (
                (
                    await session.execute(
                        select(OutboxMessage.kind).where(OutboxMessage.user_id == alice)
                    )
                )
                .scalars()
                .all()
            )
        assert "payout.paid" in kinds
        await page.goto(f"{stack.url}/admin/desk/payouts?status=paid")
        assert await page.locator(f"#payout-{payout_id}").count() == 1
        # A refund of a settled sale, confirmed in the dialog.
        await page.goto(f"{stack.url}/admin/desk/invoices?status=settled")
        page.once("dialog", lambda dialog: dialog.accept())
        first = page.locator("#invoices tbody tr").first
        invoice_id = (await first.get_attribute("id") or "").removeprefix("invoice-")
        await first.locator("input[name=note]").fill("sent back, txid 5e2a")
        await first.locator("button", has_text="Refund").click()
        assert f"Invoice {invoice_id} refunded" in await page.inner_text(".ss-notices")
        # API keys: created and shown once, then revoked.
        await page.goto(f"{stack.url}/admin/desk/api-keys")
        await page.fill("#new-key-form input[name=name]", "website")
        await page.click("#new-key-form button[type=submit]")
        key = await page.inner_text("#new-key")
        assert key.startswith("ss_")
        async with stack.anonymous() as client:
            headers = {"Authorization": f"Bearer {key}"}
            assert (await client.get("/api/v1/users", headers=headers)).status_code == 200
            await page.reload()
            assert await page.locator("#new-key").count() == 0
            page.once("dialog", lambda dialog: dialog.accept())
            row = page.locator("#api-keys tr", has_text="website")
            await row.locator("button", has_text="Revoke").click()
            assert "revoked" in await page.inner_text("#api-keys")
            assert (await client.get("/api/v1/users", headers=headers)).status_code == 401
        # Plans: a new plan on sale, then archived; the config plan has no buttons.
        await page.goto(f"{stack.url}/admin/desk/plans")
        assert await page.locator("#plan-monthly button").count() == 0
        form = page.locator("#new-plan")
        for name, value in (
            ("id", "gold"),
            ("title", "Gold"),
            ("price_sats", "90000"),
            ("duration_days", "30"),
        ):
            await form.locator(f"input[name={name}]").fill(value)
        await form.locator("button[type=submit]").click()
        assert "Plan gold created" in await page.inner_text(".ss-notices")
        await page.locator("#plan-gold button", has_text="Archive").click()
        assert "archived" in await page.inner_text("#plan-gold .plan-state")
        # CSRF: a form whose token was tampered with is refused, and nothing changes.
        await page.goto(f"{stack.url}/admin/desk/plans")
        await page.evaluate(
            "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'forged')"
        )
        await page.locator("#plan-gold button", has_text="Put back on sale").click()
        assert "did not come from this panel" in await page.inner_text("#refused")
        await page.goto(f"{stack.url}/admin/desk/plans")
        assert "archived" in await page.inner_text("#plan-gold .plan-state")
        # Ledger: verify now.
        await page.goto(f"{stack.url}/admin/desk/ledger")
        await page.click("#verify")
        assert "The ledger verifies" in await page.inner_text("#verify-result")
        # The audit log shows each action, searchable.
        await page.goto(f"{stack.url}/admin/desk/audit")
        shown = await page.inner_text("#audit")
        for action in (
            "admin.login",
            "payout.approve",
            "invoice.refund",
            "api_key.create",
            "api_key.revoke",
            "plan.create",
            "plan.archive",
        ):
            assert action in shown, action
        await page.fill("#audit-search", "gold")
        await page.press("#audit-search", "Enter")
        actions = await page.locator(".audit-action").all_inner_texts()
        assert sorted(actions) == ["plan.archive", "plan.create"]
        # Russian.
        await page.goto(f"{stack.url}/admin/?lang=ru")
        assert "получено всего" in (await page.inner_text("body")).lower()
        # Logout: opening its address only asks; the menu's button (a POST) logs out.
        await page.goto(f"{stack.url}/admin/logout")
        assert await page.locator("#logout-confirm").count() == 1
        await page.goto(f"{stack.url}/admin/desk/payouts")
        assert page.url == f"{stack.url}/admin/desk/payouts"
        await page.click("#logout")
        await page.wait_for_url(f"{stack.url}/admin/login")
        await page.goto(f"{stack.url}/admin/desk/payouts")
        assert page.url == f"{stack.url}/admin/login?next=%2Fadmin%2Fdesk%2Fpayouts"
    assert outside == []
    assert "plan.restore" not in await audit_actions(stack)


@pytest.mark.browser
async def test_lockout_and_a_support_user_in_chromium(stack: Stack, lightning: Lightning) -> None:
    await admin_user(stack, "sue", Role.SUPPORT)
    alice = await affiliate(stack)
    await earn(stack, alice)
    requested = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("alice")},
    )
    payout_id = requested.json()["payout_id"]
    async with offline_context(390) as (context, outside):
        page = await context.new_page()
        # A support user reads the desk but has no approve button, and a forged post is
        # refused.
        await login(page, stack.url, "sue")
        await page.goto(f"{stack.url}/admin/desk/payouts")
        assert await page.locator(f"#payout-{payout_id}").count() == 1
        assert await page.locator(f"#payout-{payout_id} button").count() == 0
        status = await page.evaluate(
            """async ([id]) => {
                const token = document.cookie;  // HttpOnly: the page cannot read the session
                const body = new URLSearchParams({csrf_token: token});
                const r = await fetch(`/admin/desk/payouts/${id}/approve`,
                                      {method: 'POST', body});
                return r.status;
            }""",
            [payout_id],
        )
        assert status == 403
        await page.goto(f"{stack.url}/admin/desk/api-keys")
        assert await page.inner_text(".page-title") == "Not allowed"
        await page.goto(f"{stack.url}/admin/logout")
        await page.click("#logout-confirm button[type=submit]")
        await page.wait_for_url(f"{stack.url}/admin/login")
        # Five wrong passwords lock the account; then even the right one is refused.
        for _ in range(5):
            await login(page, stack.url, "sue", "wrong password again")
        assert "locked until" in await page.inner_text("#login-error")
        await login(page, stack.url, "sue")
        assert "locked until" in await page.inner_text("#login-error")
    assert (await payout(stack.client, payout_id))["status"] == "awaiting_approval"
    assert outside == []


PAGES = (
    "/admin/login",
    "/admin/",
    "/admin/logout",
    "/admin/desk/payouts",
    "/admin/desk/users",
    "/admin/desk/users/{alice}",
    "/admin/desk/invoices",
    "/admin/desk/plans",
    "/admin/desk/affiliates",
    "/admin/desk/ledger",
    "/admin/desk/api-keys",
    "/admin/desk/admins",
    "/admin/desk/audit",
    "/admin/user/list",
    "/admin/user/details/{alice}",
    "/admin/payout/list",
    "/admin/audit-event/list",
)


@pytest.mark.browser
async def test_every_page_at_desktop_and_phone_width(
    stack: Stack, lightning: Lightning, tmp_path: Path
) -> None:
    """Screenshots for a person to look at (SATSHARE_SCREENSHOTS=dir keeps them); the test
    checks that no page scrolls sideways on a phone and nothing comes from outside."""
    seen = await history(stack, lightning)
    await admin_user(stack, "olga", Role.OWNER)
    folder = Path(SCREENSHOTS or tmp_path)
    os.makedirs(folder, exist_ok=True)
    for width in (1280, 390):
        async with offline_context(width) as (context, outside):
            page = await context.new_page()
            await page.goto(f"{stack.url}/admin/login")
            await page.screenshot(path=folder / f"login-{width}.png", full_page=True)
            await login(page, stack.url, "olga")
            await page.wait_for_url(f"{stack.url}/admin/")
            for path in PAGES[1:]:
                # English at desktop width, Russian on the phone: both languages, both
                # widths, every page (the full cross product only doubles the run time).
                for language in ("en",) if width == 1280 else ("ru",):
                    url = f"{stack.url}{path.format(alice=seen['alice'])}"
                    response = await page.goto(f"{url}{'&' if '?' in url else '?'}lang={language}")
                    assert response is not None and response.status == 200, path
                    name = path.strip("/").replace("/", "-").replace("{alice}", "user") or "index"
                    await page.screenshot(
                        path=folder / f"{name}-{language}-{width}.png", full_page=True
                    )
                    overflow = await page.evaluate(
                        "document.documentElement.scrollWidth - window.innerWidth"
                    )
                    assert overflow <= 1, (path, width, overflow)
                    if width == 1280 and path == "/admin/user/list":
                        # The filters go under the list below a wide screen, so the users'
                        # table fits its card instead of scrolling inside it.
                        hidden = await page.evaluate(
                            "(() => { const t = document.querySelector('.table-responsive');"
                            " return t.scrollWidth - t.clientWidth; })()"
                        )
                        assert hidden <= 1, hidden
            assert outside == [], outside
