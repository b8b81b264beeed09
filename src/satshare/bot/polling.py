"""Exactly one process long-polls Telegram.

Telegram answers a second concurrent ``getUpdates`` with 409 Conflict, so when several
``serve`` processes share PostgreSQL, the one holding an advisory lock polls and the others
wait to take over: if the poller dies, PostgreSQL ends its session, the lock is free and
another process starts polling within ``RETRY_SECONDS``. Updates it had taken but not
confirmed come again and are recognised by their ids (``processed_updates``). On SQLite
there is one process: it polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from satshare.bot import repository
from satshare.db import Database

log = logging.getLogger(__name__)

#: How often a waiting process tries the lock, and the poller checks it still has it.
RETRY_SECONDS = 3.0


class PollingLeader:
    def __init__(
        self,
        db: Database,
        start: Callable[[], Awaitable[object]],
        stop: Callable[[], Awaitable[object]],
    ) -> None:
        self._db = db
        self._start = start
        self._stop = stop
        self.polling = False

    async def run(self) -> None:
        """Poll while leading, until cancelled; then stop polling."""
        try:
            if self._db.dialect == "sqlite":
                await self._lead()
                await asyncio.Event().wait()
            while True:
                try:
                    await self._hold_the_lock()
                except repository.LockLost:
                    log.warning("lost the database while polling Telegram; trying again")
                    await self._follow()
                await asyncio.sleep(RETRY_SECONDS)
        finally:
            await self._follow()

    async def _hold_the_lock(self) -> None:
        async with repository.polling_lock(self._db) as lock:
            while not await lock.try_take():  # noqa: ASYNC110
                # Polling the lock is the point: PostgreSQL has no wake-up for its release.
                await asyncio.sleep(RETRY_SECONDS)
            await self._lead()
            while True:
                await asyncio.sleep(RETRY_SECONDS)
                await lock.check()

    async def _lead(self) -> None:
        log.info("this process now receives the bot's updates (long polling)")
        await self._start()
        self.polling = True

    async def _follow(self) -> None:
        if self.polling:
            self.polling = False
            with contextlib.suppress(Exception):
                await self._stop()
