"""``ledger verify`` in several processes: the chains' parts checked side by side.

Each link's hash depends only on its own row and its stored prev_hash, so any stretch of a
chain can be checked on its own; only each stretch's first link is checked against the one
before it, when the parts are joined in order (``verify._Join``). The work is CPU in Python
(decoding the rows, canonical JSON, SHA-256: some 30 µs per entry), which one process
cannot spread over cores.

Every worker reads the same database state as the process that asked: the caller's
PostgreSQL transaction exports its snapshot (``pg_export_snapshot``) and each part's
transaction imports it. Workers are started fresh (``spawn``): a forked copy of a process
with an event loop and open connections is not safe to use.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
from collections.abc import Awaitable
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import Database
from satshare.ledger import repository
from satshare.ledger.verify import ChainPart, check_entries_part, check_notes_part


class PartPool:
    """``workers`` processes checking parts of ``part_links`` links each on ``snapshot``."""

    def __init__(self, url: str, snapshot: str, workers: int, part_links: int) -> None:
        self.url = url
        self.snapshot = snapshot
        self.part_links = part_links
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
        )

    async def __aenter__(self) -> PartPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # On a failure the parts not started yet are dropped, not run for nothing.
        self.executor.shutdown(wait=True, cancel_futures=exc is not None)

    async def submit_chain(
        self, session: AsyncSession, *, notes: bool
    ) -> list[Awaitable[ChainPart]]:
        """Hand out the whole entries (or notes) chain, a part at a time, cut where the
        caller's snapshot has every ``part_links``-th link; the parts' results in order."""
        waiting: list[Awaitable[ChainPart]] = []
        after = 0
        while True:
            until = await repository.chain_seq_after(
                session, after, self.part_links - 1, notes=notes
            )
            future = self.executor.submit(check_part, self.url, self.snapshot, notes, after, until)
            waiting.append(asyncio.wrap_future(future))
            if until is None:
                return waiting
            after = until


def check_part(url: str, snapshot: str, notes: bool, after: int, until: int | None) -> ChainPart:
    """In a worker: check one part in a transaction of its own on the caller's snapshot."""
    # What is loaded is set aside from the cyclic garbage collector, as the command does
    # (``cli.common.frozen_heap``), and the collector pauses for the part: a window's rows
    # live long enough to be traversed at each collection (a tenth to a fifth of the part's
    # CPU), and the walk makes few cycles (about 3,000 objects per 100,000 links), collected
    # after.
    gc.freeze()
    gc.disable()
    try:
        return asyncio.run(_check_part(url, snapshot, notes, after, until))
    finally:
        gc.enable()
        gc.collect()


async def _check_part(
    url: str, snapshot: str, notes: bool, after: int, until: int | None
) -> ChainPart:
    db = Database(url, pool_size=1)
    try:
        async with db.reading() as session:
            await repository.import_snapshot(session, snapshot)
            walk = check_notes_part if notes else check_entries_part
            return await walk(session, after, until, None)
    finally:
        await db.dispose()
