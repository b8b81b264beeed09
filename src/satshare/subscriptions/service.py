"""Subscriptions: one per (user, plan); paid renewals stack from the current end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.notifications import service as outbox
from satshare.notifications.messages import AccessResent, SubscriptionExpired
from satshare.plans.models import Plan
from satshare.subscriptions import repository
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.tallies import models as tally_keys
from satshare.tallies import service as tallies
from satshare.webhooks_out import events as webhook_events
from satshare.webhooks_out.models import EventType


def effective_status(subscription: Subscription, now: datetime) -> SubscriptionStatus:
    """What the subscription is right now, even before the expiry job has run."""
    if (
        subscription.status == SubscriptionStatus.ACTIVE
        and subscription.ends_at
        and subscription.ends_at <= now
    ):
        return SubscriptionStatus.EXPIRED
    return subscription.status


def extension_start(subscription: Subscription, now: datetime) -> datetime:
    """A renewal paid while still active extends from the current end, otherwise from now."""
    if (
        subscription.status == SubscriptionStatus.ACTIVE
        and subscription.ends_at
        and subscription.ends_at > now
    ):
        return subscription.ends_at
    return now


def extend(subscription: Subscription, duration_days: int, now: datetime) -> None:
    start = extension_start(subscription, now)
    if start == now:
        subscription.started_at = now
    subscription.ends_at = start + timedelta(days=duration_days)
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.updated_at = now


class PurchaseEffect(StrEnum):
    """What paying for a plan will do to the buyer's subscriptions (as ``extend`` does it)."""

    NEW = "new"  # nothing active: the plan starts when the payment settles
    EXTEND = "extend"  # this plan is active: the paid days are added at its current end
    ALONGSIDE = "alongside"  # only other plans are active: they run on, this one starts too


@dataclass(frozen=True, slots=True)
class Held:
    """An active subscription with its plan."""

    subscription: Subscription
    plan: Plan

    @property
    def ends_at(self) -> datetime:
        assert self.subscription.ends_at is not None  # active subscriptions have an end
        return self.subscription.ends_at


@dataclass(frozen=True, slots=True)
class PurchaseOutlook:
    """Told to the buyer before the invoice is made (the bot, the checkout page)."""

    effect: PurchaseEffect
    plan: Plan
    #: The days this purchase pays for (the plan's, plus any extra days it carries).
    days: int
    #: The buyer's active subscriptions; when extending, the one extended comes first.
    held: tuple[Held, ...]
    #: The plan's end once paid: extending, the current end plus ``days``; otherwise ``days``
    #: from the payment (here: if paid now).
    ends_at: datetime

    @property
    def shared_channels(self) -> list[int]:
        """ALONGSIDE: the plan's channels another active plan grants too (access lasts until
        the later of the two ends)."""
        others = {chat for held in self.held for chat in held.plan.channels}
        return [chat for chat in self.plan.channels if chat in others]


def purchase_outlook(held: Sequence[Held], plan: Plan, days: int, now: datetime) -> PurchaseOutlook:
    """What buying ``plan`` for ``days`` does, given the buyer's active subscriptions: one
    subscription per (user, plan), so the same plan is extended from its end (``extend``)
    and another plan is a second subscription running beside the first."""
    same = [h for h in held if h.plan.id == plan.id]
    if same:
        start = extension_start(same[0].subscription, now)
        rest = tuple(h for h in held if h.plan.id != plan.id)
        ends_at = start + timedelta(days=days)
        return PurchaseOutlook(PurchaseEffect.EXTEND, plan, days, (same[0], *rest), ends_at)
    effect = PurchaseEffect.ALONGSIDE if held else PurchaseEffect.NEW
    return PurchaseOutlook(effect, plan, days, tuple(held), now + timedelta(days=days))


def record_payment(subscription: Subscription, bitcoin_sats: int | None) -> None:
    """One more payment settled for it (``bitcoin_sats``: what a bitcoin one billed)."""
    subscription.payments = (subscription.payments or 0) + 1
    if bitcoin_sats is not None:
        subscription.last_paid_sats = bitcoin_sats


@dataclass(frozen=True, slots=True)
class Counted:
    """What the dashboard's tallies count of a subscription, at one moment: it is *active*
    (per plan, with its last bitcoin payment, and its user a subscriber) while its state is
    active with an end — whether that end has passed is the reader's to take off — and, once
    ever started, it counts on the UTC day its paid time ends (churn)."""

    user_id: int
    plan_id: str
    status: SubscriptionStatus
    started_at: datetime | None
    ends_at: datetime | None
    last_paid_sats: int | None

    def active(self) -> tuple[int, int]:
        if self.status != SubscriptionStatus.ACTIVE or self.ends_at is None:
            return 0, 0
        return 1, self.last_paid_sats or 0

    def ends_on(self) -> date | None:
        if self.started_at is None or self.ends_at is None:
            return None
        return tallies.day_of(self.ends_at)


def before_change(subscription: Subscription) -> Counted:
    """What the tallies count of it, taken before changing it (``counted``)."""
    return Counted(
        subscription.user_id,
        subscription.plan_id,
        SubscriptionStatus(subscription.status),
        subscription.started_at,
        subscription.ends_at,
        subscription.last_paid_sats,
    )


def tally_changes(before: Counted | None, after: Counted) -> list[dict[str, object]]:
    """The tallies' changes from ``before`` (None: a new row) to ``after``."""
    changes = []
    (n0, s0), (n1, s1) = (before.active() if before else (0, 0)), after.active()
    if (n0, s0) != (n1, s1):
        key = tally_keys.ACTIVE + after.plan_id
        changes.append(tallies.change(key, n1 - n0, s1 - s0, user_id=after.user_id))
    d0, d1 = (before.ends_on() if before else None), after.ends_on()
    if d0 != d1:
        for day, count in ((d0, -1), (d1, 1)):
            if day is not None:
                changes.append(tallies.change(tally_keys.ENDS, count, day=day))
    return changes


