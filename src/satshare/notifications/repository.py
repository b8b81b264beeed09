"""The outbox's queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.notifications.models import OutboxMessage


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
