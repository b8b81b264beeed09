"""Subscription jobs in their own units of work (for the background jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from satshare.db import Database
from satshare.errors import InvalidRequest
from satshare.plans import service as plans
from satshare.subscriptions import reminders, repository, service
from satshare.subscriptions.service import Held, PurchaseOutlook


async def expire_due(db: Database, now: datetime) -> int:
    """Expire the subscriptions whose period has ended; how many."""
    async with db.transaction() as session:
        return await service.expire_due(session, now)


async def purchase_outlook(
    db: Database, user_id: int, plan_id: str, *, extra_days: int, now: datetime
) -> PurchaseOutlook:
    """What buying ``plan_id`` now would do to this user's subscriptions, with the plan's
    days plus ``extra_days`` (a promo code's, the referee bonus)."""
    async with db.reading() as session:
        plan = await plans.get(session, plan_id)
        if plan is None:
            raise InvalidRequest(f"unknown plan {plan_id!r}", field="subscription_type")
        held = []
        for subscription in await repository.active_of_user(session, user_id, now):
            held_plan = await plans.get(session, subscription.plan_id)
            assert held_plan is not None  # a subscription's plan is never deleted
            held.append(Held(subscription, held_plan))
    return service.purchase_outlook(held, plan, plan.duration_days + extra_days, now)


async def queue_reminders(db: Database, now: datetime, days: Sequence[int]) -> int:
    """Queue the expiry reminders due now; how many."""
    async with db.transaction() as session:
        return await reminders.queue_reminders(session, now, days)
