"""The panel's webhook endpoint, broadcast and promo code pages in Debian's Chromium (#13,
#14): an endpoint created with its secret shown once, a test event delivered to a receiver
on loopback and verified with the Standard Webhooks reference library, rotation, the failing
state and replays; a broadcast composed, counted, previewed, sent and followed by its live
progress bar to the end; a promo code created, used, counted and disabled; a support user
who can only read; a forged form refused; the audit log showing each action; every page at
desktop and phone width with nothing loaded from outside the machine."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page
from standardwebhooks.webhooks import Webhook

from satshare.bot.broadcasts import BroadcastSender
from satshare.broadcasts import repository as broadcasts
from satshare.clock import FrozenClock
from satshare.staff.models import Role
from tests.adminkit import admin_user, audit_actions
from tests.adminkit import browser_login as login
from tests.botkit import ADMIN_CHAT, BotStack, close_bot_stack, open_bot_stack, text_of
from tests.browser import offline_context
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, create_user, invoice_status, wait_until
from tests.webhookkit import Receiver, running_receiver

#: Read at import: the stack fixture clears SATSHARE_* variables from the environment.
SCREENSHOTS = os.environ.get("SATSHARE_SCREENSHOTS")
INSECURE = {"webhooks": {"allow_insecure_urls": True}}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for running in running_receiver():
        yield running


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    running = await open_bot_stack(database_url, btcpay)
    yield running
    await close_bot_stack(running)


async def notice(page: Page) -> str:
    return await page.inner_text(".ss-notices")


def minute(moment: datetime) -> str:
    """A moment as a datetime-local field takes it (UTC, to the minute)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


async def deliver(stack: Stack) -> None:
    runner = stack.container.webhook_runner
    assert runner is not None
    await runner.flush()


async def delivery(stack: Stack, endpoint_id: int, delivery_id: int) -> dict[str, Any]:
    path = f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}"
    found: dict[str, Any] = (await stack.client.get(path)).json()
    return found


