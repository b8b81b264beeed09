"""Expiry reminders: which active subscriptions are due a reminder now, queued in the outbox.

Layering: subscriptions sits above users and the outbox (``satshare.notifications``) and below
affiliates, payments, payouts, access and reports; it imports only the outbox, the kernel and
itself (the order is stated in ``tests/test_architecture.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.notifications.messages import SubscriptionReminder
from satshare.notifications.service import Queued, enqueue_all
from satshare.subscriptions import repository


def reminder_day(
    ends_at: datetime, started_at: datetime | None, now: datetime, days: Sequence[int]
) -> int | None:
    """The reminder due now: the smallest configured day count the time left has reached,
    skipped when the paid period was never that long (a 1-day plan gets no 3-day notice)."""
    left = ends_at - now
    if left <= timedelta(0):
        return None
    reached = [d for d in days if left <= timedelta(days=d)]
    if not reached:
        return None
    day = min(reached)
    if started_at is not None and ends_at - started_at <= timedelta(days=day):
        return None
    return day


async def queue_reminders(session: AsyncSession, now: datetime, days: Sequence[int]) -> int:
    """Queue the expiry reminders due now; each (subscription, period end, day) once."""
    if not days:
        return 0
    horizon = now + timedelta(days=max(days))
    due: list[Queued] = []
    for subscription in await repository.active_ending_between(session, now, horizon):
        assert subscription.ends_at is not None
        day = reminder_day(subscription.ends_at, subscription.started_at, now, days)
        if day is None:
            continue
        due.append(
            Queued(
                SubscriptionReminder(
                    subscription_id=subscription.id,
                    plan_id=subscription.plan_id,
                    days=day,
                    ends_at=subscription.ends_at,
                ),
                dedupe_key=(
                    f"subscription:{subscription.id}:reminder:{day}:"
                    f"{subscription.ends_at.isoformat()}"
                ),
                user_id=subscription.user_id,
            )
        )
    # One statement for them all (a first start on a big database has thousands due, #15).
    return await enqueue_all(session, due, now)
