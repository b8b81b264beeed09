"""SQL of the outgoing webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import delete_first
from satshare.webhooks_out.models import (
    DeliveryAttempt,
    DeliveryStatus,
    EndpointDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

OPEN = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


async def endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    return (
        (await session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))
        .scalars()
        .all()
    )


#: Built once: every sale asks.
_ENABLED = (
    select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id)
)


async def enabled_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    return (await session.execute(_ENABLED)).scalars().all()


async def endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id)


async def message(session: AsyncSession, message_id: int) -> WebhookMessage | None:
    return await session.get(WebhookMessage, message_id)


async def message_by_key(session: AsyncSession, dedupe_key: str) -> WebhookMessage | None:
    query = select(WebhookMessage).where(WebhookMessage.dedupe_key == dedupe_key)
    return (await session.execute(query)).scalar_one_or_none()


async def delivery(session: AsyncSession, delivery_id: int) -> EndpointDelivery | None:
    return await session.get(EndpointDelivery, delivery_id)


async def delivery_of(
    session: AsyncSession, endpoint_id: int, message_id: int
) -> EndpointDelivery | None:
    query = select(EndpointDelivery).where(
        EndpointDelivery.endpoint_id == endpoint_id, EndpointDelivery.message_id == message_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def delivery_counts(session: AsyncSession) -> dict[int, dict[DeliveryStatus, int]]:
    """Endpoint id → how many of its deliveries are in each state."""
    rows = await session.execute(
        select(EndpointDelivery.endpoint_id, EndpointDelivery.status, func.count()).group_by(
            EndpointDelivery.endpoint_id, EndpointDelivery.status
        )
    )
    counts: dict[int, dict[DeliveryStatus, int]] = {}
    for endpoint_id, status, count in rows.all():
        counts.setdefault(endpoint_id, {})[DeliveryStatus(status)] = int(count)
    return counts


async def deliveries(
    session: AsyncSession,
    endpoint_id: int,
    *,
    limit: int,
    before_id: int | None,
    status: DeliveryStatus | None = None,
) -> Sequence[tuple[EndpointDelivery, WebhookMessage]]:
    query = (
        select(EndpointDelivery, WebhookMessage)
        .join(WebhookMessage, WebhookMessage.id == EndpointDelivery.message_id)
        .where(EndpointDelivery.endpoint_id == endpoint_id)
    )
    if before_id is not None:
        query = query.where(EndpointDelivery.id < before_id)
    if status is not None:
        query = query.where(EndpointDelivery.status == status)
    rows = await session.execute(query.order_by(EndpointDelivery.id.desc()).limit(limit))
    return [(d, m) for d, m in rows.all()]


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[int]
) -> Sequence[DeliveryAttempt]:
    if not delivery_ids:
        return []
    query = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id.in_(delivery_ids))
        .order_by(DeliveryAttempt.id)
    )
    return (await session.execute(query)).scalars().all()


async def deliveries_between(
    session: AsyncSession, endpoint_id: int, since: datetime, until: datetime
) -> Sequence[EndpointDelivery]:
    """The endpoint's deliveries of messages created in [since, until)."""
    query = (
        select(EndpointDelivery)
        .join(WebhookMessage, WebhookMessage.id == EndpointDelivery.message_id)
        .where(
            EndpointDelivery.endpoint_id == endpoint_id,
            WebhookMessage.created_at >= since,
            WebhookMessage.created_at < until,
        )
        .order_by(EndpointDelivery.id)
    )
    return (await session.execute(query)).scalars().all()


async def endpoints_with_work(session: AsyncSession) -> Sequence[int]:
    query = (
        select(EndpointDelivery.endpoint_id)
        .where(EndpointDelivery.status.in_(OPEN))
        .group_by(EndpointDelivery.endpoint_id)
        .order_by(EndpointDelivery.endpoint_id)
    )
    return (await session.execute(query)).scalars().all()


async def head_of_queue(session: AsyncSession, endpoint_id: int) -> EndpointDelivery | None:
    """The endpoint's oldest delivery still open: deliveries go out in order, so a later
    one waits while an earlier one is retried."""
    query = (
        select(EndpointDelivery)
        .where(EndpointDelivery.endpoint_id == endpoint_id, EndpointDelivery.status.in_(OPEN))
        .order_by(EndpointDelivery.id)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def claim(
    session: AsyncSession, delivery_id: int, now: datetime, lease_until: datetime
) -> bool:
    """Take a due delivery for sending (a pending one, or one whose sender's lease ran out):
    a conditional update, so two senders never send the same attempt."""
    due = or_(EndpointDelivery.next_attempt_at.is_(None), EndpointDelivery.next_attempt_at <= now)
    result = await session.execute(
        update(EndpointDelivery)
        .where(
            EndpointDelivery.id == delivery_id,
            or_(
                and_(EndpointDelivery.status == DeliveryStatus.PENDING, due),
                and_(EndpointDelivery.status == DeliveryStatus.SENDING, due),
            ),
        )
        .values(status=DeliveryStatus.SENDING, next_attempt_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def open_count(session: AsyncSession, endpoint_id: int) -> int:
    query = select(func.count()).where(
        EndpointDelivery.endpoint_id == endpoint_id, EndpointDelivery.status.in_(OPEN)
    )
    return int((await session.execute(query)).scalar_one())


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest open delivery is due (for the runner to sleep until then)."""
    query = select(func.min(EndpointDelivery.next_attempt_at)).where(
        EndpointDelivery.status.in_(OPEN)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def purge_finished(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` messages created before ``before`` none of whose deliveries is
    still open (all delivered or given up); their deliveries and attempts go with them (the
    foreign keys cascade). How many messages."""
    still_open = exists().where(
        EndpointDelivery.message_id == WebhookMessage.id, EndpointDelivery.status.in_(OPEN)
    )
    return await delete_first(
        session, WebhookMessage, WebhookMessage.created_at < before, ~still_open, limit=limit
    )