@pytest.mark.browser
async def test_webhook_endpoints_in_chromium(
    database_url: str, btcpay: BTCPaySim, receiver: Receiver
) -> None:
    clock = FrozenClock(datetime.now(UTC).replace(second=30, microsecond=0))
    stack = await open_stack(database_url, btcpay, clock=clock, **INSECURE)
    try:
        await admin_user(stack, "olga", Role.OWNER)
        async with offline_context() as (context, outside):
            page = await context.new_page()
            await login(page, stack.url, "olga")
            await page.goto(f"{stack.url}/admin/desk/webhooks")
            # Bad input is explained on the form, which keeps what was typed; nothing is made.
            form = page.locator("#new-endpoint")
            await form.locator("input[name=url]").fill("ftp://crm.example.com/hooks")
            await form.locator("input[name=description]").fill("CRM")
            await form.locator("button[type=submit]").click()
            assert "url must be an absolute https:// URL" in await page.inner_text("#form-problem")
            assert await form.locator("input[name=description]").input_value() == "CRM"
            assert (await stack.client.get("/api/v1/webhook-endpoints")).json() == []
            # Created: the secret is shown once.
            await form.locator("input[name=url]").fill(receiver.url)
            await form.locator("input[name=all_events]").uncheck()
            await form.locator("input[name='event_payment.settled']").check()
            await form.locator("input[name='event_user.created']").check()
            await form.locator("button[type=submit]").click()
            assert "added" in await notice(page)
            secret = await page.inner_text("#new-secret")
            assert secret.startswith("whsec_")
            [created] = (await stack.client.get("/api/v1/webhook-endpoints")).json()
            endpoint_id = created["endpoint_id"]
            assert created["events"] == ["user.created", "payment.settled"]
            assert created["description"] == "CRM"
            await page.reload()
            assert await page.locator("#new-secret").count() == 0
            assert secret not in await page.content()

            # A test event reaches the receiver, signed with that secret.
            await page.click(f"#endpoint-{endpoint_id} a")
            await page.click("#send-test")
            assert "Test event sent" in await notice(page)
            await deliver(stack)
            await page.reload()
            first = page.locator("#deliveries tbody tr").first
            assert "delivered" in await first.locator(".delivery-status").inner_text()
            assert "HTTP 200" in await first.locator(".delivery-answer").inner_text()
            [test_event] = receiver.of_type("webhook.test")
            assert Webhook(secret).verify(test_event.body, test_event.headers)["type"] == (
                "webhook.test"
            )

            # A new secret, shown once; the receiver can check with either for a day.
            page.once("dialog", lambda dialog: dialog.accept())
            await page.click("#rotate")
            rotated = await page.inner_text("#new-secret")
            assert rotated.startswith("whsec_") and rotated != secret
            await page.click("#send-test")
            await deliver(stack)
            latest = receiver.of_type("webhook.test")[-1]
            for key in (rotated, secret):
                assert Webhook(key).verify(latest.body, latest.headers)["type"] == "webhook.test"

            # Disabled: no test button; enabled again.
            await page.click("#disable")
            assert "disabled" in await page.inner_text("#endpoint .endpoint-state")
            assert await page.locator("#send-test").count() == 0
            await page.click("#enable")
            assert "enabled" in await page.inner_text("#endpoint .endpoint-state")

            # A receiver that keeps failing: after 24 hours of retries the delivery is
            # given up and the endpoint is shown failing, here and in the list.
            receiver.default_status = 503
            failing_from = clock.now()
            await page.click("#send-test")
            await deliver(stack)
            await page.reload()
            row = page.locator("#deliveries tbody tr").first
            delivery_id = int((await row.get_attribute("id") or "").removeprefix("delivery-"))
            assert "HTTP 503" in await row.locator(".delivery-answer").inner_text()
            while (shown := await delivery(stack, endpoint_id, delivery_id))["status"] != "failed":
                clock.set(datetime.fromisoformat(shown["next_attempt_at"]))
                await deliver(stack)
            await page.reload()
            assert "given up after 24 hours" in await page.inner_text("#failing")
            await page.goto(f"{stack.url}/admin/desk/webhooks")
            assert "failing since" in await page.inner_text(f"#endpoint-{endpoint_id}")

            # Fixed: the given-up deliveries of that time are sent again, which clears it.
            receiver.default_status = 200
            await page.click(f"#endpoint-{endpoint_id} a")
            await page.locator("#replay-range").evaluate(
                "form => form.closest('details').open = true"
            )
            await page.fill("#replay-range input[name=since]", minute(failing_from))
            later = failing_from + timedelta(minutes=1)
            await page.fill("#replay-range input[name=until]", minute(later))
            await page.click("#replay-range button[type=submit]")
            assert "1 deliveries are being sent again." in await notice(page)
            await deliver(stack)
            await page.reload()
            assert await page.locator("#failing").count() == 0
            assert (await delivery(stack, endpoint_id, delivery_id))["status"] == "delivered"

            # One delivery again, with the same webhook-id.
            before = len(receiver.received)
            row = page.locator(f"#delivery-{delivery_id}")
            await row.locator("button", has_text="Send again").click()
            assert f"Delivery {delivery_id} is being sent again." in await notice(page)
            await deliver(stack)
            assert len(receiver.received) == before + 1
            assert receiver.received[-1].headers["webhook-id"] == shown["msg_id"]

            # Edited, then deleted with its log.
            await page.locator("#edit-endpoint").evaluate(
                "form => form.closest('details').open = true"
            )
            await page.fill("#edit-endpoint input[name=description]", "CRM v2")
            await page.click("#edit-endpoint button[type=submit]")
            assert "saved" in await notice(page)
            assert "CRM v2" in await page.inner_text("#endpoint")
            page.once("dialog", lambda dialog: dialog.accept())
            await page.click("#delete")
            assert "deleted" in await notice(page)
            assert await page.locator(f"#endpoint-{endpoint_id}").count() == 0

            # The audit log has each action, with who did it.
            await page.goto(f"{stack.url}/admin/desk/audit?q=webhook-endpoint")
            actions = await page.locator(".audit-action").all_inner_texts()
            for action in (
                "webhook.create",
                "webhook.test",
                "webhook.rotate_secret",
                "webhook.disable",
                "webhook.enable",
                "webhook.replay_range",
                "webhook.replay",
                "webhook.update",
                "webhook.delete",
            ):
                assert action in actions, action
            assert secret not in await page.content() and rotated not in await page.content()
        assert outside == []
    finally:
        await close_stack(stack)


