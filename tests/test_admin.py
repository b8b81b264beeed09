"""The admin panel over HTTP (#12): access (login, session cookie, idle timeout, lockout,
per-IP slow-down, CSRF, roles), the workflows (payouts, refunds, plans, API keys, users),
the audit log, and the dashboard's figures against the ledger."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from itsdangerous import TimestampSigner
from typer.testing import CliRunner

from satshare.admin.auth import SESSION_COOKIE
from satshare.cli import app as cli_app
from satshare.ledger import repository as ledger_repository
from satshare.ledger.verify import verify_ledger
from satshare.notifications.models import OutboxMessage
from satshare.plans import service as plans
from satshare.plans.models import Plan, PlanSource
from satshare.reports import dashboard as dashboards
from satshare.staff.models import Role
from tests.adminkit import PASSWORD, Panel, admin_user, audit_actions, token_in
from tests.conftest import Stack
from tests.historykit import history
from tests.historykit import stack as stack
from tests.lightningkit import Lightning
from tests.payoutkit import affiliate, earn, payout, settle_payouts


async def test_nothing_under_admin_answers_without_a_session(stack: Stack) -> None:
    async with Panel(stack) as panel:
        for path in (
            "/admin/",
            "/admin/desk/payouts",
            "/admin/user/list",
            "/admin/desk/audit/export",
            "/admin/no-such-page",
            "/admin/desk/api-keys",
        ):
            response = await panel.get(path)
            assert response.status_code == 303, path
            # The login returns to the page asked for (the dashboard is its default).
            asked = "" if path == "/admin/" else f"?next={quote(path, safe='')}"
            assert response.headers["location"] == f"/admin/login{asked}", path
        refused = await panel.client.post("/admin/desk/payouts/1/approve", data={})
        assert (refused.status_code, refused.headers["location"]) == (303, "/admin/login")
        login = await panel.get("/admin/login")
        assert login.status_code == 200
        assert 'name="username"' in login.text and 'name="password"' in login.text
        assert (await panel.get("/admin/assets/panel.css")).status_code == 200
        assert (await panel.get("/admin/statics/css/tabler.min.css")).status_code == 200


async def test_login_sets_a_signed_http_only_lax_cookie_and_logout_ends_it(stack: Stack) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    async with Panel(stack) as panel:
        assert (await panel.login("olga", "wrong password!")).status_code == 400
        response = await panel.login("olga")
        assert response.status_code == 302
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        lowered = cookie.lower()
        assert "httponly" in lowered and "samesite=lax" in lowered and "path=/admin" in lowered
        assert "secure" not in lowered  # the public URL is http here
        assert (await panel.get("/admin/")).status_code == 200
        # Logging out is a POST with the CSRF token: a GET only asks to confirm, and a post
        # without the token (another site's form) is refused; both leave the session alone.
        confirm = await panel.get("/admin/logout")
        assert confirm.status_code == 200 and 'id="logout-confirm"' in confirm.text
        assert 'method="post"' in confirm.text and token_in(confirm.text) == panel.token
        forged = await panel.client.post("/admin/logout", data={"csrf_token": "forged"})
        assert forged.status_code == 403 and "did not come from this panel" in forged.text
        assert (await panel.client.post("/admin/logout")).status_code == 403
        assert (await panel.get("/admin/")).status_code == 200
        ended = await panel.post("/admin/logout")
        assert (ended.status_code, ended.headers["location"]) == (303, f"{stack.url}/admin/login")
        assert (await panel.get("/admin/")).status_code == 303
        assert (await panel.post("/admin/logout")).status_code == 303  # no session: to login
    assert "admin.login" in await audit_actions(stack)


async def test_a_session_ends_after_the_idle_timeout_or_a_new_password(stack: Stack) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    async with Panel(stack) as panel:
        await panel.login("olga")
        cookie = panel.client.cookies[SESSION_COOKIE]
        payload = cookie.rsplit(".", 2)[0]
        secret = stack.container.settings.admin.session_secret
        assert secret is None  # a random secret per start: take it from the running app
        middleware = _session_middleware(stack)
        idle = stack.container.settings.admin.idle_timeout_minutes * 60

        class Earlier(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - idle - 5

        stale = Earlier(str(middleware.signer.secret_key)).sign(payload.encode()).decode()
        panel.client.cookies.set(SESSION_COOKIE, stale, path="/admin")
        assert (await panel.get("/admin/")).status_code == 303
        panel.client.cookies.clear()
        await panel.login("olga")
        assert (await panel.get("/admin/")).status_code == 200
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli_app,
            ["admin", "set-password", "--username", "olga", "--password-stdin"],
            input="another long password\n",
        )
        assert result.exit_code == 0, result.output
        assert (await panel.get("/admin/")).status_code == 303


def _session_middleware(stack: Stack) -> object:
    """The running panel's SessionMiddleware (to sign a cookie as it would have, earlier)."""
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.routing import Mount

    app = stack.server.server.config.app
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/admin")
    layer = mount.app.middleware_stack
    while not isinstance(layer, SessionMiddleware):
        layer = layer.app
    return layer


