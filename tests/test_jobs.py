"""Background jobs: the reconciler settles what webhooks missed; expiry flips subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import procrastinate
import pytest
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import select

from satshare.clock import FrozenClock
from satshare.jobqueue import JobName, cron_every, open_queue, register
from satshare.jobs import catalogue
from satshare.notifications.models import OutboxMessage
from satshare.payments import flows
from tests.conftest import PG_URL, BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import buy, create_user, expire_due_until, invoice_status


async def test_reconciler_settles_an_invoice_whose_webhook_never_came(stack: Stack) -> None:
    stack.btcpay.emulator.drop_webhooks = True
    aff = await create_user(stack.client, "aff")
    buyer = await create_user(stack.client, "buyer", referral_id=aff["user_id"])
    paid = await buy(stack.client, buyer["user_id"])
    unpaid = await buy(stack.client, buyer["user_id"], "yearly")
    await stack.btcpay.pay(paid["invoice"]["provider_invoice_id"])
    await stack.btcpay.emulator.wait_idle()
    assert await invoice_status(stack.client, paid["subscription_id"]) == "new"

    report = await flows.reconcile(stack.container.payments)
    assert report.checked == 2
    assert report.outcomes == {"settled": 1, "unchanged": 1}
    assert await invoice_status(stack.client, paid["subscription_id"]) == "settled"
    assert await invoice_status(stack.client, unpaid["subscription_id"]) == "new"
    user = (await stack.client.get(f"/api/v1/users/{aff['user_id']}")).json()
    assert user["balance_sats"] == 25_000
    again = await flows.reconcile(stack.container.payments)
    assert again.checked == 1  # the settled one is no longer polled


async def test_reconciler_reports_processor_outage_and_writes_nothing(stack: Stack) -> None:
    buyer = await create_user(stack.client, "buyer")
    await buy(stack.client, buyer["user_id"])
    stack.btcpay.emulator.api_down = True
    before = await stack.counts()
    report = await flows.reconcile(stack.container.payments)
    assert report.checked == 0
    assert len(report.errors) == 1 and "btcpay" in report.errors[0]
    assert await stack.counts() == before


async def test_the_catalogue_sweeps_what_webhooks_missed(stack: Stack) -> None:
    stack.btcpay.emulator.drop_webhooks = True
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    jobs = catalogue(stack.container, None)
    assert [job.name for job in jobs] == [
        "satshare.reconcile_invoices",
        "satshare.expire_subscriptions",
        "satshare.seal_ledger",
        "satshare.send_payouts",
        "satshare.housekeeping",
        "satshare.deliver_webhooks",
    ]
    for job in jobs:
        await job.run()
    assert await invoice_status(stack.client, order["subscription_id"]) == "settled"


@pytest.mark.skipif(PG_URL is None, reason="the job queue is PostgreSQL's")
async def test_jobs_run_on_the_postgresql_queue_and_bursts_coalesce(stack: Stack) -> None:
    stack.btcpay.emulator.drop_webhooks = True
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    app = stack.container.job_queue
    assert app is not None
    register(app, catalogue(stack.container, None))
    async with app.open_async():
        deferrer = app.configure_task(
            JobName.RECONCILE_INVOICES,
            queueing_lock=JobName.RECONCILE_INVOICES,
            task_kwargs={"timestamp": 0},
        )
        await deferrer.defer_async()
        with pytest.raises(AlreadyEnqueued):  # a burst queues one run
            await deferrer.defer_async()
        await app.run_worker_async(
            wait=False, install_signal_handlers=False, delete_jobs="always", listen_notify=False
        )
    assert await invoice_status(stack.client, order["subscription_id"]) == "settled"


@pytest.mark.skipif(PG_URL is None, reason="the job queue is PostgreSQL's")
@pytest.mark.slow
async def test_a_periodic_job_runs_once_per_tick_across_workers(database_url: str) -> None:
    """Two workers (two queue apps, as in two processes) on one database: every tick of a
    one-second periodic job runs exactly once."""
    ticks: list[int] = []
    enough = asyncio.Event()

    def worker_app() -> procrastinate.App:
        app = open_queue(database_url)

        @app.periodic(cron=cron_every(1), periodic_id="sweep")
        @app.task(name="test.tick", queue="upkeep", queueing_lock="test.tick")
        async def tick(timestamp: int) -> None:
            ticks.append(timestamp)
            if len(set(ticks)) >= 4:
                enough.set()

        return app

    first, second = worker_app(), worker_app()
    async with first.open_async(), second.open_async():
        workers = [
            asyncio.create_task(
                app.run_worker_async(install_signal_handlers=False, delete_jobs="always")
            )
            for app in (first, second)
        ]
        await asyncio.wait_for(enough.wait(), 60)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    assert len(ticks) == len(set(ticks))  # no tick ran twice


def test_periods_become_regular_cron_steps() -> None:
    assert cron_every(5) == "* * * * * */5"
    assert cron_every(45) == "* * * * * */30"
    assert cron_every(60) == "*/1 * * * *"
    assert cron_every(90) == "*/1 * * * *"
    assert cron_every(600) == "*/10 * * * *"
    assert cron_every(3600) == "0 */1 * * *"
    assert cron_every(7 * 3600) == "0 */6 * * *"
    assert cron_every(86_400 * 2) == "0 0 * * *"


@pytest.fixture
async def clocked(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[tuple[Stack, FrozenClock]]:
    clock = FrozenClock(datetime.now(UTC))
    running = await open_stack(database_url, btcpay, clock=clock)
    yield running, clock
    await close_stack(running)


async def test_expiry_then_renewal_starts_from_now(clocked: tuple[Stack, FrozenClock]) -> None:
    from satshare.subscriptions import service as subscriptions

    stack, clock = clocked
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    await flows.reconcile(stack.container.payments)
    sub_path = f"/api/v1/subscriptions/{order['subscription_id']}"
    assert (await stack.client.get(sub_path)).json()["status"] == "active"

    clock.advance(timedelta(days=31))
    # Even before the job runs, the API tells the truth.
    assert (await stack.client.get(sub_path)).json()["status"] == "expired"
    await expire_due_until(stack.db, clock.now(), expected=1)
    async with stack.db.transaction() as session:
        assert await subscriptions.expire_due(session, clock.now()) == 0
    async with stack.db.reading() as session:
        notices = (
            (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.kind == "subscription.expired")
                )
            )
            .scalars()
            .all()
        )
    assert len(notices) == 1
    listed = (await stack.client.get("/api/v1/subscriptions", params={"status": "expired"})).json()
    assert [s["subscription_id"] for s in listed["items"]] == [order["subscription_id"]]

    renewal = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(renewal["invoice"]["provider_invoice_id"])
    await flows.reconcile(stack.container.payments)
    sub = (await stack.client.get(sub_path)).json()
    assert sub["status"] == "active"
    assert datetime.fromisoformat(sub["ends_at"]) == clock.now() + timedelta(days=30)


async def test_invoice_the_processor_forgot_is_retired(stack: Stack) -> None:
    """A sandbox restart (or a deleted BTCPay invoice): stop polling it, tell the admins."""
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    del stack.btcpay.emulator.invoices[order["invoice"]["provider_invoice_id"]]
    report = await flows.reconcile(stack.container.payments)
    assert report.outcomes == {"updated": 1}
    assert await invoice_status(stack.client, order["subscription_id"]) == "invalid"
    assert (await flows.reconcile(stack.container.payments)).checked == 0
    async with stack.db.reading() as session:
        kinds = (await session.execute(select(OutboxMessage.kind))).scalars().all()
    assert "admin.invoice_gone" in kinds


@pytest.mark.skipif(PG_URL is None, reason="the job queue is PostgreSQL's")
async def test_a_killed_workers_job_goes_back_to_the_queue(database_url: str) -> None:
    from sqlalchemy import text

    from satshare.db import Database
    from satshare.jobqueue import Job, Queue

    runs: list[str] = []

    async def seal() -> None:
        runs.append("sealed")

    app = open_queue(database_url)
    register(app, [Job(JobName.SEAL_LEDGER, Queue.MONEY, 5, seal)])
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM procrastinate_jobs"))
            # A worker that stopped sending heartbeats ten minutes ago, in the middle of a job.
            worker = await conn.scalar(
                text(
                    "INSERT INTO procrastinate_workers (last_heartbeat) "
                    "VALUES (now() - interval '10 minutes') RETURNING id"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, "
                    "worker_id) VALUES ('money', :name, '{\"timestamp\": 0}', 'doing', :worker)"
                ),
                {"name": JobName.SEAL_LEDGER.value, "worker": worker},
            )
        async with app.open_async():
            await app.configure_task(
                "satshare.retry_stalled_jobs", task_kwargs={"timestamp": 0}
            ).defer_async()
            await app.run_worker_async(
                wait=False, install_signal_handlers=False, delete_jobs="always", listen_notify=False
            )
        async with db.engine.connect() as conn:
            doing = await conn.scalar(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'")
            )
        # Requeued and run by a live worker (the periodic tick may have run it once more).
        assert doing == 0 and runs and set(runs) == {"sealed"}
    finally:
        await db.dispose()
