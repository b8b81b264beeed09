"""All user SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.users.models import User


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def by_referral_code(session: AsyncSession, code: str) -> User | None:
    result = await session.execute(select(User).where(User.referral_code == code))
    return result.scalar_one_or_none()


async def by_external_id(session: AsyncSession, platform: str, external_id: str) -> User | None:
    result = await session.execute(
        select(User).where(User.platform == platform, User.external_id == external_id)
    )
    return result.scalar_one_or_none()


async def referral_code_taken(session: AsyncSession, code: str) -> bool:
    result = await session.execute(select(User.id).where(User.referral_code == code))
    return result.first() is not None


async def list_users(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    platform: str | None = None,
    referrer_id: int | None = None,
    external_id: str | None = None,
) -> Sequence[User]:
    query = select(User)
    if before_id is not None:
        query = query.where(User.id < before_id)
    if platform is not None:
        query = query.where(User.platform == platform)
    if referrer_id is not None:
        query = query.where(User.referrer_id == referrer_id)
    if external_id is not None:
        query = query.where(User.external_id == external_id)
    result = await session.execute(query.order_by(User.id.desc()).limit(limit))
    return result.scalars().all()


async def usernames(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, str | None]:
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(list(user_ids))))
    return {user_id: username for user_id, username in rows.all()}


async def leaderboard_names(
    session: AsyncSession, user_ids: Iterable[int]
) -> dict[int, str | None]:
    """The names users chose to show on the leaderboard (None: they did not opt in)."""
    rows = await session.execute(
        select(User.id, User.leaderboard_name).where(User.id.in_(list(user_ids)))
    )
    return {user_id: name for user_id, name in rows.all()}


async def with_external_ids(session: AsyncSession, platform: str) -> Sequence[User]:
    """Every user of a platform that has an external id, oldest first."""
    result = await session.execute(
        select(User)
        .where(User.platform == platform, User.external_id.is_not(None))
        .order_by(User.id)
    )
    return result.scalars().all()