async def test_five_failed_logins_lock_the_account_for_15_minutes(stack: Stack) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    async with Panel(stack) as panel:
        for _ in range(4):
            response = await panel.login("olga", "not the password")
            assert response.status_code == 400
            assert "Wrong user name or password." in response.text
        locked = await panel.login("olga", "not the password")
        assert locked.status_code == 423
        assert "locked until" in locked.text
        # The right password changes nothing while the lock lasts.
        assert (await panel.login("olga")).status_code == 423
        assert (await panel.get("/admin/")).status_code == 303
    assert (await audit_actions(stack)).count("admin.locked") == 1
    async with stack.db.transaction() as session:
        from satshare.staff import repository

        user = await repository.by_username(session, "olga")
        assert user is not None and user.locked_until is not None
        user.locked_until = stack.container.clock.now() - timedelta(seconds=1)  # 15 min later
    async with Panel(stack) as panel:
        assert (await panel.login("olga")).status_code == 302


async def test_logins_from_one_address_are_slowed_down(stack: Stack) -> None:
    limit = stack.container.settings.admin.login_attempts_per_minute
    async with Panel(stack) as panel:
        codes = [
            (await panel.login(f"nobody{i}", "whatever at all")).status_code
            for i in range(limit + 1)
        ]
    assert codes[:limit] == [400] * limit
    assert codes[limit] == 429


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    stack: Stack, lightning: Lightning
) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    alice = await affiliate(stack)
    await earn(stack, alice)
    requested = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("alice")},
    )
    payout_id = requested.json()["payout_id"]
    async with Panel(stack) as panel:
        await panel.login("olga")
        for token in ("", "forged-token"):
            refused = await panel.client.post(
                f"/admin/desk/payouts/{payout_id}/approve", data={"csrf_token": token}
            )
            assert refused.status_code == 403
            assert "expired or did not come from this panel" in refused.text
            assert '<h2 class="page-title">Not allowed</h2>' in refused.text
        # States read as words in English (their translation in Russian), not as codes.
        desk = await panel.get("/admin/desk/payouts")
        assert 'id="tab-awaiting_approval" href="?status=awaiting_approval">awaiting approval' in (
            desk.text
        )
        assert ">awaiting_approval <" not in desk.text
        # A user who does not exist is not found, not "not allowed".
        missing = await panel.get("/admin/desk/users/999999")
        assert missing.status_code == 404
        assert '<h2 class="page-title">Not found</h2>' in missing.text
        assert "No such user." in missing.text
        # Nor can the login form be posted from elsewhere.
        outside = await panel.client.post(
            "/admin/login", data={"username": "olga", "password": PASSWORD}
        )
        assert outside.status_code == 403
    assert (await payout(stack.client, payout_id))["status"] == "awaiting_approval"
    assert "payout.approve" not in await audit_actions(stack)


