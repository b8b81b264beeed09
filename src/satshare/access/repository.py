"""Access's queries: whose subscriptions cover which chats, and the access rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.access.models import ChannelAccess
from satshare.plans.models import Plan
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.users.models import User


async def channels_of_active_plans(
    session: AsyncSession, user_id: int, now: datetime
) -> Sequence[list[int] | None]:
    """The channel lists of the plans the user holds an active, unexpired subscription to."""
    result = await session.execute(
        select(Plan.channels)
        .join(Subscription, Subscription.plan_id == Plan.id)
        .where(
            Subscription.user_id == user_id,
            Subscription.status == SubscriptionStatus.ACTIVE,
            Subscription.ends_at > now,
        )
    )
    return result.scalars().all()


async def access_row(session: AsyncSession, user_id: int, chat_id: int) -> ChannelAccess:
    result = await session.execute(
        select(ChannelAccess).where(
            ChannelAccess.user_id == user_id, ChannelAccess.chat_id == chat_id
        )
    )
    return result.scalar_one()


async def let_in(session: AsyncSession) -> Sequence[tuple[ChannelAccess, str | None]]:
    """Every access row of people let in (granted or member), with their platform id,
    oldest change first."""
    rows = await session.execute(
        select(ChannelAccess, User.external_id)
        .join(User, User.id == ChannelAccess.user_id)
        .where(ChannelAccess.status.in_(("granted", "member")))
        .order_by(ChannelAccess.updated_at)
    )
    return [(access, external_id) for access, external_id in rows.all()]
