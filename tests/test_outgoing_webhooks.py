"""Outgoing webhooks (#14): endpoints, events written with their change, signed as the
Standard Webhooks specification says (checked with its reference library), delivered over
real HTTP to a receiver on loopback, in order, retried with backoff for 24 hours, replayed."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from satshare.clock import FrozenClock
from satshare.jobqueue import JobName, Queue, register
from satshare.jobs import catalogue
from satshare.notifications.models import OutboxMessage
from satshare.webhooks_out import service, signing
from satshare.webhooks_out.models import SUBSCRIBABLE, DeliveryAttempt, WebhookMessage
from tests.conftest import PG_URL, BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, buy, create_user, invoice_status, wait_until
from tests.webhookkit import Receiver, running_receiver

INSECURE = {"webhooks": {"allow_insecure_urls": True}}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for running in running_receiver():
        yield running


@pytest.fixture
async def slow() -> AsyncIterator[Receiver]:
    """A receiver that holds every request until its ``hold`` is set."""
    async for running in running_receiver(hold=asyncio.Event()):
        yield running


@pytest.fixture
async def hooks_stack(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[Stack]:
    """A stack whose endpoints may be http:// on loopback (the receiver)."""
    running = await open_stack(database_url, btcpay, **INSECURE)
    yield running
    await close_stack(running)