async def test_roles(stack: Stack, lightning: Lightning) -> None:
    await admin_user(stack, "sue", Role.SUPPORT)
    await admin_user(stack, "max", Role.MANAGER)
    alice = await affiliate(stack)
    await earn(stack, alice)
    requested = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("alice")},
    )
    payout_id = requested.json()["payout_id"]
    subscriptions = (await stack.client.get("/api/v1/subscriptions")).json()["items"]
    subscription = subscriptions[0]
    buyer = subscription["user_id"]
    async with Panel(stack) as support:
        await support.login("sue")
        assert (await support.get("/admin/desk/payouts")).status_code == 200  # reads
        refused = await support.post(f"/admin/desk/payouts/{payout_id}/approve")
        assert refused.status_code == 403
        assert "may not do this" in refused.text
        assert (await support.get("/admin/desk/api-keys")).status_code == 403
        assert (await support.get("/admin/admin-user/list")).status_code == 403
        # Support may extend by up to 7 days, with a reason.
        too_long = await support.post(
            f"/admin/desk/users/{buyer}/extend",
            {
                "subscription_id": str(subscription["subscription_id"]),
                "days": "8",
                "reason": "outage",
            },
        )
        assert too_long.status_code == 303
        assert "from 1 to 7" in await support.notices(f"/admin/desk/users/{buyer}")
        no_reason = await support.post(
            f"/admin/desk/users/{buyer}/extend",
            {"subscription_id": str(subscription["subscription_id"]), "days": "7"},
        )
        assert no_reason.status_code == 303
        assert "Give a reason" in await support.notices(f"/admin/desk/users/{buyer}")
        before = (
            await stack.client.get(f"/api/v1/subscriptions/{subscription['subscription_id']}")
        ).json()
        done = await support.post(
            f"/admin/desk/users/{buyer}/extend",
            {
                "subscription_id": str(subscription["subscription_id"]),
                "days": "7",
                "reason": "channel was down for a week",
            },
        )
        assert done.status_code == 303
        after = (
            await stack.client.get(f"/api/v1/subscriptions/{subscription['subscription_id']}")
        ).json()
        assert after["ends_at"] > before["ends_at"]
        resent = await support.post(
            f"/admin/desk/users/{buyer}/resend",
            {"subscription_id": str(subscription["subscription_id"])},
        )
        assert resent.status_code == 303
        assert "on their way" in await support.notices(f"/admin/desk/users/{buyer}")
        async with stack.db.reading() as session:
            from sqlalchemy import select

            queued = (
                (
                    await session.execute(
                        select(OutboxMessage.user_id).where(OutboxMessage.kind == "access.resent")
                    )
                )
                .scalars()
                .all()
            )
        assert queued == [buyer]
    async with Panel(stack) as manager:
        await manager.login("max")
        assert (await manager.get("/admin/desk/api-keys")).status_code == 403
        approved = await manager.post(f"/admin/desk/payouts/{payout_id}/approve")
        assert approved.status_code == 303
    assert (await payout(stack.client, payout_id))["status"] in ("approved", "sending", "paid")
    actions = await audit_actions(stack)
    assert actions.count("subscription.extend") == 1
    assert "subscription.resend_access" in actions
    assert "payout.approve" in actions


async def test_approving_a_payout_in_the_panel_pays_and_notifies_the_affiliate(
    stack: Stack, lightning: Lightning
) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    alice = await affiliate(stack)
    await earn(stack, alice)
    requested = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("alice")},
    )
    payout_id = requested.json()["payout_id"]
    assert requested.json()["status"] == "awaiting_approval"
    async with Panel(stack) as panel:
        await panel.login("olga")
        desk = await panel.get("/admin/desk/payouts")
        assert f'id="payout-{payout_id}"' in desk.text
        assert (await panel.post(f"/admin/desk/payouts/{payout_id}/approve")).status_code == 303
        await settle_payouts(stack)
        assert (await payout(stack.client, payout_id))["status"] == "paid"
        again = await panel.post(f"/admin/desk/payouts/{payout_id}/approve")
        assert again.status_code == 303
        assert "Not done" in await panel.notices("/admin/desk/payouts")
    async with stack.db.reading() as session:
        from sqlalchemy import select

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
    assert "payout.approve" in await audit_actions(stack)


