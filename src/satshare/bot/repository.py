"""SQL of the Telegram adapter's own tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.bot.models import ProcessedUpdate


async def purge_processed_updates(session: AsyncSession, before: datetime) -> int:
    """Telegram keeps undelivered updates for 24 hours; older ids can never come back."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.received_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