async def add_endpoint(stack: Stack, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "description": "test receiver"}
    if events is not None:
        body["events"] = events
    response = await stack.client.post("/api/v1/webhook-endpoints", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliver(stack: Stack) -> None:
    runner = stack.container.webhook_runner
    assert runner is not None
    await runner.flush()


async def deliveries(stack: Stack, endpoint_id: int) -> list[dict[str, Any]]:
    response = await stack.client.get(
        f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries", params={"limit": 200}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def verified(secret: str, received: Any) -> dict[str, Any]:
    """The body, accepted by the Standard Webhooks reference verifier."""
    document: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return document


# -- signing, with the reference library --------------------------------------------------


def test_the_reference_library_accepts_our_signatures_and_a_rotation_signs_with_both() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    assert old.startswith("whsec_") and len(old) > 40
    body = json.dumps({"type": "user.created", "timestamp": "2026-11-30T05:00:00Z", "data": {}})
    now = int(datetime.now(UTC).timestamp())
    headers = signing.headers([new, old], "msg_1", now, body)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].count("v1,") == 2
    assert Webhook(new).verify(body, headers)["type"] == "user.created"
    assert Webhook(old).verify(body, headers)["type"] == "user.created"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # one byte changed
        Webhook(new).verify(body.replace("user", "User"), headers)


def test_backoff_doubles_up_to_an_hour_spread_by_jitter() -> None:
    low = [service.backoff(n, lambda: 0.0) for n in range(1, 14)]
    high = [service.backoff(n, lambda: 1.0) for n in range(1, 14)]
    assert low[0] == timedelta(seconds=2.5) and high[0] == timedelta(seconds=5)
    assert high[1] == timedelta(seconds=10) and high[2] == timedelta(seconds=20)
    assert all(b >= a for a, b in itertools.pairwise(high))
    assert high[-1] == timedelta(hours=1) and low[-1] == timedelta(minutes=30)


# -- endpoints ------------------------------------------------------------------------------


async def test_endpoint_lifecycle_secret_shown_once_and_rotated(hooks_stack: Stack) -> None:
    stack = hooks_stack
    created = await add_endpoint(stack, "https://crm.example.com/hooks", ["payment.settled"])
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["payment.settled"] and created["enabled"] is True
    endpoint_id = created["endpoint_id"]
    shown = (await stack.client.get(f"/api/v1/webhook-endpoints/{endpoint_id}")).json()
    assert "secret" not in shown and shown["url"] == "https://crm.example.com/hooks"
    listed = (await stack.client.get("/api/v1/webhook-endpoints")).json()
    assert [e["endpoint_id"] for e in listed] == [endpoint_id]
    assert all("secret" not in e for e in listed)

    changed = await stack.client.put(
        f"/api/v1/webhook-endpoints/{endpoint_id}",
        json={"url": "https://crm.example.com/v2", "events": ["*"], "enabled": False},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["*"] and changed.json()["enabled"] is False

    rotated = (await stack.client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/secret")).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    async with stack.db.reading() as session:
        endpoint = await service.require_endpoint(session, endpoint_id)
        in_use = service.secrets_in_use(endpoint, stack.container.clock.now())
    assert in_use == [rotated["secret"], created["secret"]]

    types = (await stack.client.get("/api/v1/webhook-event-types")).json()["event_types"]
    assert types == list(SUBSCRIBABLE) and len(types) == 12

    assert (
        await stack.client.delete(f"/api/v1/webhook-endpoints/{endpoint_id}")
    ).status_code == 204
    assert_problem(await stack.client.get(f"/api/v1/webhook-endpoints/{endpoint_id}"), 404)


async def test_bad_endpoints_are_refused_and_change_nothing(stack: Stack) -> None:
    reader = await stack.key("read", "write")
    before = await stack.counts()
    cases: list[dict[str, Any]] = [
        {"url": "http://crm.example.com/hooks"},  # https only outside the sandbox
        {"url": "ftp://crm.example.com/hooks"},
        {"url": "not a url"},
        {"url": "https://user:pw@crm.example.com/"},
        {"url": "https://crm.example.com/", "events": ["payment.teleported"]},
        {"url": "https://crm.example.com/", "events": []},
        {"url": "https://crm.example.com/", "events": "*"},
        {"url": "https://crm.example.com/", "secret": "whsec_mine"},
    ]
    for body in cases:
        problem = assert_problem(
            await stack.client.post("/api/v1/webhook-endpoints", json=body), 422
        )
        assert problem["detail"], body
    async with stack.anonymous() as client:
        client.headers["Authorization"] = f"Bearer {reader}"
        assert_problem(await client.get("/api/v1/webhook-endpoints"), 403)
    assert_problem(await stack.client.get("/api/v1/webhook-endpoints/99/deliveries"), 404)
    replay = await stack.client.post(
        "/api/v1/webhook-endpoints/99/replay",
        json={"since": "2026-11-30T00:00:00Z", "until": "2026-11-29T00:00:00Z"},
    )
    assert_problem(replay, 404)
    assert await stack.counts() == before


# -- events ---------------------------------------------------------------------------------


async def test_a_referred_sale_is_announced_signed_with_the_rest_field_names(
    hooks_stack: Stack, receiver: Receiver
) -> None:
    stack = hooks_stack
    endpoint = await add_endpoint(stack, receiver.url)
    secret = endpoint["secret"]
    affiliate = await create_user(stack.client, "alice")
    buyer = await create_user(stack.client, "bob", referral_id=affiliate["referral_code"])
    order = await buy(stack.client, buyer["user_id"])
    invoice = order["invoice"]
    await stack.btcpay.pay(invoice["provider_invoice_id"], method="BTC-LN")

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    await deliver(stack)
    bodies = [verified(secret, r) for r in receiver.received]
    assert [b["type"] for b in bodies] == [
        "user.created",
        "user.created",
        "payment.settled",
        "subscription.activated",
        "commission.earned",
    ]
    # Each delivery: its own webhook-id, the body's timestamp, {type, timestamp, data}.
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(set(ids)) == len(ids) and all(i.startswith("msg_") for i in ids)
    assert all(set(b) == {"type", "timestamp", "data"} for b in bodies)

    rest_user = (await stack.client.get(f"/api/v1/users/{buyer['user_id']}")).json()
    user_data = bodies[1]["data"]
    assert user_data == {k: rest_user[k] for k in user_data}
    assert set(user_data) == {
        "user_id", "username", "platform", "external_id", "language", "referral_code",
        "referrer_id", "created_at",
    }  # fmt: skip
    rest_sub = (await stack.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    sub_data = bodies[3]["data"]
    assert sub_data == {k: rest_sub[k] for k in sub_data if k in rest_sub}
    assert sub_data["status"] == "active"
    payment = bodies[2]["data"]
    assert payment["invoice_id"] == invoice["id"] and payment["amount_sats"] == 50_000
    assert payment["status"] == "settled" and payment["user_id"] == buyer["user_id"]
    commission = bodies[4]["data"]
    assert commission["user_id"] == affiliate["user_id"]
    assert commission["commission_sats"] == 25_000 and commission["share_bps"] == 5000
    assert commission["transaction_id"] == payment["transaction_id"]

    log = await deliveries(stack, endpoint["endpoint_id"])
    assert {d["status"] for d in log} == {"delivered"}
    attempt = log[0]["attempt_log"][0]
    assert attempt["status_code"] == 200 and attempt["latency_ms"] >= 0
    assert json.loads(attempt["response_snippet"])["ok"] is True

    # The refund: payment.refunded and the commission clawed back.
    refund = await stack.client.post(f"/api/v1/invoices/{invoice['id']}/refund", json={})
    assert refund.status_code in (200, 201), refund.text
    await deliver(stack)
    refunded = [verified(secret, r) for r in receiver.received[5:]]
    assert [b["type"] for b in refunded] == ["payment.refunded", "commission.clawed_back"]
    assert refunded[1]["data"]["commission_sats"] == 25_000
    assert refunded[1]["data"]["reverses_transaction_id"] == payment["transaction_id"]


async def test_a_sale_with_no_endpoint_enabled_asks_once_and_records_nothing(
    hooks_stack: Stack, receiver: Receiver
) -> None:
    """The settlement's first read says whether any endpoint is enabled (#15): with only a
    disabled one, the sale reads no endpoint list and records no event; enabled again, the
    next sale is announced."""
    stack = hooks_stack
    endpoint = await add_endpoint(stack, receiver.url, ["payment.settled"])
    url = f"/api/v1/webhook-endpoints/{endpoint['endpoint_id']}"
    body = {"url": receiver.url, "events": ["payment.settled"]}
    off = await stack.client.put(url, json={**body, "enabled": False})
    assert off.status_code == 200, off.text
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()))

    async def order() -> dict[str, Any]:
        buyer = await create_user(stack.client, f"buyer{len(statements)}")
        return await buy(stack.client, buyer["user_id"])

    async def settle(sold: dict[str, Any]) -> str:
        await stack.btcpay.pay(sold["invoice"]["provider_invoice_id"], method="BTC-LN")

        async def settled() -> bool:
            return await invoice_status(stack.client, sold["subscription_id"]) == "settled"

        await wait_until(settled)
        invoice_id: str = sold["invoice"]["id"]
        return invoice_id

    first = await order()  # its user.created is not what this test watches
    engine = stack.container.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        unheard = await settle(first)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    locks = [s for s in statements if "JOIN subscriptions" in s and "webhook_endpoints" in s]
    assert locks, statements  # the settlement's first read asked (once per webhook)
    own_reads = [s for s in statements if s.startswith("SELECT webhook_endpoints.id")]
    assert own_reads == [], own_reads  # and nothing asked again
    async with stack.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookMessage)) == 0

    on = await stack.client.put(url, json={**body, "enabled": True})
    assert on.status_code == 200, on.text
    heard = await settle(await order())
    await deliver(stack)
    bodies = [verified(endpoint["secret"], r) for r in receiver.received]
    assert [(b["type"], b["data"]["invoice_id"]) for b in bodies] == [("payment.settled", heard)]
    assert unheard != heard