async def test_refund_api_keys_and_plans_from_the_panel(stack: Stack, lightning: Lightning) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    alice = await affiliate(stack)
    await earn(stack, alice)
    invoices = (await stack.client.get("/api/v1/subscriptions")).json()["items"]
    async with stack.db.reading() as session:
        from satshare.payments.repository import search_invoices

        (invoice,) = await search_invoices(session)
    async with Panel(stack) as panel:
        await panel.login("olga")
        page = await panel.get("/admin/desk/invoices?status=settled")
        assert f'id="invoice-{invoice.id}"' in page.text
        refunded = await panel.post(
            f"/admin/desk/invoices/{invoice.id}/refund", {"note": "returned, txid abc"}
        )
        assert refunded.status_code == 303
        assert "refunded" in await panel.notices("/admin/desk/invoices")
        # API keys: created (shown once), working, revoked.
        await panel.post("/admin/desk/api-keys/create", {"name": "crm", "scope_read": "on"})
        shown = await panel.get("/admin/desk/api-keys")
        key = shown.text.split('id="new-key">', 1)[1].split("<", 1)[0]
        assert key.startswith("ss_")
        assert key not in (await panel.get("/admin/desk/api-keys")).text  # only once
        async with httpx.AsyncClient(timeout=30, base_url=stack.url) as crm:
            headers = {"Authorization": f"Bearer {key}"}
            assert (await crm.get("/api/v1/users", headers=headers)).status_code == 200
            key_id = shown.text.split('<tr id="key-')[-1].split('"', 1)[0]
            await panel.post(f"/admin/desk/api-keys/{key_id}/revoke")
            assert (await crm.get("/api/v1/users", headers=headers)).status_code == 401
        # Plans: made here, bad input refused, archived; config ones read-only.
        bad = await panel.post(
            "/admin/desk/plans/create",
            {"id": "Bad Id!", "title": "x", "price_sats": "1000", "duration_days": "30"},
        )
        assert bad.status_code == 303
        assert "Not done" in await panel.notices("/admin/desk/plans")
        await panel.post(
            "/admin/desk/plans/create",
            {
                "id": "vip",
                "title": "VIP",
                "price_sats": "70000",
                "duration_days": "30",
                "channels": "-1001",
            },
        )
        bought = await stack.client.post(
            "/api/v1/subscriptions",
            json={"user_id": alice, "subscription_type": "vip"},
        )
        assert bought.status_code == 201, bought.text
        assert bought.json()["invoice"]["amount_sats"] == 70_000
        await panel.post("/admin/desk/plans/vip/archive")
        assert (
            await stack.client.post(
                "/api/v1/subscriptions", json={"user_id": alice, "subscription_type": "vip"}
            )
        ).status_code == 422
        config_edit = await panel.post("/admin/desk/plans/monthly/archive")
        assert config_edit.status_code == 303
        assert "read-only here" in await panel.notices("/admin/desk/plans")
    async with stack.db.transaction() as session:
        # The start-up sync touches config plans only.
        await plans.sync(session, [], stack.container.clock.now())
    async with stack.db.reading() as session:
        vip = await session.get(Plan, "vip")
        monthly = await session.get(Plan, "monthly")
        assert vip is not None and vip.source == PlanSource.PANEL and vip.title == "VIP"
        assert monthly is not None and not monthly.active
    actions = await audit_actions(stack)
    for action in (
        "invoice.refund",
        "api_key.create",
        "api_key.revoke",
        "plan.create",
        "plan.archive",
    ):
        assert action in actions, action
    assert invoices  # the sale the refund reversed