@pytest.mark.browser
async def test_a_broadcast_composed_counted_sent_and_followed_in_chromium(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    ivan = bot.new_user("ivan", language="ru")
    await bot.say(alice, "/start")
    await bot.say(ivan, "/start")
    await admin_user(bot, "olga", Role.OWNER)
    async with offline_context() as (context, outside):
        page = await context.new_page()
        await login(page, bot.url, "olga")
        await page.goto(f"{bot.url}/admin/desk/broadcasts")
        # The recipient count follows the segment picker.
        count = page.locator("#segment-count")
        await page.wait_for_function(
            "document.querySelector('#segment-count').dataset.recipients === '2'"
        )
        assert "2 users" in await count.inner_text()
        assert await page.locator("[data-field=days]").is_hidden()
        await page.select_option("#segment-kind", "expiring")
        assert await page.locator("[data-field=days]").is_visible()
        await page.select_option("#segment-kind", "language")
        await page.select_option("select[name=language]", "ru")
        await page.wait_for_function(
            "document.querySelector('#segment-count').dataset.recipients === '1'"
        )
        await page.select_option("#segment-kind", "all")
        await page.select_option("select[name=language]", "")
        await page.wait_for_function(
            "document.querySelector('#segment-count').dataset.recipients === '2'"
        )
        # Markup Telegram would refuse is explained; the text stays in the form; no draft.
        composer = page.locator("#composer")
        await composer.locator("textarea[name=text]").fill("News: <script>x</script>")
        await composer.locator("button[type=submit]").click()
        assert "<script> is not allowed" in await page.inner_text("#form-problem")
        assert "<script>" in await composer.locator("textarea[name=text]").input_value()
        async with bot.container.db.reading() as session:
            assert await broadcasts.list_broadcasts(session, limit=5) == []
        # A draft in two languages with a button: counted before anything is sent.
        await composer.locator("textarea[name=text]").fill("News: <b>Friday Q&amp;A</b>")
        await composer.locator("textarea[name=text_ru]").fill("Новости: <b>эфир в пятницу</b>")
        await composer.locator("summary", has_text="URL buttons").click()
        await composer.locator("input[name=button_text_1]").fill("Details")
        await composer.locator("input[name=button_text_ru_1]").fill("Подробнее")
        await composer.locator("input[name=button_url_1]").fill("https://t.me/x")
        await composer.locator("button[type=submit]").click()
        assert "saved for 2 recipients" in await notice(page)
        row = page.locator("tr[data-broadcast]").first
        broadcast_id = int(await row.get_attribute("data-broadcast") or "0")
        assert await row.locator(".recipients").inner_text() == "2"
        assert "draft" in await row.locator(".broadcast-status").inner_text()
        # Previewed in the admin chat, in both languages.
        await row.locator("button.preview").click()
        assert "(en, ru)" in await notice(page)
        await bot.notify()
        shown = [text_of(m) for m in bot.telegram.sent_to(ADMIN_CHAT)]
        assert any("Friday Q&amp;A" in text for text in shown), shown
        assert any("эфир в пятницу" in text for text in shown), shown
        # Sent: the bar follows the sender to the end without a reload.
        page.once("dialog", lambda dialog: dialog.accept())
        await page.locator(f"#broadcast-{broadcast_id} button.send").click()
        assert "is now sending" in await notice(page)
        row = page.locator(f"#broadcast-{broadcast_id}")
        assert await row.get_attribute("data-live") == "1"
        assert await row.locator(".count-pending").inner_text() == "2"
        sender = BroadcastSender(bot.container.db, bot.container.clock, bot.runtime.application.bot)
        [delivered] = await sender.run_due()
        assert delivered.sent == 2
        await page.wait_for_function(
            f"document.querySelector('#broadcast-{broadcast_id}').dataset.live === '0'"
        )
        assert await row.locator(".broadcast-status").inner_text() == "done"
        assert await row.locator(".count-sent").inner_text() == "2"
        assert await row.locator(".count-pending").inner_text() == "0"
        width = await row.locator(".bar-sent").evaluate("bar => bar.style.width")
        assert width == "100%"
        assert await row.locator("button.cancel").is_hidden()
        assert bot.last(alice).text == "News: <b>Friday Q&amp;A</b>"
        assert bot.last(ivan).text == "Новости: <b>эфир в пятницу</b>"
        assert bot.last(ivan).buttons() == [{"text": "Подробнее", "url": "https://t.me/x"}]
        # Scheduled for tomorrow, then canceled before its time.
        tomorrow = bot.container.clock.now() + timedelta(days=1)
        await composer.locator("textarea[name=text]").fill("Tomorrow: <i>maintenance</i>")
        await page.fill("#composer input[name=send_at]", minute(tomorrow))
        await composer.locator("button[type=submit]").click()
        row = page.locator("tr[data-broadcast]").first
        later_id = int(await row.get_attribute("data-broadcast") or "0")
        assert later_id != broadcast_id
        page.once("dialog", lambda dialog: dialog.accept())
        await row.locator("button.send", has_text="Schedule for").click()
        assert "is now scheduled" in await notice(page)
        page.once("dialog", lambda dialog: dialog.accept())
        await page.locator(f"#broadcast-{later_id} button.cancel").click()
        assert "is now canceled" in await notice(page)
        messages = len(bot.telegram.sent_to(alice))
        assert await sender.run_due() == []  # nothing left to send: it never goes
        assert len(bot.telegram.sent_to(alice)) == messages
        await page.goto(f"{bot.url}/admin/desk/audit?q=broadcast")
        actions = await page.locator(".audit-action").all_inner_texts()
        assert sorted(actions) == [
            "broadcast.cancel",
            "broadcast.create",
            "broadcast.create",
            "broadcast.preview",
            "broadcast.send",
            "broadcast.send",
        ]
    assert outside == []


async def _pay(stack: Stack, created: dict[str, Any]) -> None:
    await stack.btcpay.pay(created["invoice"]["provider_invoice_id"], method="BTC-LN")

    async def settled() -> bool:
        return await invoice_status(stack.client, created["subscription_id"]) == "settled"

    await wait_until(settled)


@pytest.mark.browser
async def test_promo_codes_created_counted_and_disabled_in_chromium(stack: Stack) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    buyer = await create_user(stack.client, "buyer", external_id="200")
    async with offline_context() as (context, outside):
        page = await context.new_page()
        await login(page, stack.url, "olga")
        await page.goto(f"{stack.url}/admin/desk/promo-codes")
        form = page.locator("#new-promo")
        # Out of range: explained, the form keeps its input, nothing is created.
        await form.locator("input[name=code]").fill("spring20")
        await form.locator("select[name=kind]").select_option("percent")
        await form.locator("input[name=value]").fill("150")
        await form.locator("input[name=plan_monthly]").check()
        await form.locator("button[type=submit]").click()
        assert "from 1 to 100" in await page.inner_text("#form-problem")
        assert await form.locator("input[name=code]").input_value() == "spring20"
        assert await form.locator("input[name=plan_monthly]").is_checked()
        assert (await stack.client.get("/api/v1/promo-codes")).json()["items"] == []
        # Created: 20 percent off monthly, 5 uses, first purchase only.
        await form.locator("input[name=value]").fill("20")
        await form.locator("input[name=max_uses]").fill("5")
        await form.locator("input[name=first_purchase_only]").check()
        await form.locator("button[type=submit]").click()
        assert "Promo code SPRING20 created." in await notice(page)
        row = page.locator("#promo-SPRING20")
        assert (await row.locator(".promo-uses").inner_text()).startswith("0 / 5")
        assert "valid" in await row.locator(".promo-state").inner_text()
        made = (await stack.client.get("/api/v1/promo-codes/SPRING20")).json()
        assert (made["kind"], made["value"], made["plans"], made["max_uses"]) == (
            "percent",
            20,
            ["monthly"],
            5,
        )
        assert made["once_per_user"] is True and made["first_purchase_only"] is True
        # A buyer uses it: the list shows the use, what was paid and the discount.
        ordered = await stack.client.post(
            "/api/v1/subscriptions",
            json={
                "user_id": buyer["user_id"],
                "subscription_type": "monthly",
                "promo_code": "spring20",
            },
        )
        assert ordered.status_code == 201, ordered.text
        await _pay(stack, ordered.json())
        await page.reload()
        assert (await row.locator(".promo-uses").inner_text()).startswith("1 / 5")
        assert await row.locator(".promo-revenue").inner_text() == "40,000"
        assert await row.locator(".promo-discount").inner_text() == "10,000"
        # Disabled: nobody can use it.
        await row.locator("button", has_text="Disable").click()
        assert "disabled" in await notice(page)
        assert "disabled" in await row.locator(".promo-state").inner_text()
        other = await create_user(stack.client, "other", external_id="300")
        refused = await stack.client.post(
            "/api/v1/subscriptions",
            json={
                "user_id": other["user_id"],
                "subscription_type": "monthly",
                "promo_code": "SPRING20",
            },
        )
        assert assert_problem(refused, 422)["reason"] == "disabled"
        # A forged form is refused and changes nothing.
        await page.evaluate(
            "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'forged')"
        )
        await row.locator("button", has_text="Enable").click()
        assert "did not come from this panel" in await page.inner_text("#refused")
        await page.goto(f"{stack.url}/admin/desk/promo-codes")
        assert "disabled" in await row.locator(".promo-state").inner_text()
        await page.goto(f"{stack.url}/admin/desk/audit?q=promo")
        actions = await page.locator(".audit-action").all_inner_texts()
        assert sorted(actions) == ["promo.create", "promo.disable"]
    assert outside == []


async def _seed(bot: BotStack, receiver_url: str) -> dict[str, int]:
    """An endpoint with a delivered test event, a broadcast sent to two users and another
    still a draft, and a promo code: something on every page."""
    alice, ivan = bot.new_user("alice"), bot.new_user("ivan", language="ru")
    await bot.say(alice, "/start")
    await bot.say(ivan, "/start")
    async with httpx.AsyncClient(
        base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}, timeout=30
    ) as api:
        endpoint = await api.post(
            "/api/v1/webhook-endpoints",
            json={"url": receiver_url, "description": "CRM: every event of the shop"},
        )
        endpoint_id = endpoint.json()["endpoint_id"]
        assert (await api.post(f"/api/v1/webhook-endpoints/{endpoint_id}/test")).status_code == 202
        runner = bot.container.webhook_runner
        assert runner is not None
        await runner.flush()
        text = "Friday: <b>live Q&amp;A</b> at 18:00 UTC. " + "Bring your questions! " * 6
        sent = await api.post(
            "/api/v1/broadcasts",
            json={
                "text": text,
                "text_ru": "Пятница: <b>эфир</b> в 18:00 UTC.",
                "segment": {"kind": "all"},
                "buttons": [{"text": "Programme", "url": "https://example.com/programme"}],
            },
        )
        broadcast_id = sent.json()["broadcast_id"]
        await api.post(f"/api/v1/broadcasts/{broadcast_id}/send")
        sender = BroadcastSender(bot.container.db, bot.container.clock, bot.runtime.application.bot)
        await sender.run_due()
        draft = await api.post(
            "/api/v1/broadcasts",
            json={"text": "Renew now", "segment": {"kind": "expiring", "days": 3}},
        )
        promo = await api.post(
            "/api/v1/promo-codes",
            json={"code": "SPRING20", "kind": "percent", "value": 20, "max_uses": 100},
        )
        assert promo.status_code == 201, promo.text
    return {
        "endpoint": endpoint_id,
        "broadcast": broadcast_id,
        "draft": draft.json()["broadcast_id"],
    }