async def test_an_endpoint_gets_only_its_types_and_nothing_of_a_rolled_back_change(
    hooks_stack: Stack, receiver: Receiver
) -> None:
    stack = hooks_stack
    await add_endpoint(stack, receiver.url, ["subscription.canceled"])
    user = await create_user(stack.client, "carol", external_id="77")
    # A duplicate registration fails (409): its transaction rolls back, so no event either.
    duplicate = await stack.client.post(
        "/api/v1/users", json={"username": "x", "platform": "telegram", "external_id": "77"}
    )
    assert_problem(duplicate, 409)
    order = await buy(stack.client, user["user_id"])
    canceled = await stack.client.put(
        f"/api/v1/subscriptions/{order['subscription_id']}", json={"status": "canceled"}
    )
    assert canceled.status_code == 200, canceled.text
    await deliver(stack)
    assert [r.type for r in receiver.received] == ["subscription.canceled"]
    assert receiver.received[0].json["data"]["status"] == "canceled"
    async with stack.db.reading() as session:
        types = (await session.execute(select(WebhookMessage.event_type))).scalars().all()
    assert types == ["subscription.canceled"]  # nobody listens to the rest: nothing written


async def test_the_test_event_and_a_slow_endpoint_that_holds_up_nobody(
    hooks_stack: Stack, receiver: Receiver, slow: Receiver
) -> None:
    stack = hooks_stack
    slow_endpoint = await add_endpoint(stack, slow.url)
    fast_endpoint = await add_endpoint(stack, receiver.url)
    sent = await stack.client.post(f"/api/v1/webhook-endpoints/{fast_endpoint['endpoint_id']}/test")
    assert sent.status_code == 202, sent.text
    assert sent.json()["event_type"] == "webhook.test"
    await wait_until(lambda: _count(receiver, 1))
    assert receiver.received[0].type == "webhook.test"
    # The slow receiver holds its first request; writers go on, and the other endpoint
    # keeps getting its events.
    first = await create_user(stack.client, "dave")
    await wait_until(lambda: _waiting(slow))
    second = await create_user(stack.client, "erin")
    await wait_until(lambda: _count(receiver, 3))
    assert [r.json["data"]["user_id"] for r in receiver.received[1:]] == [
        first["user_id"],
        second["user_id"],
    ]
    assert slow.received == [] and slow.waiting == 1
    assert slow.hold is not None
    slow.hold.set()
    await deliver(stack)
    await wait_until(lambda: _count(slow, 2))
    assert [r.json["data"]["user_id"] for r in slow.received] == [
        first["user_id"],
        second["user_id"],
    ]
    log = await deliveries(stack, slow_endpoint["endpoint_id"])
    assert [d["status"] for d in log] == ["delivered", "delivered"]


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n


