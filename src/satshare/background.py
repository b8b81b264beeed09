"""A background run that writers can nudge: ``kick()`` after a commit, ``flush()`` to wait.

Concurrent kicks coalesce into one run that repeats while more arrive, so a burst of
settlements costs a few runs, not one per settlement. A failed run is logged and left to the
periodic job; the state it works on lives in the database, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from satshare import logs
from satshare.db import database_down

log = logging.getLogger(__name__)


class CoalescingRunner:
    def __init__(self, work: Callable[[], Awaitable[int]], what: str) -> None:
        self._work = work
        self._what = what
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
                await self._work()
            except Exception as exc:
                logs.warn_unavailable(
                    log, "%s failed; the periodic job will retry", exc, database_down, self._what
                )
                return
            if not self._again:
                return

    async def flush(self) -> int:
        """Wait for any run in progress, then do whatever is still left."""
        if self._task is not None:
            await asyncio.shield(self._task)
        return await self._work()

    async def aclose(self, *, grace: float = 10.0) -> None:
        """Let a run in progress finish (it may be inside a database transaction); cancel it
        only if it overstays ``grace`` seconds."""
        if self._task is None or self._task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                log.warning("%s did not finish in %s s and was stopped", self._what, grace)
