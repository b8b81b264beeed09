"""Access use cases in their own units of work (for the bot and the sandbox pages)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from satshare.access import service
from satshare.affiliates import service as affiliates
from satshare.affiliates.service import Balance
from satshare.affiliates.stats import ReferralStats
from satshare.db import Database
from satshare.payments import referrals
from satshare.plans import service as plans
from satshare.plans.models import Plan
from satshare.subscriptions import repository as subscriptions_repo
from satshare.subscriptions.models import Subscription
from satshare.users import repository as users_repo
from satshare.users.models import User


@dataclass(frozen=True, slots=True)
class Holdings:
    """A user's active subscriptions with their plans, and the chats they cover."""

    subscriptions: list[tuple[Subscription, Plan]]
    chats: list[int]


async def holdings(db: Database, user_id: int, now: datetime) -> Holdings:
    async with db.reading() as session:
        active = await subscriptions_repo.active_of_user(session, user_id, now)
        pairs = []
        for subscription in active:
            plan = await plans.get(session, subscription.plan_id)
            assert plan is not None
            pairs.append((subscription, plan))
        chats = sorted(await service.chats_of_active_subscriptions(session, user_id, now))
    return Holdings(pairs, chats)


async def may_join(db: Database, user_id: int, chat_id: int, now: datetime) -> bool:
    async with db.reading() as session:
        return await service.may_join(session, user_id, chat_id, now)


async def record(
    db: Database,
    user_id: int,
    chat_id: int,
    status: str,
    now: datetime,
    *,
    invite_link: str | None = None,
    link_expires_at: datetime | None = None,
) -> None:
    async with db.transaction() as session:
        await service.record(
            session,
            user_id,
            chat_id,
            status,
            now,
            invite_link=invite_link,
            link_expires_at=link_expires_at,
        )


async def shared_link(db: Database, chat_id: int) -> str | None:
    async with db.reading() as session:
        return await service.shared_link(session, chat_id)


async def save_shared_link(db: Database, chat_id: int, link: str, now: datetime) -> str:
    """Keep the first link stored for a channel (two concurrent creators agree on one)."""
    async with db.transaction() as session:
        return await service.save_shared_link(session, chat_id, link, now)


async def due_for_removal(db: Database, now: datetime, limit: int) -> list[service.Removal]:
    async with db.reading() as session:
        return await service.due_for_removal(session, now, limit)


async def mark_removed(db: Database, access_ids: Sequence[int], now: datetime) -> None:
    async with db.transaction() as session:
        await service.mark_removed(session, access_ids, now)


@dataclass(frozen=True, slots=True)
class MemberSummary:
    """What the sandbox chat page shows beside a Telegram user's chat."""

    user: User
    earnings: Balance
    referrals: ReferralStats
    subscriptions: Sequence[Subscription]
    chats: set[int]


async def member_summary(
    db: Database, platform: str, external_id: str, hold_days: int, now: datetime
) -> MemberSummary | None:
    """None when the account has not registered yet."""
    async with db.reading() as session:
        user = await users_repo.by_external_id(session, platform, external_id)
        if user is None:
            return None
        return MemberSummary(
            user=user,
            earnings=await affiliates.balance(session, user.id, hold_days, now),
            referrals=await referrals.referral_stats(session, user.id),
            subscriptions=await subscriptions_repo.active_of_user(session, user.id, now),
            chats=await service.chats_of_active_subscriptions(session, user.id, now),
        )
