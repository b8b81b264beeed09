"""Background jobs on procrastinate.

State lives in domain tables (invoice status, outbox rows, subscription ends); each job
only advances those state machines, so a lost in-memory job loses nothing. Periodic jobs
reschedule themselves after each run under a queueing lock, which keeps them single-flight
even when several processes share one PostgreSQL job queue.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.testing import InMemoryConnector

from satshare.container import Container
from satshare.idempotency import repository as idempotency
from satshare.payments import flows
from satshare.subscriptions import service as subscriptions

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
HOUSEKEEPING_INTERVAL_SECONDS = 3600
#: Writers kick the sealer right after commit; this run catches other processes and crashes.
SEAL_INTERVAL_SECONDS = 5


def build_job_app(
    container: Container, connector: procrastinate.BaseConnector | None = None
) -> procrastinate.App:
    # On SQLite (one process) the in-memory connector is enough: jobs carry no state.
    app = procrastinate.App(connector=connector or InMemoryConnector())
    reconcile_every = container.settings.payments.reconcile_interval_seconds

    async def again(task: procrastinate.tasks.Task, seconds: int) -> None:  # type: ignore[type-arg]
        # AlreadyEnqueued: another process already queued the next run.
        with contextlib.suppress(AlreadyEnqueued):
            await task.configure(
                schedule_in={"seconds": seconds}, queueing_lock=task.name
            ).defer_async()

    @app.task(name="satshare.reconcile_invoices")
    async def reconcile_invoices() -> None:
        try:
            report = await flows.reconcile(container.payments)
            if report.checked or report.errors:
                log.info("reconciled invoices: %s", report.as_json())
        finally:
            await again(reconcile_invoices, reconcile_every)

    @app.task(name="satshare.expire_subscriptions")
    async def expire_subscriptions() -> None:
        try:
            async with container.db.transaction() as session:
                count = await subscriptions.expire_due(session, container.clock.now())
            if count:
                log.info("expired %d subscriptions", count)
        finally:
            await again(expire_subscriptions, reconcile_every)

    @app.task(name="satshare.seal_ledger")
    async def seal_ledger() -> None:
        try:
            await container.sealer.seal_all()
        finally:
            await again(seal_ledger, SEAL_INTERVAL_SECONDS)

    @app.task(name="satshare.housekeeping")
    async def housekeeping() -> None:
        try:
            async with container.db.transaction() as session:
                await idempotency.purge_older_than(session, container.clock.now() - IDEMPOTENCY_TTL)
        finally:
            await again(housekeeping, HOUSEKEEPING_INTERVAL_SECONDS)

    app.periodic_tasks = (reconcile_invoices, expire_subscriptions, seal_ledger, housekeeping)  # type: ignore[attr-defined]
    return app


async def run_jobs(app: procrastinate.App) -> None:
    """Seed the periodic jobs and work until cancelled."""
    async with app.open_async():
        for task in app.periodic_tasks:  # type: ignore[attr-defined]
            with contextlib.suppress(AlreadyEnqueued):
                await task.configure(queueing_lock=task.name).defer_async()
        await app.run_worker_async(
            concurrency=4,
            wait=True,
            install_signal_handlers=False,
            fetch_job_polling_interval=1.0,
            delete_jobs="always",
        )
