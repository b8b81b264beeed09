"""All user SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.users.models import ReferralCount, User


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_many(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, User]:
    """The users with these ids (missing ones are left out), by id."""
    result = await session.execute(select(User).where(User.id.in_(list(user_ids))))
    return {user.id: user for user in result.scalars()}


async def by_referral_code(session: AsyncSession, code: str) -> User | None:
    result = await session.execute(select(User).where(User.referral_code == code))
    return result.scalar_one_or_none()


async def by_external_id(session: AsyncSession, platform: str, external_id: str) -> User | None:
    result = await session.execute(
        select(User).where(User.platform == platform, User.external_id == external_id)
    )
    return result.scalar_one_or_none()


async def by_external_ids(
    session: AsyncSession, platform: str, external_ids: Iterable[str]
) -> list[User]:
    """The users of ``platform`` behind these external ids (the ones that exist)."""
    result = await session.execute(
        select(User).where(User.platform == platform, User.external_id.in_(list(external_ids)))
    )
    return list(result.scalars().all())


async def by_referral_codes(session: AsyncSession, codes: Iterable[str]) -> list[User]:
    """The users owning these referral codes (the ones that exist)."""
    result = await session.execute(select(User).where(User.referral_code.in_(list(codes))))
    return list(result.scalars().all())


def _insert(session: AsyncSession) -> Any:
    """INSERT in the session's dialect (for ON CONFLICT)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


async def insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[User]:
    """Insert users in one statement and return those inserted. A row that meets any unique
    index (its platform account registered meanwhile, its referral code taken) is left out:
    the caller finds out which from the returned users."""
    statement = _insert(session)(User).values(list(rows)).on_conflict_do_nothing().returning(User)
    result = await session.scalars(statement)
    return list(result.all())


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


async def search(session: AsyncSession, text: str, *, limit: int) -> Sequence[User]:
    """Users matching a user name (part of it), a Telegram id, a referral code or a user id;
    newest first. An empty text lists the newest users."""
    query = select(User).order_by(User.id.desc()).limit(limit)
    text = text.strip().lstrip("@")
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions = [
            User.username.ilike(pattern, escape="\\"),
            User.external_id == text,
            User.referral_code == text,
        ]
        if text.isascii() and text.isdigit() and len(text) < 19:
            conditions.append(User.id == int(text))
        query = query.where(or_(*conditions))
    return (await session.execute(query)).scalars().all()


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


async def count_referral(
    session: AsyncSession, user_id: int, *, registered: int = 0, clicks: int = 0
) -> None:
    """Add to a user's referral counts (one upsert)."""
    insert = _insert(session)
    statement = insert(ReferralCount).values(user_id=user_id, registered=registered, clicks=clicks)
    statement = statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={
            "registered": ReferralCount.registered + statement.excluded.registered,
            "clicks": ReferralCount.clicks + statement.excluded.clicks,
        },
    )
    await session.execute(statement)


async def referral_counts(session: AsyncSession, user_id: int) -> tuple[int, int]:
    """(users they referred, times their link was opened)."""
    row = (
        await session.execute(
            select(ReferralCount.registered, ReferralCount.clicks).where(
                ReferralCount.user_id == user_id
            )
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def referrer_ids(session: AsyncSession) -> list[int]:
    """Every user who referred someone or whose link was opened (for the figures check)."""
    referrers = select(User.referrer_id).where(User.referrer_id.is_not(None))
    counted = select(ReferralCount.user_id)
    rows = await session.execute(referrers.union(counted))
    return sorted(int(uid) for uid in rows.scalars().all() if uid is not None)