async def _waiting(receiver: Receiver) -> bool:
    return receiver.waiting >= 1


# -- retries, failing, replays ------------------------------------------------------------------


async def test_retries_back_off_for_24_hours_in_order_then_failing_alert_and_replay(
    database_url: str, btcpay: BTCPaySim, receiver: Receiver
) -> None:
    clock = FrozenClock(datetime.now(UTC))
    stack = await open_stack(
        database_url, btcpay, clock=clock, telegram={"admin_chat_ids": [-42]}, **INSECURE
    )
    try:
        receiver.default_status = 503
        endpoint = await add_endpoint(stack, receiver.url, ["user.created"])
        endpoint_id = endpoint["endpoint_id"]
        users = [await create_user(stack.client, f"u{n}") for n in range(3)]
        await deliver(stack)
        # In order: the first is tried, the two behind it wait for it.
        log = await deliveries(stack, endpoint_id)
        assert [d["attempts"] for d in reversed(log)] == [1, 0, 0]
        head = log[-1]
        moments = [clock.now()]
        while True:
            head = (await stack.client.get(
                f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{head['delivery_id']}"
            )).json()  # fmt: skip
            if head["status"] == "failed":
                break
            assert head["status"] == "pending"
            due = datetime.fromisoformat(head["next_attempt_at"])
            clock.set(due)
            moments.append(due)
            await deliver(stack)
        gaps = [b - a for a, b in itertools.pairwise(moments)]
        assert gaps[0] <= timedelta(seconds=5) and max(gaps) <= timedelta(hours=1)
        assert gaps[-1] >= timedelta(minutes=30)  # grown to the cap
        assert moments[-1] - moments[0] <= timedelta(hours=24)
        assert head["attempts"] == len(moments)
        assert all(a["status_code"] == 503 for a in head["attempt_log"])
        assert receiver.received and all(
            r.headers["webhook-id"] == head["msg_id"] for r in receiver.received
        )  # every retry of a message carries the same webhook-id
        shown = (await stack.client.get(f"/api/v1/webhook-endpoints/{endpoint_id}")).json()
        assert shown["failing_since"] is not None
        async with stack.db.reading() as session:
            alerts = (
                await session.execute(
                    select(func.count()).where(OutboxMessage.kind == "admin.webhook_failing")
                )
            ).scalar_one()
        assert alerts == 1

        # It works again: the next in line goes, and the given-up one is replayed.
        receiver.default_status = 200
        receiver.received.clear()
        clock.advance(timedelta(hours=2))
        await deliver(stack)
        assert [r.json["data"]["user_id"] for r in receiver.received] == [
            users[1]["user_id"],
            users[2]["user_id"],
        ]
        replayed = await stack.client.post(
            f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{head['delivery_id']}/replay"
        )
        assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
        await deliver(stack)
        assert receiver.received[-1].headers["webhook-id"] == head["msg_id"]
        shown = (await stack.client.get(f"/api/v1/webhook-endpoints/{endpoint_id}")).json()
        assert shown["failing_since"] is None

        # A time range: all three again, or only the failed ones (none are now).
        since = (moments[0] - timedelta(minutes=1)).isoformat()
        until = (moments[0] + timedelta(minutes=1)).isoformat()
        path = f"/api/v1/webhook-endpoints/{endpoint_id}/replay"
        only_failed = await stack.client.post(
            path, json={"since": since, "until": until, "only_failed": True}
        )
        assert only_failed.json() == {"replayed": 0}
        everything = await stack.client.post(path, json={"since": since, "until": until})
        assert everything.status_code == 202 and everything.json() == {"replayed": 3}
        receiver.received.clear()
        await deliver(stack)
        assert [r.json["data"]["user_id"] for r in receiver.received] == [
            u["user_id"] for u in users
        ]
        backwards = await stack.client.post(path, json={"since": until, "until": since})
        assert_problem(backwards, 422)
    finally:
        await close_stack(stack)