async def counted(
    session: AsyncSession, before: Counted | None, subscription: Subscription
) -> None:
    """Queue what changing ``subscription`` from ``before`` changes in the dashboard's
    tallies (one INSERT; none when nothing counted changed). Every write to a subscription's
    state, end or last payment calls it in the same transaction."""
    await tallies.add(session, tally_changes(before, before_change(subscription)))


def shorten(subscription: Subscription, duration_days: int, now: datetime) -> None:
    """Take back a refunded period; what is left of it (if anything) stays active."""
    if subscription.ends_at is None:
        return
    subscription.ends_at = max(now, subscription.ends_at - timedelta(days=duration_days))
    if subscription.ends_at <= now and subscription.status == SubscriptionStatus.ACTIVE:
        subscription.status = SubscriptionStatus.EXPIRED
    subscription.updated_at = now


async def require(session: AsyncSession, subscription_id: int) -> Subscription:
    subscription = await repository.get(session, subscription_id)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} does not exist")
    return subscription


class NotTheirs(NotFound):
    """The subscription exists but is another user's (a page about one user acts only on
    that user's subscriptions)."""


async def require_of_user(
    session: AsyncSession, subscription_id: int, user_id: int
) -> Subscription:
    subscription = await require(session, subscription_id)
    if subscription.user_id != user_id:
        raise NotTheirs(f"subscription {subscription_id} is not user {user_id}'s")
    return subscription


async def change_status(
    session: AsyncSession, subscription_id: int, status: SubscriptionStatus, now: datetime
) -> Subscription:
    subscription = await repository.get(session, subscription_id, lock=True)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} does not exist")
    current = effective_status(subscription, now)
    if status == current:
        return subscription
    if status == SubscriptionStatus.CANCELED:
        if current not in (SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE):
            raise Conflict(f"a {current} subscription cannot be canceled")
    elif status == SubscriptionStatus.ACTIVE:
        if (
            current != SubscriptionStatus.CANCELED
            or not subscription.ends_at
            or subscription.ends_at <= now
        ):
            raise Conflict(
                "only a canceled subscription with paid time left can be re-activated; "
                "otherwise buy a renewal with POST /api/v1/subscriptions"
            )
    else:
        raise Conflict(f"status can be set to 'canceled' or 'active', not '{status}'")
    before = before_change(subscription)
    subscription.status = status
    subscription.updated_at = now
    await session.flush()
    await counted(session, before, subscription)
    if status == SubscriptionStatus.CANCELED:  # outgoing webhooks (#14)
        await webhook_events.subscription_changed(
            session, EventType.SUBSCRIPTION_CANCELED, subscription, now, cause=now.isoformat()
        )
    return subscription


async def grant_days(
    session: AsyncSession, subscription_id: int, days: int, now: datetime
) -> Subscription:
    """Days given by an admin, without a payment (nothing is written to the ledger): from the
    current end if still active, else from now. A canceled subscription is left alone."""
    if not 1 <= days <= 3650:
        raise InvalidRequest("give 1 to 3650 days", field="days")
    subscription = await repository.get(session, subscription_id, lock=True)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} does not exist")
    if subscription.status == SubscriptionStatus.CANCELED:
        raise Conflict(f"subscription {subscription_id} is canceled; it cannot be extended")
    before = before_change(subscription)
    extend(subscription, days, now)
    await session.flush()
    await counted(session, before, subscription)
    return subscription


async def resend_access(session: AsyncSession, subscription_id: int, now: datetime) -> bool:
    """Queue the links into the plan's channels for the subscriber again (an admin's
    request); only while the subscription is active. Returns whether it was queued."""
    subscription = await repository.get(session, subscription_id)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} does not exist")
    if effective_status(subscription, now) != SubscriptionStatus.ACTIVE or not subscription.ends_at:
        raise Conflict(f"subscription {subscription_id} is not active: there is nothing to join")
    plan = await session.get(Plan, subscription.plan_id)
    assert plan is not None  # a subscription's plan is never deleted
    return await outbox.enqueue(
        session,
        AccessResent(
            subscription_id=subscription.id,
            plan_id=plan.id,
            plan_title=plan.title,
            active_until=subscription.ends_at,
            channels=tuple(plan.channels),
        ),
        dedupe_key=f"access.resent:{subscription.id}:{now.isoformat()}",
        now=now,
        user_id=subscription.user_id,
    )


async def expire_due(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """Mark ended subscriptions expired and queue their expiry notices. Returns how many."""
    expired = 0
    for subscription in await repository.due_for_expiry(session, now, limit):
        before = before_change(subscription)
        if await repository.mark_expired(session, subscription.id, now):
            expired += 1
            expired_now = replace(before, status=SubscriptionStatus.EXPIRED)
            await tallies.add(session, tally_changes(before, expired_now))
            assert subscription.ends_at is not None
            await outbox.enqueue(
                session,
                SubscriptionExpired(subscription_id=subscription.id, plan_id=subscription.plan_id),
                dedupe_key=f"subscription:{subscription.id}:expired:{subscription.ends_at.isoformat()}",
                user_id=subscription.user_id,
                now=now,
            )
            await webhook_events.subscription_changed(  # outgoing webhooks (#14)
                session,
                EventType.SUBSCRIPTION_EXPIRED,
                subscription,
                now,
                cause=subscription.ends_at.isoformat(),
                status=SubscriptionStatus.EXPIRED.value,
            )
    return expired
