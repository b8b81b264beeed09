"""All audit log SQL: insert and search (never update or delete)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.audit.models import AuditEvent


async def add(session: AsyncSession, event: AuditEvent) -> AuditEvent:
    session.add(event)
    await session.flush()
    return event


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(
    session: AsyncSession,
    *,
    text: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> Sequence[AuditEvent]:
    """Newest first. ``text`` matches actor, action, target or reason (case-insensitive)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if text:
        pattern = f"%{_escaped(text)}%"
        query = query.where(
            or_(
                AuditEvent.actor.ilike(pattern, escape="\\"),
                AuditEvent.action.ilike(pattern, escape="\\"),
                AuditEvent.target.ilike(pattern, escape="\\"),
                AuditEvent.reason.ilike(pattern, escape="\\"),
            )
        )
    if action:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at < until)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return (await session.execute(query)).scalars().all()
