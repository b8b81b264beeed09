"""All subscription SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import insert_ignore
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.users.models import User


async def get(
    session: AsyncSession, subscription_id: int, *, lock: bool = False
) -> Subscription | None:
    query = select(Subscription).where(Subscription.id == subscription_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


#: Built once: every checkout asks it (#15).
_BY_USER_AND_PLAN = select(Subscription).where(
    Subscription.user_id == bindparam("user_id"), Subscription.plan_id == bindparam("plan_id")
)


async def get_or_create(
    session: AsyncSession, user_id: int, plan_id: str, now: datetime
) -> Subscription:
    await insert_ignore(
        session,
        Subscription,
        {
            "user_id": user_id,
            "plan_id": plan_id,
            "status": SubscriptionStatus.PENDING,
            "created_at": now,
            "updated_at": now,
        },
        ["user_id", "plan_id"],
    )
    result = await session.execute(_BY_USER_AND_PLAN, {"user_id": user_id, "plan_id": plan_id})
    return result.scalar_one()


async def list_subscriptions(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    user_id: int | None = None,
    status: SubscriptionStatus | None = None,
    plan_id: str | None = None,
    platform: str | None = None,
) -> Sequence[Subscription]:
    query = select(Subscription)
    if platform is not None:
        query = query.join(User, User.id == Subscription.user_id).where(User.platform == platform)
    if before_id is not None:
        query = query.where(Subscription.id < before_id)
    if user_id is not None:
        query = query.where(Subscription.user_id == user_id)
    if status is not None:
        query = query.where(Subscription.status == status)
    if plan_id is not None:
        query = query.where(Subscription.plan_id == plan_id)
    result = await session.execute(query.order_by(Subscription.id.desc()).limit(limit))
    return result.scalars().all()


async def active_of_user(
    session: AsyncSession, user_id: int, now: datetime
) -> Sequence[Subscription]:
    result = await session.execute(
        select(Subscription)
        .where(
            Subscription.user_id == user_id,
            Subscription.status == SubscriptionStatus.ACTIVE,
            Subscription.ends_at > now,
        )
        .order_by(Subscription.id)
    )
    return result.scalars().all()


async def due_for_expiry(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[Subscription]:
    result = await session.execute(
        select(Subscription)
        .where(Subscription.status == SubscriptionStatus.ACTIVE, Subscription.ends_at <= now)
        .order_by(Subscription.ends_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return result.scalars().all()


async def mark_expired(session: AsyncSession, subscription_id: int, now: datetime) -> bool:
    result = await session.execute(
        update(Subscription)
        .where(
            Subscription.id == subscription_id,
            Subscription.status == SubscriptionStatus.ACTIVE,
            Subscription.ends_at <= now,
        )
        .values(status=SubscriptionStatus.EXPIRED, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def active_ending_between(
    session: AsyncSession, now: datetime, horizon: datetime
) -> Sequence[Subscription]:
    """Active subscriptions whose period ends after ``now`` and by ``horizon``."""
    result = await session.execute(
        select(Subscription).where(
            Subscription.status == SubscriptionStatus.ACTIVE,
            Subscription.ends_at > now,
            Subscription.ends_at <= horizon,
        )
    )
    return result.scalars().all()
