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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.clock import Clock
from satshare.db import Database
from satshare.webhooks_out import repository, service, signing
from satshare.webhooks_out.models import DeliveryStatus, WebhookEndpoint
from satshare.webhooks_out.ports import WebhookSender

log = logging.getLogger(__name__)


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
    """Send every due delivery; returns how many attempts were made."""
    async with ctx.db.reading() as session:
        endpoint_ids = await repository.endpoints_with_work(session)
    if not endpoint_ids:
        return 0
    slots = asyncio.Semaphore(ctx.concurrency)
    counts = await asyncio.gather(*(_drain(ctx, e, slots) for e in endpoint_ids))
    return sum(counts)
