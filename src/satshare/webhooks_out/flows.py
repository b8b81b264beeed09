"""Delivery: after commit, outside any transaction while the HTTP call runs.

Each endpoint is drained on its own (up to ``concurrency`` at once), oldest delivery first,
so a slow or dead receiver holds up only its own queue, and settlement never waits for any
of them (it only writes rows). An attempt is: claim the endpoint's oldest open delivery
with a lease (a conditional update), send it, record the outcome. A failure stops that
endpoint's queue until the retry is due, so deliveries arrive in order; after 24 hours of
retries the delivery is given up (it can be replayed), the endpoint is marked failing and
the admins are alerted once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from satshare import logs
from satshare.audit.flows import Actor, audited
from satshare.clock import Clock
from satshare.db import Database, database_down, purge_in_batches
from satshare.errors import NotFound
from satshare.webhooks_out import repository, service, signing
from satshare.webhooks_out.models import (
    DeliveryAttempt,
    DeliveryStatus,
    EndpointDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from satshare.webhooks_out.ports import WebhookSender

log = logging.getLogger(__name__)

#: Engine → the delivery runner's kick, for the commits that recorded events.
_KICKS: weakref.WeakKeyDictionary[Engine, Callable[[], None]] = weakref.WeakKeyDictionary()


def kick_after_commit(db: Database, kick: Callable[[], None]) -> None:
    """Call ``kick`` after every commit on ``db`` that recorded events, whichever writer it
    was (an API route, the bot, a job): deliveries start at once, not at the next periodic
    run, and never before the events are committed."""
    _KICKS[db.engine.sync_engine] = kick
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    if session.info.pop(service.RECORDED, False):
        bind = session.get_bind()
        kick = _KICKS.get(bind.engine if isinstance(bind, Connection) else bind)
        if kick is not None:
            kick()


def _after_rollback(session: Session) -> None:
    session.info.pop(service.RECORDED, None)


class FailingAlert(Protocol):
    """Queue the owner's alert that an endpoint is failing, in the given transaction (the
    composition root writes it to the admins' outbox, a domain this one may not import)."""

    def __call__(
        self, session: AsyncSession, endpoint: WebhookEndpoint, now: datetime
    ) -> Awaitable[None]: ...


@dataclass
class WebhooksContext:
    db: Database
    clock: Clock
    sender: WebhookSender
    #: http:// and private addresses accepted for endpoints (sandbox, tests).
    allow_insecure: bool = False
    #: A claimed delivery whose sender died is taken again after this (longer than the
    #: sender's timeout).
    lease: timedelta = timedelta(minutes=2)
    #: Endpoints drained at once.
    concurrency: int = 16
    #: Deliveries to one endpoint per run, so that one busy endpoint cannot keep a run going.
    per_endpoint: int = 100
    #: Called when an endpoint starts failing (the composition root alerts the admins).
    on_failing: FailingAlert | None = None
    #: Called after a commit that recorded events (kicks the delivery runner).
    kick: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: int
    url: str
    body: str
    headers: dict[str, str]