async def test_dashboard_figures_equal_the_ledger(stack: Stack, lightning: Lightning) -> None:
    seen = await history(stack, lightning)
    now = stack.container.clock.now()
    start, end = dashboards.period("30d", now)
    async with stack.db.reading() as session:
        report = await verify_ledger(session)
        sums = await ledger_repository.all_account_sums(session)
        data = await dashboards.dashboard(session, start, end, now)
    assert report.ok
    public = (await stack.client.get("/api/v1/transparency")).json()
    totals = public["totals"]
    assert data.totals.gross_sats == totals["gross_sats"] == 3 * 50_000
    assert data.totals.owner_share_sats == totals["owner_share_sats"] == -sums["revenue:owner"]
    assert data.totals.affiliate_share_sats == totals["affiliate_share_sats"] == 50_000
    assert data.totals.paid_out_sats == totals["paid_out_sats"] == 20_000
    owed = -sum(v for k, v in sums.items() if k.startswith("payable:affiliate:"))
    assert data.owed_sats == public["owed_sats"] == owed - sums.get("payable:payouts", 0)
    assert (data.totals.sales, data.totals.refunds) == (4, 1)
    assert data.new_payments == 4 and data.renewals == 0
    assert data.active_subscribers == 3  # the refunded buyer's paid time was taken back
    assert data.mrr_sats == 3 * 50_000  # monthly plan: 30 days
    assert data.funnel_registered == 5 and data.funnel_paid == 4
    assert data.top_affiliates[0].user_id == seen["alice"]
    assert data.top_affiliates[0].earned_sats == 50_000
    waiting = data.payouts[next(iter(s for s in data.payouts if s.value == "awaiting_approval"))]
    assert waiting == (1, 25_000)
    await admin_user(stack, "olga", Role.OWNER)
    async with Panel(stack) as panel:
        await panel.login("olga")
        page = (await panel.get("/admin/?period=30d")).text
        for key, value in (
            ("gross", data.totals.gross_sats),
            ("owner", data.totals.owner_share_sats),
            ("affiliate", data.totals.affiliate_share_sats),
            ("paid-out", data.totals.paid_out_sats),
            ("owed", data.owed_sats),
        ):
            assert f'id="figure-{key}" data-sats="{value}"' in page, key
        today = (await panel.get("/admin/?period=today")).text
        assert 'id="figure-gross" data-sats="150000"' in today
        ago = (now - timedelta(days=40)).date().isoformat()
        custom = (await panel.get(f"/admin/?period=custom&start={ago}&end={ago}")).text
        assert 'id="figure-gross" data-sats="0"' in custom
        assert 'id="figure-owed" data-sats="0"' in custom
        for junk in (
            "?period=../../etc",
            "?period=custom&start=x&end=99999-1-1",
            "?period=custom&start=2026-13-45&end=1",
        ):
            assert (await panel.get(f"/admin/{junk}")).status_code == 200


@pytest.mark.parametrize("role", ["owner", "manager", "support"])
async def test_every_page_answers_for_every_role(stack: Stack, role: str) -> None:
    await admin_user(stack, "who", Role(role))
    owner_only = (
        "/admin/desk/api-keys",
        "/admin/desk/admins",
        "/admin/api-key/list",
        "/admin/admin-user/list",
    )
    async with Panel(stack) as panel:
        await panel.login("who")
        for path in (
            "/admin/",
            "/admin/desk/payouts",
            "/admin/desk/users",
            "/admin/desk/users?q=%25_",
            "/admin/desk/invoices",
            "/admin/desk/invoices?status=bogus&start=nope",
            "/admin/desk/plans",
            "/admin/desk/affiliates",
            "/admin/desk/ledger",
            "/admin/desk/ledger?before=abc",
            "/admin/desk/audit",
            "/admin/desk/audit?q=%25",
            "/admin/user/list",
            "/admin/payout/list?search=x",
            "/admin/audit-event/list",
            "/admin/desk/users/999999",
            *owner_only,
        ):
            response = await panel.get(path)
            expected = 403 if role != "owner" and path in owner_only else None
            if path.endswith("999999"):
                expected = 404
            assert response.status_code == (expected or 200), (path, response.status_code)
        bad = await panel.post("/admin/desk/payouts/abc/approve")
        assert bad.status_code in (403, 404)


