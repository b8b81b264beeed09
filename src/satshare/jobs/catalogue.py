"""The job catalogue: every background job SatShare runs, once, whatever runs it.

A job advances state that lives in domain rows (open invoices, outbox rows, approved
payouts, subscription ends), so it may be killed at any point and run again: claims expire
and nothing is sent twice. The same catalogue runs on procrastinate's PostgreSQL queue
(``queue.py``: shared by every process, each periodic job once per period) or in-process
(``inline.py``: SQLite, one process).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from satshare import metrics
from satshare.aftercommit import Produced
from satshare.bot import repository as bot_repository
from satshare.container import Container
from satshare.idempotency import flows as idempotency
from satshare.jobqueue import Job, JobName, Queue
from satshare.notifications import flows as outbox
from satshare.payments import flows
from satshare.ratelimits import flows as rate_limits
from satshare.subscriptions import flows as subscription_flows
from satshare.tallies import flows as tally_flows
from satshare.webhooks_out import flows as webhook_flows

if TYPE_CHECKING:
    # The bot's modules load python-telegram-bot: imported where a bot exists (#15).
    from satshare.bot.dispatcher import OutboxDispatcher
    from satshare.bot.runtime import BotRuntime

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
#: Telegram keeps an undelivered update for 24 hours; remembering ids for 48 is enough.
UPDATE_ID_TTL = timedelta(hours=48)
#: Seconds between runs of the webhook delivery sweep (retries come due, other processes).
WEBHOOK_INTERVAL_SECONDS = 5
#: How soon a scheduled broadcast is picked up once due, and one left by a dead sender
#: resumed (one sent now wakes its job at once, after the commit).
BROADCAST_INTERVAL_SECONDS = 5


@dataclass(frozen=True, slots=True)
class BotJobs:
    """The bot's part: its sender (outbox) and client (member removal)."""

    runtime: BotRuntime
    dispatcher: OutboxDispatcher


def catalogue(container: Container, bot: BotJobs | None) -> tuple[Job, ...]:
    """Every job for this process; the bot's only where a bot client exists. Each run is
    timed and counted (succeeded/failed) in /metrics, whichever runner runs it."""
    settings = container.settings
    every_reconcile = settings.payments.reconcile_interval_seconds

    async def reconcile_invoices() -> None:
        report = await flows.reconcile(container.payments)
        if report.checked or report.errors:
            log.info("reconciled invoices: %s", report.as_json())

    async def expire_subscriptions() -> None:
        count = await subscription_flows.expire_due(container.db, container.clock.now())
        if count:
            log.info("expired %d subscriptions", count)
            container.after_commit.committed(Produced(outbox=True))
        # The dashboard's tallies: the changes queued since the last run, added up.
        await tally_flows.fold(container.db)

    async def seal_ledger() -> None:
        await container.sealer.seal_all()

    async def send_payouts() -> None:
        # Approved payouts are usually sent at once (woken on approval); this run catches
        # the rest and asks providers about payouts left unknown.
        await container.payout_runner.flush()

    async def housekeeping() -> None:
        now = container.clock.now()
        await idempotency.purge_older_than(container.db, now - IDEMPOTENCY_TTL)
        await bot_repository.purge(container.db, now - UPDATE_ID_TTL)
        # Rate-limit windows that ended (counters in the database, #14).
        await rate_limits.purge_expired(container.db, now.timestamp())
        # Messages sent long enough ago: the outbox keeps what is still to do (#15).
        retention = settings.notifications.outbox_retention
        purged = await outbox.purge_delivered(container.db, now - retention)
        if purged:
            log.info("purged %d outbox messages sent before %s", purged, now - retention)
        # Outgoing-webhook messages whose deliveries are all done, with their delivery log.
        kept_since = now - timedelta(days=settings.webhooks.keep_days)
        purged = await webhook_flows.purge_finished(container.db, kept_since)
        if purged:
            log.info("purged %d webhook messages created before %s", purged, kept_since)

    async def deliver_webhooks() -> None:
        # Commits that record events wake delivery at once; this run sends the retries that
        # came due and catches events recorded by another process (#14).
        if container.webhook_runner is not None:
            await container.webhook_runner.flush()

    jobs = [
        Job(JobName.RECONCILE_INVOICES, Queue.MONEY, every_reconcile, reconcile_invoices),
        Job(JobName.EXPIRE_SUBSCRIPTIONS, Queue.UPKEEP, every_reconcile, expire_subscriptions),
        Job(JobName.SEAL_LEDGER, Queue.MONEY, 5, seal_ledger),
        Job(JobName.SEND_PAYOUTS, Queue.MONEY, settings.payouts.interval_seconds, send_payouts),
        Job(JobName.HOUSEKEEPING, Queue.UPKEEP, 3600, housekeeping),
        Job(JobName.DELIVER_WEBHOOKS, Queue.WEBHOOKS, WEBHOOK_INTERVAL_SECONDS, deliver_webhooks),
    ]
    if bot is not None:
        jobs += _bot_jobs(container, bot)
    return tuple(measured(job) for job in jobs)


def measured(job: Job) -> Job:
    """The job with each run in ``satshare_job_runs_total`` and ``..._duration_seconds``
    (label: its name without ``satshare.``); a failure is counted and raised on."""
    work = job.run
    task = job.name.removeprefix("satshare.")

    async def run() -> None:
        with metrics.job_run(task):
            await work()

    return replace(job, run=run)


def _bot_jobs(container: Container, bot: BotJobs) -> list[Job]:
    from satshare.bot import removal
    from satshare.bot.broadcasts import BroadcastSender

    settings = container.settings

    async def send_notifications() -> None:
        await bot.dispatcher.flush()

    async def queue_reminders() -> None:
        queued = await subscription_flows.queue_reminders(
            container.db, container.clock.now(), settings.notifications.reminder_days
        )
        if queued:
            container.after_commit.committed(Produced(outbox=True))

    async def remove_expired_members() -> None:
        report = await removal.remove_expired_members(bot.runtime, bot.runtime.application.bot)
        if report.removed or report.would_remove or report.errors:
            log.info(
                "access removal: %d removed, %d in dry run, errors: %s",
                report.removed,
                len(report.would_remove),
                report.errors,
            )

    broadcaster = BroadcastSender(container.db, container.clock, bot.runtime.application.bot)

    async def send_broadcasts() -> None:
        # Runs for as long as the due broadcasts take; the lease keeps one sender on each.
        for delivery in await broadcaster.run_due():
            if delivery.held:
                log.info("broadcast delivery: %s", delivery)

    return [
        Job(JobName.SEND_NOTIFICATIONS, Queue.TELEGRAM, 5, send_notifications),
        Job(JobName.QUEUE_REMINDERS, Queue.TELEGRAM, 600, queue_reminders),
        Job(
            JobName.REMOVE_EXPIRED_MEMBERS,
            Queue.TELEGRAM,
            settings.payments.reconcile_interval_seconds,
            remove_expired_members,
        ),
        Job(
            JobName.SEND_BROADCASTS,
            Queue.TELEGRAM,
            BROADCAST_INTERVAL_SECONDS,
            send_broadcasts,
            # A broadcast sent (API, CLI) starts at once; the period picks up scheduled ones.
            woken=container.after_commit.broadcasts.wait,
        ),
    ]
