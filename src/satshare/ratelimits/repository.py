"""SQL of the rate-limit counters: one atomic statement per change, so that concurrent
requests in several processes count correctly."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, String, bindparam, case, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ratelimits.models import RateLimitCounter


@functools.cache
def _incr(dialect: str, *, capped: bool = False) -> Any:
    """Built once per dialect and run with bound values: every API request counts against
    two limits, and building the upsert at each count was most of its CPU (#15).
    ``capped``: a live counter is raised only while it stays within ``cap``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    table = RateLimitCounter
    amount = bindparam("amount", type_=Integer)
    expires_at = bindparam("expires_at", type_=table.expires_at.type)
    ended = table.expires_at <= bindparam("now", type_=table.expires_at.type)
    return (
        insert(table)
        .values(key=bindparam("key", type_=String), count=amount, expires_at=expires_at)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={
                "count": case((ended, amount), else_=table.count + amount),
                "expires_at": case((ended, expires_at), else_=table.expires_at),
            },
            where=(ended | (table.count + amount <= bindparam("cap", type_=Integer)))
            if capped
            else None,
        )
        .returning(table.count)
    )


async def incr(session: AsyncSession, key: str, amount: int, expires_at: float, now: float) -> int:
    """Add ``amount`` to the counter (a new one, or one whose window ended, starts over
    with ``expires_at``) and return the new count."""
    statement = _incr(session.get_bind().dialect.name)
    values = {"key": key, "amount": amount, "expires_at": expires_at, "now": now}
    return int((await session.execute(statement, values)).scalar_one())


async def incr_within(
    session: AsyncSession, key: str, amount: int, expires_at: float, now: float, cap: int
) -> int | None:
    """As ``incr``, but a live counter is raised only if it stays within ``cap``, in one
    statement (another process counting at the same moment cannot slip past it): the new
    count, or None when the counter was left as it was. A new counter (or one whose window
    ended) starts at ``amount``; the caller has checked that ``amount`` is within ``cap``."""
    statement = _incr(session.get_bind().dialect.name, capped=True)
    values = {"key": key, "amount": amount, "expires_at": expires_at, "now": now, "cap": cap}
    found = (await session.execute(statement, values)).scalar_one_or_none()
    return None if found is None else int(found)


#: Built once (every API request reads its limits' windows).
_COUNTS = select(RateLimitCounter.key, RateLimitCounter.count, RateLimitCounter.expires_at).where(
    RateLimitCounter.key.in_(bindparam("keys", expanding=True)),
    RateLimitCounter.expires_at > bindparam("now", type_=RateLimitCounter.expires_at.type),
)


async def counts(
    session: AsyncSession, keys: Sequence[str], now: float
) -> dict[str, tuple[int, float]]:
    """key → (count, expires_at) of the live counters among ``keys``."""
    result = await session.execute(_COUNTS, {"keys": list(keys), "now": now})
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
