"""SQL of the Telegram adapter's own tables."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from sqlalchemy import delete, func, literal, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from satshare.bot.models import ProcessedUpdate
from satshare.db import Database, insert_ignore_rows


async def purge_processed_updates(session: AsyncSession, before: datetime) -> int:
    """Telegram keeps undelivered updates for 24 hours; older ids can never come back."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.received_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


#: The PostgreSQL advisory lock held by the one process that long-polls Telegram.
POLLING_LOCK = 0x5A7_5AE0_0001


class LockLost(Exception):
    """The connection holding (or trying) the polling lock is gone."""


class PollingLock:
    """The polling lock on one dedicated connection: the lock belongs to the session, so no
    transaction stays open, and the process's death (its connection's end) frees it."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def try_take(self) -> bool:
        """False when another process holds it."""
        try:
            taken = await self._connection.scalar(select(func.pg_try_advisory_lock(POLLING_LOCK)))
        except (OSError, DBAPIError) as exc:
            raise LockLost(str(exc)) from exc
        return bool(taken)

    async def check(self) -> None:
        """Raises LockLost when the connection (and with it the lock) is gone."""
        try:
            await self._connection.execute(select(literal(1)))
        except (OSError, DBAPIError) as exc:
            raise LockLost(str(exc)) from exc


@contextlib.asynccontextmanager
async def polling_lock(db: Database) -> AsyncIterator[PollingLock]:
    try:
        async with db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield PollingLock(connection)
    except (OSError, DBAPIError) as exc:
        raise LockLost(str(exc)) from exc


async def first_sights(db: Database, update_ids: Sequence[int], now: datetime) -> set[int]:
    """Record Telegram update ids (one statement for a burst of them); the ones seen for the
    first time. An id left out was seen before: drop that update. Its own unit of work: the
    bot's one table is the bot's business."""
    rows = [{"update_id": update_id, "received_at": now} for update_id in set(update_ids)]
    async with db.transaction() as session:
        inserted = await insert_ignore_rows(session, ProcessedUpdate, rows, ["update_id"])
    return {int(update_id) for update_id in inserted}


async def purge(db: Database, before: datetime) -> int:
    """Forget update ids received before ``before`` (Telegram redelivers for 24 hours only)."""
    async with db.transaction() as session:
        return await purge_processed_updates(session, before)


async def last_update_id(db: Database) -> int | None:
    """The highest update id remembered (the sandbox's emulator continues after it)."""
    async with db.reading() as session:
        highest = await session.scalar(select(func.max(ProcessedUpdate.update_id)))
    return int(highest) if highest is not None else None
