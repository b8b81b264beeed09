"""Background jobs on procrastinate.

State lives in domain tables (invoice status, outbox rows, subscription ends); each job
only advances those state machines, so a lost in-memory job loses nothing. Periodic jobs
reschedule themselves after each run under a queueing lock, which keeps them single-flight
even when several processes share one PostgreSQL job queue.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.testing import InMemoryConnector

from satshare.aftercommit import Produced
from satshare.bot import removal
from satshare.bot import repository as bot_repository
from satshare.bot.broadcasts import BroadcastSender
from satshare.bot.dispatcher import OutboxDispatcher
from satshare.bot.runtime import BotRuntime
from satshare.container import Container
from satshare.idempotency import repository as idempotency
from satshare.payments import flows
from satshare.subscriptions import reminders
from satshare.subscriptions import service as subscriptions

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
HOUSEKEEPING_INTERVAL_SECONDS = 3600
SEND_INTERVAL_SECONDS = 5
REMINDER_INTERVAL_SECONDS = 600
#: Telegram keeps an undelivered update for 24 hours; remembering ids for 48 is enough.
UPDATE_ID_TTL = timedelta(hours=48)
#: Writers kick the sealer right after commit; this run catches other processes and crashes.
SEAL_INTERVAL_SECONDS = 5
#: How soon a broadcast sent (or due) is picked up, and one left by a dead sender resumed.
BROADCAST_INTERVAL_SECONDS = 5


@dataclass
class BotJobs:
    runtime: BotRuntime
    dispatcher: OutboxDispatcher


def build_job_app(
    container: Container,
    connector: procrastinate.BaseConnector | None = None,
    bot: BotJobs | None = None,
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
                container.after_commit.committed(Produced(outbox=True))
        finally:
            await again(expire_subscriptions, reconcile_every)

    @app.task(name="satshare.seal_ledger")
    async def seal_ledger() -> None:
        try:
            await container.sealer.seal_all()
        finally:
            await again(seal_ledger, SEAL_INTERVAL_SECONDS)

    @app.task(name="satshare.send_payouts")
    async def send_payouts() -> None:
        # Approved payouts are usually sent at once (the runner is kicked on approval);
        # this run catches the rest and asks providers about payouts left unknown.
        try:
            await container.payout_runner.flush()
        finally:
            await again(send_payouts, container.settings.payouts.interval_seconds)

    @app.task(name="satshare.housekeeping")
    async def housekeeping() -> None:
        try:
            now = container.clock.now()
            async with container.db.transaction() as session:
                await idempotency.purge_older_than(session, now - IDEMPOTENCY_TTL)
                await bot_repository.purge_processed_updates(session, now - UPDATE_ID_TTL)
        finally:
            await again(housekeeping, HOUSEKEEPING_INTERVAL_SECONDS)

    periodic: list[procrastinate.tasks.Task] = [  # type: ignore[type-arg]
        reconcile_invoices,
        expire_subscriptions,
        seal_ledger,
        send_payouts,
        housekeeping,
    ]
    if bot is not None:
        periodic += _bot_tasks(app, container, bot, again)
    app.periodic_tasks = tuple(periodic)  # type: ignore[attr-defined]
    return app


def _bot_tasks(
    app: procrastinate.App,
    container: Container,
    bot: BotJobs,
    again: Callable[..., Awaitable[None]],
) -> list[procrastinate.tasks.Task]:  # type: ignore[type-arg]
    @app.task(name="satshare.send_notifications")
    async def send_notifications() -> None:
        try:
            await bot.dispatcher.dispatch_all()
        finally:
            await again(send_notifications, SEND_INTERVAL_SECONDS)

    @app.task(name="satshare.queue_reminders")
    async def queue_reminders() -> None:
        try:
            async with container.db.transaction() as session:
                queued = await reminders.queue_reminders(
                    session, container.clock.now(), container.settings.notifications.reminder_days
                )
            if queued:
                bot.dispatcher.kick()
        finally:
            await again(queue_reminders, REMINDER_INTERVAL_SECONDS)

    @app.task(name="satshare.remove_expired_members")
    async def remove_expired_members() -> None:
        try:
            report = await removal.remove_expired_members(bot.runtime, bot.runtime.application.bot)
            if report.removed or report.would_remove or report.errors:
                log.info(
                    "access removal: %d removed, %d in dry run, errors: %s",
                    report.removed,
                    len(report.would_remove),
                    report.errors,
                )
        finally:
            await again(
                remove_expired_members, container.settings.payments.reconcile_interval_seconds
            )

    broadcaster = BroadcastSender(container.db, container.clock, bot.runtime.application.bot)

    @app.task(name="satshare.send_broadcasts")
    async def send_broadcasts() -> None:
        # Runs for as long as the due broadcasts take; the lease keeps one sender on each.
        try:
            for delivery in await broadcaster.run_due():
                if delivery.held:
                    log.info("broadcast delivery: %s", delivery)
        finally:
            await again(send_broadcasts, BROADCAST_INTERVAL_SECONDS)

    return [send_notifications, queue_reminders, remove_expired_members, send_broadcasts]


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
