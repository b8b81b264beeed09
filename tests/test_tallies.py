"""The dashboard's tallies (#15): the subscriptions active now, their subscribers and the
MRR's sums, the payouts per state and the subscriptions whose paid time ended in a period
equal the counts over the rows themselves after every kind of change — a sale, a second
plan, a trial, an admin's extension, cancel and re-activation, a refund, time passing, the
expiry job, and each payout state — before and after the queued changes are folded; and
``satshare figures check`` names a tally that differs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from satshare.clock import FrozenClock
from satshare.payouts.models import PayoutStatus
from satshare.reports import dashboard as dashboards
from satshare.reports import flows as report_flows
from satshare.reports import repository as reports_repo
from satshare.reports.recompute import check
from satshare.subscriptions import flows as subscription_flows
from satshare.subscriptions import service as subscriptions
from satshare.tallies import flows as tally_flows
from satshare.tallies.models import Tally, TallyChange
from tests.conftest import PLANS, BTCPaySim, Stack, close_stack
from tests.helpers import buy, create_user, invoice_status, wait_until
from tests.historykit import sale
from tests.lightningkit import Lightning
from tests.payoutkit import affiliate, open_payout_stack, payout, settle_payouts

START = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
async def clocked(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Stack, FrozenClock]]:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    clock = FrozenClock(START)
    running = await open_payout_stack(
        database_url,
        btcpay,
        lightning,
        clock=clock,
        plans=[{**PLANS[0], "trial_days": 7}, PLANS[1]],
        payouts={"auto_approve_max_sats": 10_000},
    )
    yield running, clock
    await close_stack(running)


async def _agree(stack: Stack, clock: FrozenClock) -> dashboards.Dashboard:
    """The tallies (with queued changes, then folded) against the counts over the rows, and
    the whole figures check; returns the dashboard of the last 30 days."""
    now = clock.now()
    start, end = dashboards.period("30d", now)
    await stack.container.sealer.flush()  # the figures check's windows roll to today
    for fold in (False, True):
        if fold:
            await tally_flows.fold(stack.db)
        data = await report_flows.panel_dashboard(stack.db, start, end, now)
        async with stack.db.reading() as session:
            active = await reports_repo.active(session, now)
            assert (data.active_subscriptions, data.active_subscribers) == (
                active.subscriptions,
                active.subscribers,
            )
            assert data.mrr_sats == dashboards.mrr(active.paid_per_plan_days)
            assert data.payouts == await reports_repo.payouts_by_status(session)
            assert data.churned == await reports_repo.churned(session, start, end, now)
            report = await check(session, now, months=False)
        assert report.ok, report.differences
    async with stack.db.reading() as session:
        assert not (await session.execute(TallyChange.__table__.select())).all()
    return data


async def _paid(stack: Stack, user_id: int, plan: str = "monthly") -> int:
    order = await buy(stack.client, user_id, plan)
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    return int(order["subscription_id"])


async def test_tallies_equal_the_counts_after_every_kind_of_change(
    clocked: tuple[Stack, FrozenClock], lightning: Lightning
) -> None:
    stack, clock = clocked
    client = stack.client
    alice = await affiliate(stack)
    refunded = await sale(stack, lightning, alice)  # settlement: a first subscriber
    await sale(stack, lightning, alice)
    seen = await _agree(stack, clock)
    assert (seen.active_subscriptions, seen.active_subscribers) == (2, 2)
    assert seen.mrr_sats == 100_000

    # A second plan for the same user: one more subscription, not one more subscriber.
    buyer = await create_user(client, "both")
    monthly = await _paid(stack, buyer["user_id"])
    await _paid(stack, buyer["user_id"], "yearly")
    seen = await _agree(stack, clock)
    assert (seen.active_subscriptions, seen.active_subscribers) == (4, 3)

    # A trial: active, no payment (nothing for the MRR).
    tried = await create_user(client, "tried")
    started = await client.post(
        "/api/v1/subscriptions",
        json={"user_id": tried["user_id"], "subscription_type": "monthly", "trial": True},
    )
    assert started.status_code == 201, started.text
    trial_id = int(started.json()["subscription_id"])
    mrr = seen.mrr_sats
    seen = await _agree(stack, clock)
    assert (seen.active_subscriptions, seen.active_subscribers, seen.mrr_sats) == (5, 4, mrr)

    # An admin extends the trial, cancels it, re-activates it.
    async with stack.db.transaction() as session:
        await subscriptions.grant_days(session, trial_id, 30, clock.now())
    await _agree(stack, clock)
    for status, active in (("canceled", 4), ("active", 5)):
        changed = await client.put(f"/api/v1/subscriptions/{trial_id}", json={"status": status})
        assert changed.status_code == 200, changed.text
        assert (await _agree(stack, clock)).active_subscriptions == active

    # A refund takes the month back: that subscription's paid time ends now (and has ended
    # in the period a moment later).
    assert (await client.post(f"/api/v1/invoices/{refunded}/refund", json={})).is_success
    seen = await _agree(stack, clock)
    assert (seen.active_subscriptions, seen.churned) == (4, 0)
    clock.advance(timedelta(seconds=1))
    assert (await _agree(stack, clock)).churned == 1

    # Payouts in every state: awaiting approval then canceled, approved and paid, failed.
    canceled = await client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 12_000, "destination": lightning.address("a")},
    )
    assert canceled.json()["status"] == "awaiting_approval", canceled.text
    await _agree(stack, clock)
    await client.post(f"/api/v1/payouts/{canceled.json()['payout_id']}/cancel")
    waiting = await client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("a")},
    )
    await client.post(f"/api/v1/payouts/{waiting.json()['payout_id']}/approve")
    await settle_payouts(stack)
    assert (await payout(client, waiting.json()["payout_id"]))["status"] == "paid"
    await _agree(stack, clock)
    lightning.lnbits.fail_payments = True
    failed = await client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 3_000, "destination": lightning.address("a")},
    )
    await settle_payouts(stack)
    assert (await payout(client, failed.json()["payout_id"]))["status"] == "failed"
    seen = await _agree(stack, clock)
    assert seen.payouts == {
        PayoutStatus.PAID: (1, 20_000),
        PayoutStatus.CANCELED: (1, 12_000),
        PayoutStatus.FAILED: (1, 3_000),
    }

    # Time passes: the months run out before the expiry job marks them (read as ended).
    clock.advance(timedelta(days=31))
    seen = await _agree(stack, clock)
    assert (seen.active_subscriptions, seen.active_subscribers) == (2, 2)  # yearly, trial
    # Ended in the last 30 days: alice's second buyer's month and the "both" buyer's (the
    # refunded one ended 31 days ago).
    assert seen.churned == 2
    assert await subscription_flows.expire_due(stack.db, clock.now()) == 2  # (refund: expired)
    assert (await _agree(stack, clock)).active_subscriptions == 2
    # A renewal after the end: active again, and no longer churned in the period.
    await _paid(stack, buyer["user_id"])
    seen = await _agree(stack, clock)
    assert (seen.active_subscriptions, seen.active_subscribers) == (3, 2)
    assert seen.churned == 1
    async with stack.db.reading() as session:
        sub = await subscriptions.require(session, monthly)
        assert sub.ends_at is not None and sub.ends_at > clock.now()


async def test_the_check_names_a_tally_that_differs_and_the_rebuild_mends_it(
    clocked: tuple[Stack, FrozenClock], lightning: Lightning
) -> None:
    stack, clock = clocked
    await sale(stack, lightning, None)
    await _agree(stack, clock)
    async with stack.db.transaction() as session:
        await session.execute(
            update(Tally).where(Tally.key == "active:monthly").values(count=Tally.count + 1)
        )
    async with stack.db.reading() as session:
        report = await check(session, clock.now(), months=False)
    assert [d for d in report.differences if "active subscriptions" in d], report.differences
    await report_flows.rebuild_tallies(stack.db)
    await _agree(stack, clock)
