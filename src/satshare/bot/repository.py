"""SQL of the Telegram adapter's own tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.bot.models import ProcessedUpdate
from satshare.db import Database, insert_ignore


async def purge_processed_updates(session: AsyncSession, before: datetime) -> int:
    """Telegram keeps undelivered updates for 24 hours; older ids can never come back."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.received_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def first_sight(db: Database, update_id: int, now: datetime) -> bool:
    """Record a Telegram update's id; False when it was seen before (drop the copy). Its own
    unit of work: the bot's one table is the bot's business."""
    async with db.transaction() as session:
        return await insert_ignore(
            session, ProcessedUpdate, {"update_id": update_id, "received_at": now}, ["update_id"]
        )


async def purge(db: Database, before: datetime) -> int:
    """Forget update ids received before ``before`` (Telegram redelivers for 24 hours only)."""
    async with db.transaction() as session:
        return await purge_processed_updates(session, before)
