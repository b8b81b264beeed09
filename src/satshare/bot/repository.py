"""SQL of the Telegram adapter's own tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from satshare.bot.models import ProcessedUpdate


async def purge_processed_updates(session: AsyncSession, before: datetime) -> int:
    """Telegram keeps undelivered updates for 24 hours; older ids can never come back."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.received_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


#: The PostgreSQL advisory lock held by the one process that long-polls Telegram.
POLLING_LOCK = 0x5A7_5AE0_0001


async def try_take_polling(connection: AsyncConnection) -> bool:
    """Take the polling lock for this connection's session (held until it is released or
    the connection ends, e.g. the process dies); False when another process holds it."""
    taken = await connection.scalar(select(func.pg_try_advisory_lock(POLLING_LOCK)))
    return bool(taken)


async def still_connected(connection: AsyncConnection) -> None:
    """Raises when the connection (and with it the lock) is gone."""
    await connection.execute(select(literal(1)))