async def test_the_events_are_recorded_once_however_often_a_writer_runs(
    hooks_stack: Stack,
) -> None:
    stack = hooks_stack
    await add_endpoint(stack, "https://crm.example.com/hooks")
    now = stack.container.clock.now()
    async with stack.db.transaction() as session:
        data = {"user_id": 1}
        queued = [
            await service.record(
                session, service.EventType.USER_CREATED, data, dedupe_key="k", now=now
            )
            for _ in range(2)
        ]
    assert queued == [1, 0]


async def test_a_receiver_answering_410_gone_is_disabled(
    hooks_stack: Stack, receiver: Receiver
) -> None:
    stack = hooks_stack
    endpoint = await add_endpoint(stack, receiver.url)
    path = f"/api/v1/webhook-endpoints/{endpoint['endpoint_id']}"
    receiver.statuses = [410]
    assert (await stack.client.post(f"{path}/test")).status_code == 202
    await deliver(stack)
    (gone,) = await deliveries(stack, endpoint["endpoint_id"])
    assert gone["status"] == "failed" and gone["attempt_log"][0]["status_code"] == 410
    assert (await stack.client.get(path)).json()["enabled"] is False
    await create_user(stack.client, "frank")  # a disabled endpoint gets no new events
    assert len(await deliveries(stack, endpoint["endpoint_id"])) == 1
    problem = assert_problem(await stack.client.post(f"{path}/test"), 409)
    assert "disabled" in problem["detail"]
    enabled = await stack.client.put(path, json={"url": receiver.url, "enabled": True})
    assert enabled.status_code == 200
    assert (await stack.client.post(f"{path}/test")).status_code == 202
    await deliver(stack)
    assert [r.type for r in receiver.received] == ["webhook.test", "webhook.test"]


