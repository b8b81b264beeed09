"""All tally SQL: the changes queue and the totals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.tallies.models import (
    VERSION,
    Tally,
    TallyChange,
    TallyEndsDay,
    TallySubscriber,
)

#: Rows per INSERT: well under both backends' limits on bound parameters.
CHUNK = 200


def _upsert(session: AsyncSession) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    return dialect_insert


# -- the changes queue ----------------------------------------------------------------------


#: Built once and executed with the rows as parameters: a multi-row ``values([...])`` is
#: compiled again on every call, and every sale, trial and expiry queues changes (#15).
_CHANGES_TABLE: Any = TallyChange.__table__
_ADD_CHANGES = insert(_CHANGES_TABLE)


async def add_changes(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue changes (every row with the same keys): one executemany."""
    await session.execute(_ADD_CHANGES, [dict(row) for row in rows])


async def changes(session: AsyncSession, limit: int | None = None) -> Sequence[TallyChange]:
    """Changes not folded yet, oldest first."""
    query = select(TallyChange).order_by(TallyChange.id)
    if limit is not None:
        query = query.limit(limit)
    return (await session.execute(query)).scalars().all()


async def drop_changes(session: AsyncSession, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), 1000):
        await session.execute(
            delete(TallyChange).where(TallyChange.id.in_(ids[start : start + 1000]))
        )


# -- the totals ------------------------------------------------------------------------------


async def version(session: AsyncSession, *, lock: bool = False, share: bool = False) -> int:
    """The fold's version. ``lock``: held FOR UPDATE (a fold's); ``share``: FOR SHARE (a
    read that holds folds off; ``db.read_between_commits`` takes it for one read only)."""
    query = select(Tally.count).where(Tally.key == VERSION)
    if lock or share:
        query = query.with_for_update(read=share)
    found = await session.scalar(query)
    return int(found or 0)


async def set_version(session: AsyncSession, value: int) -> None:
    statement = _upsert(session)(Tally).values(key=VERSION, count=value, sats=0)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["key"], set_={"count": value})
    )


async def ensure_version(session: AsyncSession) -> None:
    statement = _upsert(session)(Tally).values(key=VERSION, count=0, sats=0)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["key"]))


async def totals(session: AsyncSession) -> dict[str, tuple[int, int]]:
    rows = await session.execute(select(Tally.key, Tally.count, Tally.sats))
    return {key: (int(count), int(sats)) for key, count, sats in rows.all() if key != VERSION}


async def add_totals(session: AsyncSession, deltas: Mapping[str, tuple[int, int]]) -> None:
    """Add each (count, sats) to its total, creating missing ones."""
    values = [{"key": k, "count": c, "sats": s} for k, (c, s) in sorted(deltas.items())]
    upsert = _upsert(session)
    table: Any = Tally.__table__
    for start in range(0, len(values), CHUNK):
        statement = upsert(Tally).values(values[start : start + CHUNK])
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "count": table.c.count + statement.excluded.count,
                    "sats": table.c.sats + statement.excluded.sats,
                },
            )
        )


async def add_ends_days(session: AsyncSession, deltas: Mapping[date, int]) -> None:
    """Add to each day's count; days that drop to 0 are deleted (paid time that ended and
    was renewed leaves its old day)."""
    values = [{"day": d, "count": c} for d, c in sorted(deltas.items()) if c]
    upsert = _upsert(session)
    table: Any = TallyEndsDay.__table__
    for start in range(0, len(values), CHUNK):
        statement = upsert(TallyEndsDay).values(values[start : start + CHUNK])
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["day"], set_={"count": table.c.count + statement.excluded.count}
            )
        )
    if values:
        await session.execute(
            delete(TallyEndsDay).where(
                TallyEndsDay.day.in_([v["day"] for v in values]), TallyEndsDay.count == 0
            )
        )


async def ends_days(session: AsyncSession, start: date, end: date) -> int:
    """Subscriptions whose paid time ends on the days in [start, end), as folded."""
    total = await session.scalar(
        select(func.coalesce(func.sum(TallyEndsDay.count), 0)).where(
            TallyEndsDay.day >= start, TallyEndsDay.day < end
        )
    )
    return int(total or 0)


async def all_ends_days(session: AsyncSession) -> dict[date, int]:
    rows = await session.execute(select(TallyEndsDay.day, TallyEndsDay.count))
    return {day: int(count) for day, count in rows.all()}


async def subscribers_of(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, int]:
    wanted = sorted(set(user_ids))
    found: dict[int, int] = {}
    for start in range(0, len(wanted), 1000):
        rows = await session.execute(
            select(TallySubscriber.user_id, TallySubscriber.subscriptions).where(
                TallySubscriber.user_id.in_(wanted[start : start + 1000])
            )
        )
        found.update({int(uid): int(n) for uid, n in rows.all()})
    return found


async def put_subscribers(session: AsyncSession, counts: Mapping[int, int]) -> None:
    """Set each user's count; users at 0 are deleted."""
    gone = [uid for uid, n in counts.items() if n == 0]
    kept = [{"user_id": uid, "subscriptions": n} for uid, n in sorted(counts.items()) if n]
    upsert = _upsert(session)
    for start in range(0, len(kept), CHUNK):
        statement = upsert(TallySubscriber).values(kept[start : start + CHUNK])
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id"],
                set_={"subscriptions": statement.excluded.subscriptions},
            )
        )
    for start in range(0, len(gone), 1000):
        await session.execute(
            delete(TallySubscriber).where(TallySubscriber.user_id.in_(gone[start : start + 1000]))
        )


async def clear(session: AsyncSession) -> None:
    """Empty the tallies (the rebuild counts them anew); the version row stays."""
    await session.execute(delete(Tally).where(Tally.key != VERSION))
    for model in (TallyChange, TallyEndsDay, TallySubscriber):
        await session.execute(delete(model))
