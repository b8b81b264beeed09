"""Background jobs: the reconciler settles what webhooks missed; expiry flips subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from procrastinate.testing import InMemoryConnector
from sqlalchemy import select

from satshare.clock import FrozenClock
from satshare.jobs import build_job_app
from satshare.notifications.models import OutboxMessage
from satshare.payments import flows
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import buy, create_user, invoice_status


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


async def test_reconcile_job_runs_on_procrastinate(stack: Stack) -> None:
    stack.btcpay.emulator.drop_webhooks = True
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    connector = InMemoryConnector()
    jobs = build_job_app(stack.container, connector)
    async with jobs.open_async():
        for task in jobs.periodic_tasks:  # type: ignore[attr-defined]
            await task.configure(queueing_lock=task.name).defer_async()
        await jobs.run_worker_async(wait=False, install_signal_handlers=False)
    assert await invoice_status(stack.client, order["subscription_id"]) == "settled"
    # Each periodic job queued its next run, once.
    queued = sorted(j["task_name"] for j in connector.jobs.values() if j["status"] == "todo")
    assert queued == [
        "satshare.deliver_webhooks",
        "satshare.expire_subscriptions",
        "satshare.housekeeping",
        "satshare.reconcile_invoices",
        "satshare.seal_ledger",
        "satshare.send_payouts",
    ]


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
    async with stack.db.transaction() as session:
        assert await subscriptions.expire_due(session, clock.now()) == 1
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