async def test_admin_cli_create_list_set_password_disable(stack: Stack) -> None:
    runner = CliRunner()

    async def run(*args: str, input: str | None = None) -> tuple[int, str]:
        result = await asyncio.to_thread(runner.invoke, cli_app, ["admin", *args], input=input)
        return result.exit_code, result.output

    code, text = await run(
        "create-user",
        "--username",
        "Olga",
        "--role",
        "owner",
        "--password-stdin",
        input=f"{PASSWORD}\n",
    )
    assert code == 0, text
    assert "olga (owner) created" in text
    code, text = await run(
        "create-user",
        "--username",
        "x",
        "--role",
        "king",
        "--password-stdin",
        input=f"{PASSWORD}\n",
    )
    assert code == 2 and "unknown role 'king'" in text and len(text.strip().splitlines()) == 1
    code, text = await run(
        "create-user", "--username", "pat", "--role", "support", "--password-stdin", input="short\n"
    )
    assert code == 2 and "10 to 1024 characters" in text
    code, text = await run(
        "create-user",
        "--username",
        "olga",
        "--role",
        "support",
        "--password-stdin",
        input=f"{PASSWORD}\n",
    )
    assert code == 2 and "exists" in text
    code, text = await run("list")
    assert code == 0 and "olga" in text and "owner" in text
    code, text = await run("disable", "--username", "olga")
    assert code == 0
    code, text = await run("disable", "--username", "nobody")
    assert code == 2 and "no admin user named 'nobody'" in text
    code, text = await run("list")
    assert "disabled" in text
    # Other commands that change state are in the audit log too; a refused one is not.
    created = await asyncio.to_thread(
        runner.invoke, cli_app, ["api-key", "create", "--name", "crm", "--scopes", "read"]
    )
    assert created.exit_code == 0, created.output
    refused = await asyncio.to_thread(runner.invoke, cli_app, ["payout", "approve", "999"])
    assert refused.exit_code != 0
    actions = await audit_actions(stack)
    assert actions.count("admin.create") == 1 and "admin.disable" in actions
    assert "api_key.create" in actions and "payout.approve" not in actions


async def test_admin_api_actions_are_in_the_audit_log(stack: Stack, lightning: Lightning) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    requested = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("alice")},
    )
    payout_id = requested.json()["payout_id"]
    assert (await stack.client.post(f"/api/v1/payouts/{payout_id}/approve")).status_code == 200
    refused = await stack.client.post(f"/api/v1/payouts/{payout_id}/approve")
    assert refused.status_code == 409  # refused: nothing changed, nothing recorded
    from satshare.audit import repository as audit_repository

    async with stack.db.reading() as session:
        events = await audit_repository.search(session, text="approve")
    (event,) = events
    assert event.channel.value == "api"
    assert event.actor.startswith("api-key:") and event.role == "admin"
    assert event.action == "api POST /api/v1/payouts/{payout_id}/approve"
    assert event.target == f"payout_id:{payout_id}"
    # A write-scoped call (a payout request) is not an admin action.
    assert "api POST /api/v1/payouts" not in await audit_actions(stack)


async def test_the_sandbox_login_works_only_in_sandbox_mode(
    stack: Stack, database_url: str
) -> None:
    from satshare.api.app import create_app
    from satshare.cli.admin import issue_sandbox_login
    from satshare.config import Settings
    from satshare.container import build_container, prepare

    sandbox = build_container(Settings(database={"url": database_url}))
    assert sandbox.sandbox is not None  # the emulators run: sandbox mode
    await prepare(sandbox, sync_plans=False)
    try:
        username, password = await issue_sandbox_login(sandbox)
        again = await issue_sandbox_login(sandbox)  # a new start: a new password
        assert again[0] == username and again[1] != password
        app = create_app(sandbox.api_services())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as browser:
            page = await browser.get("/admin/login")
            from tests.adminkit import token_in

            for secret, code in ((password, 400), (again[1], 302)):
                response = await browser.post(
                    "/admin/login",
                    data={
                        "username": username,
                        "password": secret,
                        "csrf_token": token_in(page.text),
                    },
                )
                assert response.status_code == code
    finally:
        await sandbox.aclose()
    # The same account in a live (non-sandbox) service: refused.
    async with Panel(stack) as panel:
        assert (await panel.login(username, again[1])).status_code == 400


