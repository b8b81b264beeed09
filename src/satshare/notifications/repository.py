"""SQL of the outbox that is not part of sending: the figures operators watch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.notifications.models import OutboxMessage

#: Rows not delivered yet; sent and skipped rows are done and are not counted.
UNDELIVERED = ("pending", "sending", "failed")


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
