"""Free trials (#13): active at once with no invoice, once per person and plan (also after a
new registration with the same Telegram id), never any commission, and buying during a trial
extends from its end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from satshare.ledger.models import Entry
from satshare.users.models import User
from tests.conftest import PLANS, BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, buy, create_user, invoice_status, wait_until


@pytest.fixture
async def stack(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[Stack]:
    plans = [{**PLANS[0], "trial_days": 7}, PLANS[1]]
    running = await open_stack(database_url, btcpay, plans=plans)
    yield running
    await close_stack(running)


async def trial(client: httpx.AsyncClient, user_id: int, plan: str = "monthly") -> httpx.Response:
    return await client.post(
        "/api/v1/subscriptions",
        json={"user_id": user_id, "subscription_type": plan, "trial": True},
    )


def refused(response: httpx.Response, reason: str) -> None:
    problem = assert_problem(response, 422)
    assert problem["reason"] == reason and problem["field"] == "trial", problem


async def test_a_trial_once_with_no_invoice_and_no_commission(stack: Stack) -> None:
    client = stack.client
    affiliate = await create_user(client, "affiliate", external_id="100")
    buyer = await create_user(
        client, "buyer", external_id="200", referral_id=affiliate["referral_code"]
    )
    started = await trial(client, buyer["user_id"])
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    assert body["status"] == "active" and body["invoice"] is None
    ends = datetime.fromisoformat(body["ends_at"])
    now = stack.container.clock.now()
    assert timedelta(days=6, hours=23) < ends - now <= timedelta(days=7)
    async with stack.db.reading() as session:
        entries = (await session.execute(select(func.count()).select_from(Entry))).scalar_one()
    assert entries == 0  # no sale, no commission
    assert (await client.get(f"/api/v1/users/{affiliate['user_id']}")).json()["balance_sats"] == 0

    before = await stack.counts()
    refused(await trial(client, buyer["user_id"]), "used")
    refused(await trial(client, buyer["user_id"], plan="yearly"), "no_trial")
    problem = assert_problem(
        await client.post(
            "/api/v1/subscriptions",
            json={
                "user_id": buyer["user_id"],
                "subscription_type": "monthly",
                "trial": True,
                "promo_code": "X",
            },
        ),
        422,
    )
    assert "no promo_code" in problem["detail"]
    assert await stack.counts() == before

    # Buying during the trial: the paid month starts when the trial ends.
    order = await buy(client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"], method="BTC-LN")

    async def settled() -> bool:
        return await invoice_status(client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    sub = (await client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    assert datetime.fromisoformat(sub["ends_at"]) == ends + timedelta(days=30)
    # The commission is on the sale only.
    assert (await client.get(f"/api/v1/users/{affiliate['user_id']}")).json()[
        "balance_sats"
    ] == 25_000


async def test_no_second_trial_after_registering_again(stack: Stack) -> None:
    client = stack.client
    first = await create_user(client, "first", external_id="777")
    assert (await trial(client, first["user_id"])).status_code == 201
    # The first account goes (its Telegram id is freed) and the same person registers again.
    async with stack.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == first["user_id"]).values(external_id="gone-777")
        )
    again = await create_user(client, "again", external_id="777")
    refused(await trial(client, again["user_id"]), "used")
    other = await create_user(client, "other", external_id="778")
    assert (await trial(client, other["user_id"])).status_code == 201


async def test_a_trial_gets_the_reminder_and_expires_like_a_paid_period(database_url: str) -> None:
    from satshare.clock import FrozenClock
    from satshare.db import Database
    from satshare.notifications.models import OutboxMessage
    from satshare.plans import service as plans
    from satshare.subscriptions import reminders
    from satshare.subscriptions import service as subscriptions
    from satshare.subscriptions.models import SubscriptionStatus
    from satshare.trials import service as trials
    from satshare.users import service as users

    db, clock = Database(database_url), FrozenClock()
    try:
        async with db.transaction() as session:
            spec = plans.PlanSpec("monthly", "Monthly", "", 50_000, 30, (-100123,), trial_days=3)
            await plans.sync(session, [spec], clock.now())
            user = await users.register(
                session, users.Registration(platform="telegram", external_id="42"), clock.now()
            )
            subscription = await trials.start(session, user.id, "monthly", clock.now())
        clock.advance(timedelta(days=2, hours=1))
        async with db.transaction() as session:
            assert await reminders.queue_reminders(session, clock.now(), [1]) == 1
        clock.advance(timedelta(days=1))
        async with db.transaction() as session:
            assert await subscriptions.expire_due(session, clock.now()) == 1
            expired = await subscriptions.require(session, subscription.id)
            assert expired.status == SubscriptionStatus.EXPIRED
            kinds = (await session.execute(select(OutboxMessage.kind))).scalars().all()
        assert sorted(kinds) == ["subscription.expired", "subscription.reminder", "trial.started"]
    finally:
        await db.dispose()