@pytest.fixture
async def bot_hooks(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    running = await open_bot_stack(database_url, btcpay, **INSECURE)
    yield running
    await close_bot_stack(running)


@pytest.mark.browser
async def test_a_support_user_reads_and_is_refused_every_change(
    bot_hooks: BotStack, receiver: Receiver
) -> None:
    bot = bot_hooks
    seen = await _seed(bot, receiver.url)
    await admin_user(bot, "sue", Role.SUPPORT)
    before = await audit_actions(bot)
    async with offline_context(390) as (context, outside):
        page = await context.new_page()
        await login(page, bot.url, "sue")
        await page.goto(f"{bot.url}/admin/desk/broadcasts")
        assert await page.locator(f"#broadcast-{seen['broadcast']} .count-sent").inner_text() == "2"
        assert await page.locator("#composer").count() == 0
        assert await page.locator("#broadcasts form").count() == 0
        await page.goto(f"{bot.url}/admin/desk/webhooks/{seen['endpoint']}")
        assert "delivered" in await page.inner_text("#deliveries")
        assert await page.locator("form:not(#logout-form)").count() == 0
        await page.goto(f"{bot.url}/admin/desk/webhooks")
        assert await page.locator("#new-endpoint").count() == 0
        await page.goto(f"{bot.url}/admin/desk/promo-codes")
        assert await page.locator("#promo-SPRING20").count() == 1
        assert await page.locator("form:not(#logout-form)").count() == 0
        # With a valid CSRF token (the ledger's "verify now" form), every change is refused
        # for the role.
        await page.goto(f"{bot.url}/admin/desk/ledger")
        token = await page.locator("input[name=csrf_token]").first.input_value()
        statuses = await page.evaluate(
            """async ([token, paths]) => {
                const out = [];
                for (const path of paths) {
                    const body = new URLSearchParams({csrf_token: token, text: 'x',
                                                      kind: 'all', code: 'FREE', value: '100',
                                                      url: 'https://evil.example.com'});
                    out.push((await fetch(path, {method: 'POST', body})).status);
                }
                return out;
            }""",
            [
                token,
                [
                    "/admin/desk/broadcasts/create",
                    f"/admin/desk/broadcasts/{seen['draft']}/send",
                    f"/admin/desk/broadcasts/{seen['draft']}/preview",
                    f"/admin/desk/broadcasts/{seen['draft']}/cancel",
                    "/admin/desk/promo-codes/create",
                    "/admin/desk/promo-codes/SPRING20/disable",
                    "/admin/desk/webhooks/create",
                    f"/admin/desk/webhooks/{seen['endpoint']}/test",
                    f"/admin/desk/webhooks/{seen['endpoint']}/rotate",
                    f"/admin/desk/webhooks/{seen['endpoint']}/disable",
                    f"/admin/desk/webhooks/{seen['endpoint']}/delete",
                ],
            ],
        )
        assert statuses == [403] * 11
    assert outside == []
    assert [a for a in await audit_actions(bot) if a != "admin.login"] == before
    async with httpx.AsyncClient(
        base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}, timeout=30
    ) as api:
        draft = (await api.get(f"/api/v1/broadcasts/{seen['draft']}")).json()
        assert draft["status"] == "draft"
        assert (await api.get("/api/v1/promo-codes/SPRING20")).json()["active"] is True
        assert len((await api.get("/api/v1/webhook-endpoints")).json()) == 1
        assert (await api.get("/api/v1/promo-codes/FREE")).status_code == 404


