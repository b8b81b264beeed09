"""Starting a free trial. Never commits: the caller's unit of work does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import InvalidRequest
from satshare.notifications import service as outbox
from satshare.notifications.messages import TrialStarted
from satshare.plans import service as plans
from satshare.subscriptions import repository as subscriptions_repo
from satshare.subscriptions import service as subscriptions
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.trials import repository
from satshare.trials.models import Trial
from satshare.users import repository as users
from satshare.users.models import User


class TrialRefused(InvalidRequest):
    """No trial for this person and plan (422 in the API); nothing was written."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, field="trial", reason=reason)
        self.reason = reason


def person_of(user: User) -> str:
    """Who gets one trial: the platform identity, which survives a new registration."""
    if user.external_id:
        return f"{user.platform}:{user.external_id}"
    return f"user:{user.id}"


async def available(session: AsyncSession, user: User, plan_id: str) -> bool:
    plan = await plans.get(session, plan_id)
    if plan is None or not plan.active or plan.trial_days <= 0:
        return False
    return not await repository.taken(session, person_of(user), plan_id)


async def start(session: AsyncSession, user_id: int, plan_id: str, now: datetime) -> Subscription:
    """Activate the plan for its ``trial_days``: the channels, the reminder and the removal
    at its end work as for a paid period; no invoice, no ledger entry, no commission."""
    user = await users.get(session, user_id)
    if user is None:
        raise InvalidRequest(f"user_id {user_id} does not exist", field="user_id")
    plan = await plans.require_purchasable(session, plan_id)
    if plan.trial_days <= 0:
        raise TrialRefused("no_trial", f"plan {plan_id!r} has no free trial")
    person = person_of(user)
    if await repository.taken(session, person, plan_id):
        raise TrialRefused("used", f"the free trial of {plan_id!r} has already been used")
    subscription = await subscriptions_repo.get_or_create(session, user.id, plan_id, now)
    subscription = await subscriptions_repo.get(session, subscription.id, lock=True) or subscription
    if subscriptions.effective_status(subscription, now) == SubscriptionStatus.ACTIVE:
        raise TrialRefused(
            "subscribed", f"user {user_id} already has an active {plan_id!r} subscription"
        )
    counted_before = subscriptions.before_change(subscription)
    subscriptions.extend(subscription, plan.trial_days, now)
    assert subscription.ends_at is not None
    try:
        # The unique (person, plan) key stops a concurrent second trial here.
        await repository.add(
            session,
            Trial(
                person=person,
                plan_id=plan_id,
                user_id=user.id,
                subscription_id=subscription.id,
                started_at=now,
                ends_at=subscription.ends_at,
            ),
        )
    except IntegrityError:
        raise TrialRefused("used", f"the free trial of {plan_id!r} has already been used") from None
    await subscriptions.counted(session, counted_before, subscription)
    await outbox.enqueue(
        session,
        TrialStarted(
            subscription_id=subscription.id,
            plan_id=plan.id,
            plan_title=plan.title,
            active_until=subscription.ends_at,
            channels=tuple(plan.channels),
        ),
        dedupe_key=f"trial:{person}:{plan_id}:started",
        user_id=user.id,
        now=now,
    )
    return subscription
