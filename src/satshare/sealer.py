"""Runs the ledger sealer in the background: chains new entries shortly after they commit.

Writers call ``kick()`` after committing an entry; concurrent kicks coalesce into one run
that repeats while more arrive. A periodic job seals too, for entries written by other
processes or left behind by a crash.
"""

from __future__ import annotations

from satshare.background import CoalescingRunner
from satshare.clock import Clock
from satshare.db import Database
from satshare.ledger import service as ledger


class LedgerSealer:
    def __init__(self, db: Database, clock: Clock, batch: int = 1000) -> None:
        self._db = db
        self._clock = clock
        self._batch = batch
        self._runner = CoalescingRunner(self.seal_all, "sealing the ledger")
        self.kick = self._runner.kick
        self.flush = self._runner.flush

    async def seal_all(self) -> int:
        total = 0
        while True:
            async with self._db.transaction() as session:
                sealed = await ledger.seal_pending(session, self._clock.now(), self._batch)
            total += sealed
            if sealed < self._batch:
                return total

    async def aclose(self) -> None:
        await self._runner.aclose()
