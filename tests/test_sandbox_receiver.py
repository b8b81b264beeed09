"""The sandbox's webhook receiver: a newcomer tries outgoing webhooks (#14) with no server of
their own. An endpoint pointed at ``/sim/receiver/<name>`` delivers inside the sandbox, and
``/sandbox/webhooks`` shows each delivery with its signature checked against the endpoint's
secret (the same check ``standardwebhooks`` makes); a ``fail…`` name answers 500."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from satshare.sandbox import SANDBOX_RECEIVER_PATH
from satshare.staff import service as accounts
from satshare.staff.models import Role
from satshare.webhooks_out.signing import headers as signed_headers
from satshare.webhooks_out.signing import verifies
from tests.adminkit import PASSWORD, browser_login
from tests.browser import chromium, refuse_outside
from tests.qrkit import keep
from tests.sandboxkit import Sandbox


async def _endpoint(sandbox: Sandbox, name: str) -> dict[str, object]:
    answer = await sandbox.client.post(
        "/api/v1/webhook-endpoints",
        json={"url": f"{sandbox.url}{SANDBOX_RECEIVER_PATH}/{name}", "events": ["*"]},
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, object] = answer.json()
    return created


async def _send_test(sandbox: Sandbox, endpoint_id: object) -> None:
    answer = await sandbox.client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/test")
    assert answer.status_code == 202, answer.text
    runner = sandbox.container.webhook_runner
    assert runner is not None
    await runner.flush()


async def _page(sandbox: Sandbox) -> str:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30) as browser:
        answer = await browser.get("/sandbox/webhooks")
    assert answer.status_code == 200
    return answer.text


async def test_a_test_event_arrives_signed_and_a_forged_one_is_told_apart(
    sandbox: Sandbox,
) -> None:
    assert "Nothing received yet" in await _page(sandbox)
    demo = await _endpoint(sandbox, "demo")
    await _send_test(sandbox, demo["endpoint_id"])

    receiver = sandbox.container.sandbox.pages.receiver  # type: ignore[union-attr]
    assert receiver is not None
    [got] = receiver.deliveries()
    assert got.name == "demo" and got.status == 204
    assert json.loads(got.body)["type"] == "webhook.test"
    # What the page calls verified, the reference library accepts with the endpoint's secret.
    Webhook(str(demo["secret"])).verify(got.body.decode(), got.headers)
    page = await _page(sandbox)
    assert f"signature verified (endpoint #{demo['endpoint_id']})" in page
    assert "webhook.test" in page and "answered 204" in page

    # Posted by hand with another secret: the page says it does not match; at a name no
    # endpoint uses: that no endpoint points there.
    body = json.dumps({"type": "invoice.paid", "data": {}})
    forged = signed_headers([str(demo["secret"])[:-4] + "AAA="], "msg_forged", 1_700_000_000, body)
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30) as client:
        for name in ("demo", "nobody"):
            posted = await client.post(
                f"{SANDBOX_RECEIVER_PATH}/{name}", content=body, headers=forged
            )
            assert posted.status_code == 204
    page = await _page(sandbox)
    assert page.count("signature does not match any endpoint's secret") == 1
    assert page.count("no endpoint points here") == 1
    assert page.count("signature verified") == 1


async def test_a_fail_name_answers_500_and_the_delivery_is_retried(sandbox: Sandbox) -> None:
    failing = await _endpoint(sandbox, "fail-crm")
    await _send_test(sandbox, failing["endpoint_id"])
    log = await sandbox.client.get(f"/api/v1/webhook-endpoints/{failing['endpoint_id']}/deliveries")
    assert log.status_code == 200, log.text
    [delivery] = log.json()["items"]
    assert delivery["status"] != "delivered" and delivery["attempts"] == 1
    assert "answered 500" in await _page(sandbox)


def test_a_signature_check_refuses_what_is_not_signed_by_the_secret() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"type":"webhook.test"}'
    sent = signed_headers([secret], "msg_1", 1_700_000_000, body)
    args = ("msg_1", "1700000000", body.encode())
    assert verifies([secret], *args, sent["webhook-signature"])
    assert not verifies([secret], "msg_2", "1700000000", body.encode(), sent["webhook-signature"])
    assert not verifies([secret], "msg_1", "1700000001", body.encode(), sent["webhook-signature"])
    assert not verifies([secret], "msg_1", "not-a-number", body.encode(), "v1,xyz")
    assert not verifies([secret], *args, "")
    # During a rotation either secret's signature is enough.
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3"
    assert verifies([other, secret], *args, sent["webhook-signature"])


@pytest.mark.browser
async def test_the_receiver_page_at_desktop_and_phone_width(sandbox: Sandbox) -> None:
    demo = await _endpoint(sandbox, "demo")
    await _send_test(sandbox, demo["endpoint_id"])
    async with chromium() as browser:
        for width, name in ((1280, "receiver-desktop"), (390, "receiver-phone")):
            context = await browser.new_context(viewport={"width": width, "height": 900})
            outside = await refuse_outside(context)
            page = await context.new_page()
            await page.goto(f"{sandbox.url}/sandbox/webhooks")
            tag = page.locator("#delivery-1 .tag.verified")
            assert "endpoint #" in await tag.inner_text()
            # Nothing wider than the screen: the body and long headers wrap.
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (width, overflow)
            keep(await page.screenshot(full_page=True), name)
            assert outside == []
            await context.close()


@pytest.mark.browser
async def test_the_receiver_page_is_named_as_its_link_says_and_leads_back_to_the_chat(
    sandbox: Sandbox,
) -> None:
    async with sandbox.container.db.transaction() as session:
        now = sandbox.container.clock.now()
        await accounts.create_user(session, "olga", Role.OWNER, PASSWORD, now)
    demo = await _endpoint(sandbox, "demo")
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        outside = await refuse_outside(context)
        page = await context.new_page()
        # The chat's link and the page it opens say the same name.
        await page.goto(f"{sandbox.url}/sandbox")
        link = (await page.inner_text("#receiver-link")).lower()
        await page.click("#receiver-link")
        await page.wait_for_url("**/sandbox/webhooks")
        heading = await page.inner_text("h1")
        assert heading.lower() in link, (heading, link)
        assert heading in await page.title()
        # Where the empty page sends the reader, in the words the admin panel uses.
        hint = await page.inner_text("#empty")
        [button] = re.findall(r"press “([^”]+)”", hint)
        [menu] = re.findall(r"admin panel → (\w+)", await page.inner_text(".hint"))
        await browser_login(page, sandbox.url, "olga")
        await page.wait_for_url("**/admin/**")
        assert await page.locator(f"nav a >> text={menu}").count() >= 1, menu
        await page.goto(f"{sandbox.url}/admin/desk/webhooks/{demo['endpoint_id']}")
        assert (await page.inner_text("#send-test")).strip() == button
        await page.click("#send-test")
        await page.wait_for_load_state()

        # With deliveries listed, the way back is at the top, on a phone too.
        for width, name in ((1280, "receiver-back-desktop"), (390, "receiver-back-phone")):
            await page.set_viewport_size({"width": width, "height": 900})
            await page.goto(f"{sandbox.url}/sandbox/webhooks")
            await page.wait_for_selector("#delivery-1")
            back = page.locator("#back")
            bot = sandbox.container.sandbox.pages.chat.bot_username  # type: ignore[union-attr]
            assert await back.inner_text() == f"Back to the sandbox chat with @{bot}"
            box = await back.bounding_box()
            assert box is not None and box["y"] + box["height"] <= 900
            keep(await page.screenshot(full_page=True), name)
        await back.click()
        await page.wait_for_selector("#new-user")  # the chat
        assert outside == []
        await context.close()
