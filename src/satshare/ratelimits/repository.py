"""SQL of the rate-limit counters: one atomic statement per change, so that concurrent
requests in several processes count correctly."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ratelimits.models import RateLimitCounter


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert(RateLimitCounter)


async def incr(session: AsyncSession, key: str, amount: int, expires_at: float, now: float) -> int:
    """Add ``amount`` to the counter (a new one, or one whose window ended, starts over
    with ``expires_at``) and return the new count."""
    table = RateLimitCounter
    statement = _insert(session).values(key=key, count=amount, expires_at=expires_at)
    ended = table.expires_at <= now
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "count": case((ended, amount), else_=table.count + amount),
            "expires_at": case((ended, expires_at), else_=table.expires_at),
        },
    ).returning(table.count)
    return int((await session.execute(statement)).scalar_one())


async def decr(session: AsyncSession, key: str, amount: int, now: float) -> None:
    await session.execute(
        update(RateLimitCounter)
        .where(RateLimitCounter.key == key, RateLimitCounter.expires_at > now)
        .values(count=RateLimitCounter.count - amount)
    )


async def counts(
    session: AsyncSession, keys: Sequence[str], now: float
) -> dict[str, tuple[int, float]]:
    """key → (count, expires_at) of the live counters among ``keys``."""
    result = await session.execute(
        select(RateLimitCounter.key, RateLimitCounter.count, RateLimitCounter.expires_at).where(
            RateLimitCounter.key.in_(keys), RateLimitCounter.expires_at > now
        )
    )
    return {key: (count, expires_at) for key, count, expires_at in result.all()}


async def clear(session: AsyncSession, keys: Sequence[str]) -> None:
    await session.execute(delete(RateLimitCounter).where(RateLimitCounter.key.in_(keys)))


async def clear_all(session: AsyncSession) -> int:
    result = await session.execute(delete(RateLimitCounter))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_expired(session: AsyncSession, now: float) -> int:
    result = await session.execute(
        delete(RateLimitCounter).where(RateLimitCounter.expires_at <= now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