async def test_the_owner_manages_admin_users_in_the_panel(stack: Stack) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    await admin_user(stack, "max", Role.MANAGER)
    async with Panel(stack) as owner, Panel(stack) as manager:
        await owner.login("olga")
        await manager.login("max")
        assert (await manager.get("/admin/desk/admins")).status_code == 403
        assert (await manager.post("/admin/desk/admins/olga/disable")).status_code == 403
        short = await owner.post(
            "/admin/desk/admins/create", {"username": "sue", "role": "support", "password": "x"}
        )
        assert short.status_code == 303
        assert "10 to 1024 characters" in await owner.notices("/admin/desk/admins")
        await owner.post(
            "/admin/desk/admins/create",
            {"username": "sue", "role": "support", "password": PASSWORD},
        )
        assert 'id="admin-sue"' in (await owner.get("/admin/desk/admins")).text
        await owner.post("/admin/desk/admins/olga/disable")
        assert "cannot disable your own" in await owner.notices("/admin/desk/admins")
        await owner.post("/admin/desk/admins/max/disable")
        assert (await manager.get("/admin/")).status_code == 303  # the session ended
    async with Panel(stack) as support:
        assert (await support.login("sue")).status_code == 302
    actions = await audit_actions(stack)
    assert "admin.create" in actions and "admin.disable" in actions


async def test_sqladmin_routes_refuse_bad_input_and_every_write(stack: Stack) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    async with Panel(stack) as panel:
        await panel.login("olga")
        for path in (
            "/admin/user/details/abc",
            "/admin/user/details/99999999999999999999999",
            "/admin/user/list?page=-1&pageSize=99999",
            "/admin/user/list?page=abc",
            "/admin/user/list?sortBy=nonexistent&sort=sideways",
            "/admin/user/list?search=%25%5C_",
            "/admin/payout/list?status=nonsense",
            "/admin/user/export/xml",
            "/admin/nosuchmodel/list",
        ):
            response = await panel.get(path)
            assert response.status_code < 500, (path, response.status_code)
        # Every record view is read-only: SQLAdmin's own write routes are refused.
        for method, path in (
            ("GET", "/admin/user/create"),
            ("POST", "/admin/user/create"),
            ("GET", "/admin/payout/edit/1"),
            ("POST", "/admin/plan/edit/monthly"),
            ("DELETE", "/admin/user/delete?pks=1"),
            ("POST", "/admin/audit-event/import"),
        ):
            response = await panel.client.request(method, path)
            assert response.status_code in (403, 404, 405), (method, path, response.status_code)
    async with stack.db.reading() as session:
        assert await session.get(Plan, "monthly") is not None


def test_the_session_cookie_is_secure_behind_https() -> None:
    from types import SimpleNamespace

    from satshare.admin.auth import PanelAuth
    from satshare.config import Settings

    for url, secure in (("https://pay.example.com", True), (None, False)):
        settings = Settings(server={"public_url": url})
        auth = PanelAuth(SimpleNamespace(settings=settings), "x" * 32)  # type: ignore[arg-type]
        options = auth.middlewares[0].kwargs
        assert options["https_only"] is secure
        assert (options["same_site"], options["path"]) == ("lax", "/admin")
        assert options["max_age"] == settings.admin.idle_timeout_minutes * 60


JUNK = ("", " ", "abc", "-1", "0", "99999999999999999999999", "٣", "1e9", "x" * 5000, "<b>")


