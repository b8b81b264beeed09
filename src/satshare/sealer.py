"""Runs the ledger sealer in the background: chains new entries shortly after they commit.

Writers call ``kick()`` after committing an entry; concurrent kicks coalesce into one run
that repeats while more arrive. A periodic job seals too, for entries written by other
processes or left behind by a crash.
"""

from __future__ import annotations

import asyncio
import logging

from satshare.clock import Clock
from satshare.db import Database
from satshare.ledger import service as ledger

log = logging.getLogger(__name__)


class LedgerSealer:
    def __init__(self, db: Database, clock: Clock, batch: int = 1000) -> None:
        self._db = db
        self._clock = clock
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def kick(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self.seal_all()
            except Exception:  # the periodic job retries; never lose the request
                log.exception("sealing the ledger failed; the periodic job will retry")
                return
            if not self._again:
                return

    async def seal_all(self) -> int:
        total = 0
        while True:
            async with self._db.transaction() as session:
                sealed = await ledger.seal_pending(session, self._clock.now(), self._batch)
            total += sealed
            if sealed < self._batch:
                return total

    async def flush(self) -> int:
        """Wait for any run in progress, then seal whatever is still queued."""
        if self._task is not None:
            await asyncio.shield(self._task)
        return await self.seal_all()

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            await self._task