@pytest.mark.browser
async def test_the_pages_at_desktop_and_phone_width(
    bot_hooks: BotStack, receiver: Receiver, tmp_path: Path
) -> None:
    """Screenshots for a person to look at (SATSHARE_SCREENSHOTS=dir keeps them); the test
    checks that no page scrolls sideways on a phone and nothing comes from outside."""
    bot = bot_hooks
    seen = await _seed(bot, receiver.url)
    await admin_user(bot, "olga", Role.OWNER)
    folder = Path(SCREENSHOTS or tmp_path)
    os.makedirs(folder, exist_ok=True)
    pages = {
        "webhooks": "/admin/desk/webhooks",
        "webhook": f"/admin/desk/webhooks/{seen['endpoint']}",
        "broadcasts": "/admin/desk/broadcasts",
        "promo-codes": "/admin/desk/promo-codes",
    }
    for width, language in ((1280, "en"), (390, "ru")):
        async with offline_context(width) as (context, outside):
            page = await context.new_page()
            await login(page, bot.url, "olga")
            await page.wait_for_url(f"{bot.url}/admin/")
            for name, path in pages.items():
                response = await page.goto(f"{bot.url}{path}?lang={language}")
                assert response is not None and response.status == 200, path
                for details in await page.locator("details").all():
                    await details.evaluate("element => element.open = true")
                await page.screenshot(
                    path=folder / f"growth-{name}-{language}-{width}.png", full_page=True
                )
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 1, (path, width, overflow)
            assert outside == [], outside