@pytest.mark.skipif(PG_URL is None, reason="jobs.mode workers needs PostgreSQL's job queue")
async def test_in_workers_mode_a_commit_with_events_queues_the_delivery_job(
    database_url: str, btcpay: BTCPaySim, receiver: Receiver
) -> None:
    """serve records the event and queues ``deliver_webhooks`` on its own queue (after
    commit, through AfterCommit); a worker's run of that job delivers it."""
    stack = await open_stack(database_url, btcpay, jobs={"mode": "workers"}, **INSECURE)
    try:
        app, waker = stack.container.job_queue, stack.container.job_waker
        assert app is not None and waker is not None
        endpoint = await add_endpoint(stack, receiver.url, ["user.created"])
        async with app.open_async():
            user = await create_user(stack.client, "queued")
            await waker.settle()
            queued = await app.job_manager.list_jobs_async(
                task=JobName.DELIVER_WEBHOOKS, status="todo"
            )
            assert [j.queue for j in queued] == [Queue.WEBHOOKS]
            assert receiver.received == []  # serve does not deliver in workers mode
            register(app, catalogue(stack.container, None))
            await app.run_worker_async(
                queues=[Queue.WEBHOOKS],
                wait=False,
                install_signal_handlers=False,
                delete_jobs="always",
                listen_notify=False,
            )
        (got,) = receiver.of_type("user.created")
        assert verified(endpoint["secret"], got)["data"]["user_id"] == user["user_id"]
    finally:
        await close_stack(stack)


async def test_housekeeping_deletes_old_finished_events_with_their_log_and_keeps_the_rest(
    database_url: str, btcpay: BTCPaySim, receiver: Receiver
) -> None:
    """The delivery log does not grow for ever (#15): after ``webhooks.keep_days``, an event
    none of whose deliveries is still being tried goes, deliveries and attempts with it.
    One still being tried (here: replayed) stays whatever its age, and so does a recent one."""
    clock = FrozenClock(datetime.now(UTC))
    stack = await open_stack(
        database_url, btcpay, clock=clock, webhooks={"allow_insecure_urls": True, "keep_days": 10}
    )
    try:
        endpoint_id = (await add_endpoint(stack, receiver.url, ["user.created"]))["endpoint_id"]
        old = await create_user(stack.client, "old")
        replayed = await create_user(stack.client, "replayed")
        await deliver(stack)
        log = {d["payload"]["data"]["user_id"]: d for d in await deliveries(stack, endpoint_id)}
        assert [d["status"] for d in log.values()] == ["delivered", "delivered"]
        clock.advance(timedelta(days=11))
        receiver.default_status = 503  # what is tried from now on stays open
        again = await stack.client.post(
            f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries/"
            f"{log[replayed['user_id']]['delivery_id']}/replay"
        )
        assert again.status_code == 202
        recent = await create_user(stack.client, "recent")
        await deliver(stack)
        [housekeeping] = [
            job for job in catalogue(stack.container, None) if job.name == "satshare.housekeeping"
        ]

        await housekeeping.run()

        kept = {d["payload"]["data"]["user_id"]: d for d in await deliveries(stack, endpoint_id)}
        assert set(kept) == {replayed["user_id"], recent["user_id"]}
        assert {d["status"] for d in kept.values()} == {"pending"}
        gone = log[old["user_id"]]["delivery_id"]
        missing = await stack.client.get(
            f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{gone}"
        )
        assert_problem(missing, 404)
        async with stack.db.reading() as session:
            messages = await session.scalar(select(func.count()).select_from(WebhookMessage))
            orphans = await session.scalar(
                select(func.count()).where(DeliveryAttempt.delivery_id == gone)
            )
        assert (messages, orphans) == (2, 0)  # its attempts went with it
        # Once delivered, and old enough, the others go too.
        receiver.default_status = 200
        clock.advance(timedelta(hours=2))
        await deliver(stack)
        clock.advance(timedelta(days=11))
        await housekeeping.run()
        assert await deliveries(stack, endpoint_id) == []
    finally:
        await close_stack(stack)