async def test_junk_in_every_form_changes_nothing(stack: Stack) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    user = (
        await stack.client.post("/api/v1/users", json={"username": "u", "platform": "website"})
    ).json()["user_id"]
    before = await stack.counts()
    actions = (
        ("/admin/desk/payouts/{junk}/approve", {}),
        ("/admin/desk/payouts/1/mark-paid", {"proof": "{junk}", "network_fee_sats": "{junk}"}),
        ("/admin/desk/payouts/1/mark-failed", {"reason": "{junk}"}),
        (
            f"/admin/desk/users/{user}/extend",
            {"subscription_id": "{junk}", "days": "{junk}", "reason": "{junk}"},
        ),
        (f"/admin/desk/users/{user}/terms", {"share_percent": "{junk}", "reason": ""}),
        ("/admin/desk/users/{junk}/suspend", {"reason": ""}),
        ("/admin/desk/invoices/{junk}/refund", {"note": "{junk}"}),
        (
            "/admin/desk/plans/create",
            {
                "id": "{junk}",
                "title": "{junk}",
                "price_sats": "{junk}",
                "duration_days": "{junk}",
                "channels": "{junk}",
            },
        ),
        ("/admin/desk/plans/{junk}/archive", {}),
        ("/admin/desk/api-keys/create", {"name": "{junk}"}),
        ("/admin/desk/api-keys/{junk}/revoke", {}),
        ("/admin/desk/admins/create", {"username": "{junk}", "role": "{junk}", "password": ""}),
    )
    async with Panel(stack) as panel:
        await panel.login("olga")
        for template, form in actions:
            for junk in JUNK:
                path = template.replace("{junk}", junk.strip() or "_")
                data = {k: v.replace("{junk}", junk) for k, v in form.items()}
                if len(path) > 2000:
                    continue
                response = await panel.post(path, data)
                assert response.status_code in (303, 403, 404), (path, junk, response.status_code)
    after = await stack.counts()
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    assert after["audit_events"] == before["audit_events"] + 1  # the login only


def _cells(html: str, pattern: str) -> list[str]:
    """The text of each match of ``pattern`` (one group), tags and spaces stripped."""
    return [
        " ".join(re.sub(r"<[^>]+>", " ", found).split())
        for found in re.findall(pattern, html, flags=re.S)
    ]


async def test_russian_record_views_name_every_column_in_russian(
    stack: Stack, lightning: Lightning
) -> None:
    """Lists (headers, filters, the search box) and detail pages of every record view: no
    raw column name, every label in Russian."""
    from sqlalchemy import inspect

    from satshare.admin.views import MODEL_VIEWS

    await history(stack, lightning)
    await admin_user(stack, "olga", Role.OWNER)
    cyrillic = re.compile("[\u0400-\u04ff]")

    def russian(label: str, raw: set[str]) -> bool:
        return label not in raw and (label == "ID" or cyrillic.search(label) is not None)

    async with Panel(stack) as panel:
        await panel.login("olga")
        details = 0
        for view in MODEL_VIEWS:
            raw = set(inspect(view.model).column_attrs.keys())
            listed = await panel.get(f"/admin/{view.identity}/list?lang=ru")
            assert listed.status_code == 200, view.identity
            thead = listed.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
            headers = [h for h in _cells(thead, r"<th[^>]*>(.*?)</th>") if h]
            filters = _cells(
                listed.text, r'<div class="fw-bold text-truncate fs-3 mb-2">(.*?)</div>'
            )
            # The search box names the searched columns: "<Search>: label, label".
            boxes = re.findall(r'id="search-input"[^>]*placeholder="[^:"]*: ([^"]*)"', listed.text)
            search = [part for box in boxes for part in box.split(", ")]
            assert len(search) == len(view.column_searchable_list), (view.identity, boxes)
            for label in [*headers, *filters, *search]:
                assert russian(label, raw), (view.identity, label)
            assert len(headers) == len(view.column_list), (view.identity, headers)
            link = re.search(rf'href="[^"]*/admin/{view.identity}/details/([^"]+)"', listed.text)
            if link is None:  # no record of this kind in the history
                continue
            shown = await panel.get(f"/admin/{view.identity}/details/{link.group(1)}?lang=ru")
            assert shown.status_code == 200, view.identity
            body = shown.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
            labels = _cells(body, r"<tr>\s*<td>(.*?)</td>")
            assert labels, view.identity
            for label in labels:
                assert russian(label, raw), (view.identity, label)
            details += 1
        assert details >= 10  # the history has records of most kinds
