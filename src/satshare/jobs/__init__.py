"""Background jobs: the catalogue (``catalogue.py``) and what runs it.

On PostgreSQL the jobs run on procrastinate's queue (``satshare.jobqueue``), shared by every
process: in ``jobs.mode: inline`` each ``serve`` also works the queue; in ``workers`` mode
only ``satshare worker`` processes do. On SQLite one process runs the catalogue itself
(``inline.py``). Nothing here imports procrastinate's testing module.

Composition root: may import the container, the bot and every domain.
"""

from __future__ import annotations

from collections.abc import Sequence

from satshare.container import Container
from satshare.jobqueue import register
from satshare.jobs.catalogue import BotJobs, catalogue
from satshare.jobs.inline import InlineJobs

__all__ = ["BotJobs", "catalogue", "run_jobs", "run_worker"]


async def run_jobs(container: Container, bot: BotJobs | None) -> None:
    """``serve`` in inline mode: run the jobs here until cancelled."""
    jobs = catalogue(container, bot)
    if container.job_queue is None:
        await InlineJobs(jobs).run()
        return
    await run_worker(container, bot, concurrency=container.settings.jobs.concurrency)


async def run_worker(
    container: Container,
    bot: BotJobs | None,
    *,
    concurrency: int,
    queues: Sequence[str] | None = None,
    install_signal_handlers: bool = False,
) -> None:
    """Work procrastinate's queue (PostgreSQL) until cancelled or, with signal handlers,
    until SIGINT/SIGTERM (a job in progress finishes first)."""
    app = container.job_queue
    assert app is not None, "the job queue needs PostgreSQL"
    register(app, catalogue(container, bot))
    options: dict[str, object] = {"queues": list(queues)} if queues else {}
    async with app.open_async():
        await app.run_worker_async(
            concurrency=concurrency,
            wait=True,
            install_signal_handlers=install_signal_handlers,
            delete_jobs="always",
            **options,  # type: ignore[arg-type]
        )
