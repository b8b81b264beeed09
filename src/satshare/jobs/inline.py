"""The job catalogue in this process (SQLite: one process does everything).

Each job runs at start, then every ``every`` seconds: the sweep behind the in-process
wake-ups after commit (``AfterCommit`` kicks the sealer, the payout sender and the outbox
sender at once, and rings the broadcasts' job, which then runs at once: ``Job.woken``). A
failed run is logged and retried at its next period: the state it works on lives in the
database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from satshare import logs
from satshare.db import database_down
from satshare.jobqueue import Job

log = logging.getLogger(__name__)


class InlineJobs:
    def __init__(self, jobs: Iterable[Job]) -> None:
        self._jobs = tuple(jobs)

    async def run(self) -> None:
        """Run every job until cancelled."""
        async with asyncio.TaskGroup() as group:
            for job in self._jobs:
                group.create_task(self._loop(job), name=job.name)

    @staticmethod
    async def _loop(job: Job) -> None:
        while True:
            try:
                await job.run()
            except Exception as exc:
                logs.warn_unavailable(
                    log,
                    "job %s failed; it runs again in %d s",
                    exc,
                    database_down,
                    job.name,
                    job.every,
                )
            if job.woken is None:
                await asyncio.sleep(job.every)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.woken(), job.every)
