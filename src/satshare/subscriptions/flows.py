"""Subscription use cases in their own units of work: the jobs' expiry and reminders, and
an admin's changes to one user's subscription (each with its audit row in the same
transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from satshare.aftercommit import CommitListener, Produced
from satshare.audit.flows import Actor, audited
from satshare.db import Database
from satshare.errors import InvalidRequest
from satshare.plans import service as plans
from satshare.subscriptions import reminders, repository, service
from satshare.subscriptions.models import Subscription, SubscriptionStatus
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


def _facts(subscription: Subscription) -> dict[str, object]:
    return {"status": subscription.status.value, "ends_at": subscription.ends_at}


async def resend_access(
    db: Database,
    after_commit: CommitListener,
    by: Actor,
    *,
    user_id: int,
    subscription_id: int,
    reason: str,
    now: datetime,
) -> None:
    """Queue the channel links to the subscriber again (only while the subscription is
    active); the message sender is woken once it has committed."""
    target = f"subscription:{subscription_id}"
    async with audited(
        db, by, "subscription.resend_access", target, now=now, reason=reason
    ) as work:
        await service.require_of_user(work.session, subscription_id, user_id)
        await service.resend_access(work.session, subscription_id, now)
    after_commit.committed(Produced(outbox=True))


async def extend(
    db: Database,
    by: Actor,
    *,
    user_id: int,
    subscription_id: int,
    days: int,
    reason: str,
    now: datetime,
) -> Subscription:
    """Days given without a payment (nothing goes to the ledger)."""
    target = f"subscription:{subscription_id}"
    async with audited(db, by, "subscription.extend", target, now=now, reason=reason) as work:
        found = await service.require_of_user(work.session, subscription_id, user_id)
        work.before = _facts(found)
        changed = await service.grant_days(work.session, subscription_id, days, now)
        work.after = _facts(changed)
        return changed


async def cancel(
    db: Database, by: Actor, *, user_id: int, subscription_id: int, reason: str, now: datetime
) -> Subscription:
    target = f"subscription:{subscription_id}"
    async with audited(db, by, "subscription.cancel", target, now=now, reason=reason) as work:
        found = await service.require_of_user(work.session, subscription_id, user_id)
        work.before = _facts(found)
        changed = await service.change_status(
            work.session, subscription_id, SubscriptionStatus.CANCELED, now
        )
        work.after = _facts(changed)
        return changed
