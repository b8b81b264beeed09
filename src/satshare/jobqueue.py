"""The job queue on PostgreSQL: procrastinate with its PostgreSQL (psycopg) connector.

Every ``serve`` and ``satshare worker`` process on one database shares this queue. Each job
of the catalogue (``satshare.jobs``) is a task with a queueing lock named after it, so a
burst of wake-ups queues one run, and a procrastinate periodic task, so each periodic sweep
runs once per period across all processes (the database refuses a second defer of the same
tick). SQLite has no queue: one process runs the catalogue itself (``jobs/inline.py``).

Runtime layer: procrastinate, SQLAlchemy's URL parser and the standard library only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    # Imported where a queue is opened: SQLite runs the jobs in-process and never loads
    # procrastinate and psycopg (#15).
    import procrastinate

log = logging.getLogger(__name__)

#: Divisors a cron field can step by and stay regular across its wrap-around.
_STEPS_OF_60 = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
_STEPS_OF_24 = (1, 2, 3, 4, 6, 8, 12)


class Queue(StrEnum):
    """Named queues: ``satshare worker --queues telegram`` runs only the bot's jobs."""

    MONEY = "money"
    TELEGRAM = "telegram"
    UPKEEP = "upkeep"
    #: Outgoing webhooks (#14): slow receivers wait here, never in front of money.
    WEBHOOKS = "webhooks"


class JobName(StrEnum):
    """Every job of the catalogue (``satshare.jobs``), by the name it is queued under."""

    RECONCILE_INVOICES = "satshare.reconcile_invoices"
    EXPIRE_SUBSCRIPTIONS = "satshare.expire_subscriptions"
    SEAL_LEDGER = "satshare.seal_ledger"
    SEND_PAYOUTS = "satshare.send_payouts"
    HOUSEKEEPING = "satshare.housekeeping"
    SEND_NOTIFICATIONS = "satshare.send_notifications"
    QUEUE_REMINDERS = "satshare.queue_reminders"
    REMOVE_EXPIRED_MEMBERS = "satshare.remove_expired_members"
    DELIVER_WEBHOOKS = "satshare.deliver_webhooks"
    SEND_BROADCASTS = "satshare.send_broadcasts"


#: The jobs a commit may wake, and their queues.
WAKE_QUEUES: dict[str, str] = {
    JobName.SEAL_LEDGER: Queue.MONEY,
    JobName.SEND_PAYOUTS: Queue.MONEY,
    JobName.SEND_NOTIFICATIONS: Queue.TELEGRAM,
    JobName.DELIVER_WEBHOOKS: Queue.WEBHOOKS,
    JobName.SEND_BROADCASTS: Queue.TELEGRAM,
}


def conninfo(database_url: str) -> str:
    """The libpq URL of a SQLAlchemy one (``postgresql+asyncpg://`` → ``postgresql://``)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def cron_every(seconds: int) -> str:
    """A cron expression (seconds in a sixth column) firing at most ``seconds`` apart: the
    period rounded down to one that divides a minute, an hour or a day, so that ticks stay
    evenly spaced (e.g. 45 s runs every 30 s, 90 s every minute)."""
    if seconds < 60:
        step = max(s for s in _STEPS_OF_60 if s <= max(seconds, 1))
        return f"* * * * * */{step}"
    minutes = seconds // 60
    if minutes < 60:
        step = max(s for s in _STEPS_OF_60 if s <= minutes)
        return f"*/{step} * * * *"
    hours = min(seconds // 3600, 24)
    if hours >= 24:
        return "0 0 * * *"
    step = max(s for s in _STEPS_OF_24 if s <= hours)
    return f"0 */{step} * * *"


class QueueUnavailable(Exception):
    """The job queue's library cannot load on this machine; the message says what to do."""


def open_queue(database_url: str, *, pool_size: int = 4) -> procrastinate.App:
    """The queue's app on this database (opened by ``App.open_async``). Raises
    QueueUnavailable when psycopg finds no libpq to use."""
    try:
        import procrastinate
    except ImportError as exc:
        # psycopg's message lists every build it tried, over several lines.
        raise QueueUnavailable(
            "the PostgreSQL job queue cannot load psycopg (no libpq it can use: "
            f"{str(exc).splitlines()[0]}); install it with `pip install 'psycopg[binary]'` "
            "or install the system's libpq (Debian: apt install libpq5)"
        ) from None

    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(database_url), min_size=1, max_size=pool_size
    )
    return procrastinate.App(connector=connector)


@dataclass(frozen=True, slots=True)
class Job:
    """One job of the catalogue: its name, queue, period and work."""

    name: JobName
    queue: Queue
    #: Seconds between periodic runs (the sweep that catches other processes and crashes).
    every: int
    run: Callable[[], Awaitable[None]]
    #: In-process only (SQLite): returns when a commit wants the job before its period is
    #: up (on PostgreSQL the commit queues the job instead).
    woken: Callable[[], Awaitable[None]] | None = None


#: A job whose worker stopped sending heartbeats this long ago was killed mid-run.
STALLED_AFTER_SECONDS = 60


def register(app: procrastinate.App, jobs: Iterable[Job]) -> None:
    """Each job as a task (queueing lock: its name) and a periodic task; plus the sweep
    that gives the jobs of a killed worker back to the queue."""
    from procrastinate.exceptions import AlreadyEnqueued

    @app.periodic(cron=cron_every(60), periodic_id="sweep")
    @app.task(name="satshare.retry_stalled_jobs", queue=Queue.UPKEEP, queueing_lock="stalled")
    async def retry_stalled_jobs(timestamp: int) -> None:
        manager = app.job_manager
        for stalled in await manager.get_stalled_jobs(
            seconds_since_heartbeat=STALLED_AFTER_SECONDS
        ):
            try:
                await manager.retry_job(stalled)
            except AlreadyEnqueued:
                pass  # a newer run of the same job is already queued: it does the work
            except Exception:
                log.warning("could not requeue stalled job %s", stalled.id)

    for job in jobs:
        work = job.run

        async def run(timestamp: int, _work: Callable[[], Awaitable[None]] = work) -> None:
            # ``timestamp``: the tick a periodic run is for (procrastinate passes it).
            await _work()

        task = app.task(name=job.name, queue=job.queue, queueing_lock=job.name)(run)
        app.periodic(cron=cron_every(job.every), periodic_id="sweep")(task)


class QueueWaker:
    """Defers a job after a commit, from any process; bursts coalesce on the queueing lock.

    Deferring happens after the commit, in the background: a crash (or a database hiccup)
    between the commit and the defer only delays the work until the job's periodic sweep."""

    def __init__(self, app: procrastinate.App) -> None:
        self._app = app
        self._pending: set[asyncio.Task[None]] = set()

    def waker(self, name: str) -> Callable[[], None]:
        return lambda: self.wake(name)

    def wake(self, name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._defer(name))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _defer(self, name: str) -> None:
        from procrastinate.exceptions import AlreadyEnqueued  # loaded by open_queue already

        try:
            await self._app.configure_task(
                name,
                queue=WAKE_QUEUES[name],
                queueing_lock=name,
                task_kwargs={"timestamp": int(time.time())},
            ).defer_async()
        except AlreadyEnqueued:
            pass  # a run is already queued: it will see this commit's work too
        except Exception:
            log.warning("could not queue %s; its periodic run will do the work", name)

    async def settle(self) -> None:
        """Wait for the defers in flight (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
