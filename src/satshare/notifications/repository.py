"""The outbox's queries: sending, and the figures operators watch (/metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import delete_first
from satshare.notifications.models import OutboxMessage

#: Rows not delivered yet; sent and skipped rows are done and are not counted.
UNDELIVERED = ("pending", "sending", "failed")
#: Rows that are done: kept a while (their dedupe keys), then purged.
DELIVERED = ("sent", "skipped")


@dataclass(frozen=True, slots=True)
class Backlog:
    by_status: dict[str, int]
    #: Age of the oldest row still pending or sending; 0 when there is none.
    lag_seconds: float


async def backlog(session: AsyncSession, now: datetime) -> Backlog:
    rows = await session.execute(
        select(OutboxMessage.status, func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status.in_(UNDELIVERED))
        .group_by(OutboxMessage.status)
    )
    counts: dict[str, int] = {}
    oldest: datetime | None = None
    for status, count, first in rows.all():
        counts[str(status)] = int(count)
        if status != "failed" and first is not None:
            # SQLite hands MIN() back without the column type: a naive UTC datetime or text.
            first = _as_utc(first)
            oldest = first if oldest is None else min(oldest, first)
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return Backlog(counts, lag)


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def due_for_update(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[OutboxMessage]:
    """Messages due for sending (pending and due, or a sender's lease run out), oldest first,
    locked; rows another sender holds are skipped."""
    result = await session.execute(
        select(OutboxMessage)
        .where(
            or_(
                (OutboxMessage.status == "pending")
                & or_(
                    OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now
                ),
                (OutboxMessage.status == "sending") & (OutboxMessage.next_attempt_at <= now),
            )
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return result.scalars().all()


#: Built once: the sender marks every message it sends (#15). On the table, not the mapped
#: class: one UPDATE, no object loaded first and none to keep in step.
_OUTBOX: Any = OutboxMessage.__table__
_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("message_id"))
    .values(status="sent", sent_at=bindparam("at"), attempts=_OUTBOX.c.attempts + 1)
)


async def mark_sent(session: AsyncSession, message_id: int, now: datetime) -> None:
    """Telegram accepted it: sent, one attempt more."""
    await session.execute(_MARK_SENT, {"message_id": message_id, "at": now})


async def purge_delivered(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` rows sent or skipped before ``before``; how many. Failed rows
    stay (an operator looks at them); so do rows not done yet."""
    return await delete_first(
        session,
        OutboxMessage,
        OutboxMessage.status.in_(DELIVERED),
        OutboxMessage.sent_at < before,
        limit=limit,
    )
