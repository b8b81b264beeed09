"""The invoice reconciler reaches every open invoice in bounded time, whatever the backlog
(issue: it re-checked only the 500 oldest, so with 510 unpaid invoices open a newer paid one
whose webhook was lost stayed unpaid)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from satshare.payments import flows
from satshare.payments.models import Invoice
from tests.conftest import STORE_ID, Stack
from tests.helpers import buy, create_user, invoice_status

# Proportions as in the report (a backlog several batches deep, three expired invoices to
# every open one); small enough that the 40 runs re-fetch 800 invoices, not 4,000.
BACKLOG_EXPIRED = 300
BACKLOG_OPEN = 100
BATCH = 20


async def _backlog(stack: Stack, template: dict[str, object]) -> None:
    """Thousands of invoices the emulator knows: expired ones still inside the late-payment
    window, and open unpaid ones, all older than the buyer's."""
    emulator = stack.btcpay.emulator
    now = datetime.now(UTC)
    rows = []
    for n in range(BACKLOG_EXPIRED + BACKLOG_OPEN):
        expired = n < BACKLOG_EXPIRED
        remote = emulator.create_invoice(
            STORE_ID,
            {"amount": "50000", "currency": "SATS", "checkout": {"paymentMethods": ["BTC-CHAIN"]}},
        )
        if expired:
            emulator.expire(remote)
        created = now - timedelta(hours=2, seconds=n)
        rows.append(
            {
                **template,
                "id": f"inv_backlog_{n:05d}",
                "provider_invoice_id": remote.id,
                "status": "expired" if expired else "new",
                "provider_status": "Expired" if expired else "New",
                "address": remote.address,
                "expires_at": now - timedelta(minutes=30) if expired else now + timedelta(hours=1),
                "created_at": created,
                "updated_at": created,
            }
        )
    async with stack.db.transaction() as session:
        await session.execute(insert(Invoice), rows)


@pytest.mark.slow
async def test_a_paid_invoice_is_found_first_and_every_invoice_in_bounded_runs(
    stack: Stack,
) -> None:
    ctx = stack.container.payments
    ctx.reconcile_batch = BATCH
    user = await create_user(stack.client, "buyer")
    first = await buy(stack.client, user["user_id"])
    async with stack.db.reading() as session:
        model = await session.get(Invoice, first["invoice"]["id"])
        assert model is not None
        template = {
            c: getattr(model, c)
            for c in ("provider", "subscription_id", "user_id", "plan_id", "amount_sats")
        }
    await _backlog(stack, {**template, "paid_sats": 0})
    # The buyer pays; the webhook is lost.
    stack.btcpay.emulator.drop_webhooks = True
    await stack.btcpay.pay(first["invoice"]["provider_invoice_id"])
    report = await flows.reconcile(ctx)
    assert report.checked == BATCH
    assert await invoice_status(stack.client, first["subscription_id"]) == "settled"

    # Every invoice of the backlog is re-fetched within ceil(open / half a batch) runs, and
    # the expired ones are then left alone until ctx.recheck_expired has passed.
    total = BACKLOG_EXPIRED + BACKLOG_OPEN
    runs = math.ceil(total / (BATCH // 2))
    for _ in range(runs):
        await flows.reconcile(ctx)
    async with stack.db.reading() as session:
        never = await session.scalar(
            select(func.count()).select_from(Invoice).where(Invoice.next_check_at.is_(None))
        )
        expired_later = await session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(Invoice.status == "expired", Invoice.next_check_at > datetime.now(UTC))
        )
    assert never == 0
    assert expired_later == BACKLOG_EXPIRED
    # With the expired ones scheduled for later, a run takes only what can still be paid.
    assert (await flows.reconcile(ctx)).checked == min(BATCH, BACKLOG_OPEN)