async def _claim_head(ctx: WebhooksContext, endpoint_id: int) -> Claimed | None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        endpoint = await repository.endpoint(session, endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return None
        head = await repository.head_of_queue(session, endpoint_id)
        if head is None or (head.next_attempt_at is not None and head.next_attempt_at > now):
            return None
        if not await repository.claim(session, head.id, now, now + ctx.lease):
            return None
        message = await repository.message(session, head.message_id)
        assert message is not None
        headers = signing.headers(
            service.secrets_in_use(endpoint, now),
            message.msg_id,
            int(now.timestamp()),
            message.body,
        )
        headers["content-type"] = "application/json"
        return Claimed(head.id, endpoint.url, message.body, headers)


async def _drain(ctx: WebhooksContext, endpoint_id: int, slots: asyncio.Semaphore) -> int:
    sent = 0
    async with slots:
        while sent < ctx.per_endpoint:
            claimed = await _claim_head(ctx, endpoint_id)
            if claimed is None:
                break
            outcome = await ctx.sender.post(claimed.url, claimed.body.encode(), claimed.headers)
            async with ctx.db.transaction() as session:
                recorded = await service.record_attempt(
                    session, claimed.delivery_id, outcome, ctx.clock.now()
                )
                if recorded is None:
                    break  # the endpoint is gone
                if recorded.became_failing and ctx.on_failing is not None:
                    endpoint = await repository.endpoint(session, endpoint_id)
                    assert endpoint is not None
                    await ctx.on_failing(session, endpoint, ctx.clock.now())
            sent += 1
            if recorded.delivery.status is not DeliveryStatus.DELIVERED:
                log.info(
                    "webhook delivery %d to endpoint %d: %s",
                    claimed.delivery_id,
                    endpoint_id,
                    outcome.error or f"HTTP {outcome.status_code}",
                )
                break  # in order: the next one waits for this one's retry
    return sent


async def deliver_due(ctx: WebhooksContext) -> int:
    """Send every due delivery, all endpoints at once, and wait for them; returns how many
    attempts were made (the periodic job and the tests; writers kick a DeliveryRunner)."""
    async with ctx.db.reading() as session:
        endpoint_ids = await repository.endpoints_with_work(session)
    if not endpoint_ids:
        return 0
    slots = asyncio.Semaphore(ctx.concurrency)
    counts = await asyncio.gather(*(_drain(ctx, e, slots) for e in endpoint_ids))
    return sum(counts)


class DeliveryRunner:
    """Delivery in the background: one task per endpoint with work, so that an endpoint
    that answers slowly (up to the timeout, on every retry) holds up only its own queue.
    ``kick()`` after a commit that recorded events; concurrent kicks coalesce."""

    def __init__(self, ctx: WebhooksContext) -> None:
        self.ctx = ctx
        self._slots = asyncio.Semaphore(ctx.concurrency)
        self._drains: dict[int, asyncio.Task[None]] = {}
        #: Endpoints kicked while their drain was running: it goes round once more.
        self._again: set[int] = set()
        self._scan: asyncio.Task[None] | None = None
        self._rescan = False

    def kick(self) -> None:
        if self._scan is not None and not self._scan.done():
            self._rescan = True
            return
        self._scan = asyncio.create_task(self._scan_loop())

    async def _scan_loop(self) -> None:
        while True:
            self._rescan = False
            try:
                async with self.ctx.db.reading() as session:
                    endpoint_ids = await repository.endpoints_with_work(session)
            except Exception as exc:
                logs.warn_unavailable(
                    log,
                    "looking for webhook deliveries failed; the periodic job retries",
                    exc,
                    database_down,
                )
                return
            for endpoint_id in endpoint_ids:
                task = self._drains.get(endpoint_id)
                if task is not None and not task.done():
                    self._again.add(endpoint_id)
                else:
                    self._drains[endpoint_id] = asyncio.create_task(self._drain_loop(endpoint_id))
            if not self._rescan:
                return

    async def _drain_loop(self, endpoint_id: int) -> None:
        while True:
            self._again.discard(endpoint_id)
            try:
                await _drain(self.ctx, endpoint_id, self._slots)
            except Exception as exc:
                logs.warn_unavailable(
                    log,
                    "webhook delivery to endpoint %d failed; retried later",
                    exc,
                    database_down,
                    endpoint_id,
                )
                return
            if endpoint_id not in self._again:
                return

    async def flush(self) -> int:
        """Wait for the deliveries in progress, then send whatever is still due."""
        while running := self._running():
            # A scan may start drains, and a drain may be going round again: until all rest.
            await asyncio.gather(*(asyncio.shield(t) for t in running), return_exceptions=True)
        return await deliver_due(self.ctx)

    def _running(self) -> list[asyncio.Task[None]]:
        tasks = (self._scan, *self._drains.values())
        return [t for t in tasks if t is not None and not t.done()]

    async def aclose(self, *, grace: float = 10.0) -> None:
        """Let attempts in progress finish (their outcome is recorded); cancel them if they
        overstay ``grace`` seconds (the lease lets another run take them again)."""
        running = [
            t for t in (self._scan, *self._drains.values()) if t is not None and not t.done()
        ]
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


# -- managing endpoints (the API's use cases) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """A delivery with its event's message and every attempt, oldest first."""

    delivery: EndpointDelivery
    message: WebhookMessage
    attempts: Sequence[DeliveryAttempt]


def _target(endpoint_id: int) -> str:
    return f"webhook-endpoint:{endpoint_id}"


async def create_endpoint(
    ctx: WebhooksContext, spec: service.EndpointSpec, *, by: Actor | None = None
) -> WebhookEndpoint:
    """A new endpoint with its secret. ``by``: the audit row commits with it (the panel; the
    admin API's middleware records its own calls)."""
    async with audited(ctx.db, by, "webhook.create", now=ctx.clock.now()) as work:
        endpoint = await service.create_endpoint(
            work.session, spec, work.now, allow_insecure=ctx.allow_insecure
        )
        work.target, work.after = _target(endpoint.id), service.facts(endpoint)
        return endpoint


async def list_endpoints(ctx: WebhooksContext) -> Sequence[WebhookEndpoint]:
    async with ctx.db.reading() as session:
        return await repository.endpoints(session)


@dataclass(frozen=True, slots=True)
class EndpointSummary:
    """An endpoint with how many of its deliveries are in each state (the panel's list)."""

    endpoint: WebhookEndpoint
    deliveries: dict[DeliveryStatus, int]


async def endpoint_summaries(ctx: WebhooksContext) -> list[EndpointSummary]:
    async with ctx.db.reading() as session:
        rows = await repository.endpoints(session)
        counts = await repository.delivery_counts(session)
    return [EndpointSummary(e, counts.get(e.id, {})) for e in rows]


async def get_endpoint(ctx: WebhooksContext, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint; NotFound when there is none."""
    async with ctx.db.reading() as session:
        return await service.require_endpoint(session, endpoint_id)


async def update_endpoint(
    ctx: WebhooksContext,
    endpoint_id: int,
    spec: service.EndpointSpec,
    *,
    by: Actor | None = None,
) -> WebhookEndpoint:
    target = _target(endpoint_id)
    async with audited(ctx.db, by, "webhook.update", target, now=ctx.clock.now()) as work:
        work.before = service.facts(await service.require_endpoint(work.session, endpoint_id))
        endpoint = await service.update_endpoint(
            work.session, endpoint_id, spec, work.now, allow_insecure=ctx.allow_insecure
        )
        work.after = service.facts(endpoint)
    ctx.kick()  # re-enabled: its waiting deliveries may go
    return endpoint


async def set_enabled(
    ctx: WebhooksContext, endpoint_id: int, enabled: bool, *, by: Actor | None = None
) -> WebhookEndpoint:
    action = "webhook.enable" if enabled else "webhook.disable"
    async with audited(ctx.db, by, action, _target(endpoint_id), now=ctx.clock.now()) as work:
        was = (await service.require_endpoint(work.session, endpoint_id)).enabled
        endpoint = await service.set_enabled(work.session, endpoint_id, enabled, work.now)
        work.before, work.after = {"enabled": was}, {"enabled": enabled}
    ctx.kick()  # re-enabled: its waiting deliveries may go
    return endpoint


async def delete_endpoint(
    ctx: WebhooksContext, endpoint_id: int, *, by: Actor | None = None
) -> None:
    target = _target(endpoint_id)
    async with audited(ctx.db, by, "webhook.delete", target, now=ctx.clock.now()) as work:
        work.before = service.facts(await service.require_endpoint(work.session, endpoint_id))
        await service.delete_endpoint(work.session, endpoint_id)


async def rotate_secret(
    ctx: WebhooksContext, endpoint_id: int, *, by: Actor | None = None
) -> WebhookEndpoint:
    target = _target(endpoint_id)
    async with audited(ctx.db, by, "webhook.rotate_secret", target, now=ctx.clock.now()) as work:
        endpoint = await service.rotate_secret(work.session, endpoint_id, work.now)
        # Never a secret: when the old one stops signing.
        work.after = {"previous_secret_valid_until": endpoint.previous_secret_until}
        return endpoint


async def get_delivery(ctx: WebhooksContext, endpoint_id: int, delivery_id: int) -> DeliveryView:
    """One delivery of the endpoint; NotFound for another endpoint's or none."""
    async with ctx.db.reading() as session:
        delivery = await repository.delivery(session, delivery_id)
        if delivery is None or delivery.endpoint_id != endpoint_id:
            await service.require_endpoint(session, endpoint_id)
            raise NotFound(
                f"delivery {delivery_id} of webhook endpoint {endpoint_id} does not exist"
            )
        message = await repository.message(session, delivery.message_id)
        assert message is not None
        attempts = await repository.attempts_of(session, [delivery.id])
    return DeliveryView(delivery, message, attempts)


async def deliveries_page(
    ctx: WebhooksContext,
    endpoint_id: int,
    *,
    limit: int,
    fetch: int,
    before_id: int | None,
    status: DeliveryStatus | None,
) -> tuple[int, list[DeliveryView]]:
    """How many rows were fetched (``fetch``, one more than a page tells whether there is
    a next) and the first ``limit`` of them with their attempts, newest first."""
    async with ctx.db.reading() as session:
        await service.require_endpoint(session, endpoint_id)
        rows = await repository.deliveries(
            session, endpoint_id, limit=fetch, before_id=before_id, status=status
        )
        shown = rows[:limit]
        attempts = await repository.attempts_of(session, [d.id for d, _ in shown])
    by_delivery: dict[int, list[DeliveryAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    return len(rows), [DeliveryView(d, m, by_delivery.get(d.id, [])) for d, m in shown]


async def send_test(
    ctx: WebhooksContext, endpoint_id: int, *, by: Actor | None = None
) -> DeliveryView:
    target = _target(endpoint_id)
    async with audited(ctx.db, by, "webhook.test", target, now=ctx.clock.now()) as work:
        delivery = await service.send_test(work.session, endpoint_id, work.now)
        work.after = {"delivery_id": delivery.id}
    ctx.kick()
    return await get_delivery(ctx, endpoint_id, delivery.id)


async def replay(
    ctx: WebhooksContext, endpoint_id: int, delivery_id: int, *, by: Actor | None = None
) -> DeliveryView:
    target = _target(endpoint_id)
    async with audited(ctx.db, by, "webhook.replay", target, now=ctx.clock.now()) as work:
        delivery = await service.replay(work.session, endpoint_id, delivery_id, work.now)
        work.after = {"delivery_id": delivery_id, "status": delivery.status.value}
    ctx.kick()
    return await get_delivery(ctx, endpoint_id, delivery_id)


async def replay_range(
    ctx: WebhooksContext,
    endpoint_id: int,
    since: datetime,
    until: datetime,
    *,
    only_failed: bool,
    by: Actor | None = None,
) -> int:
    target = _target(endpoint_id)
    async with audited(ctx.db, by, "webhook.replay_range", target, now=ctx.clock.now()) as work:
        count = await service.replay_range(
            work.session, endpoint_id, since, until, work.now, only_failed=only_failed
        )
        work.after = {
            "since": since,
            "until": until,
            "only_failed": only_failed,
            "replayed": count,
        }
    ctx.kick()
    return count


#: Messages deleted per transaction by ``purge_finished``: short locks, bounded work each.
PURGE_BATCH = 2_000


async def purge_finished(db: Database, before: datetime, batch: int = PURGE_BATCH) -> int:
    """Delete the messages created before ``before`` whose deliveries are all done, with
    their deliveries and attempts, a batch per transaction (the delivery log would otherwise
    grow by a message, a delivery and an attempt per event and endpoint for ever, #15); how
    many messages."""
    return await purge_in_batches(
        db, lambda session, limit: repository.purge_finished(session, before, limit), batch
    )
