"""Keeping the tallies (a change per write, the fold, the rebuild) and reading them exactly.

A change is an appended row (``tally_changes``: no total that every settlement would wait
on): ``count`` and ``sats`` added to the total ``key``; for ``ends``, to the day ``day``;
for an ``active:*`` key, ``user_id`` says whose subscription, so that ``subscribers`` (the
users whose count of active subscriptions is above 0) is kept too. ``fold`` (the expiry
job's run) adds the queued changes to the totals; a read adds those not folded yet, and
reads again when a fold commits under it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import read_between_commits
from satshare.tallies import repository
from satshare.tallies.models import ACTIVE, ENDS, SUBSCRIBERS

T = TypeVar("T")
#: Reads retried this often when a fold commits under them, before holding folds off.
OPTIMISTIC_TRIES = 3
#: Changes folded per transaction.
FOLD_BATCH = 5000


def day_of(moment: datetime) -> date:
    """The UTC day of a moment, as the tallies count days."""
    return moment.astimezone(UTC).date()


def change(
    key: str, count: int, sats: int = 0, *, user_id: int | None = None, day: date | None = None
) -> dict[str, Any]:
    return {"key": key, "day": day, "user_id": user_id, "count": count, "sats": sats}


async def add(session: AsyncSession, changes: Sequence[Mapping[str, Any]]) -> None:
    """Queue changes (one INSERT; nothing when there are none)."""
    if changes:
        await repository.add_changes(session, changes)


async def moved(
    session: AsyncSession, prefix: str, before: str | None, after: str, sats: int
) -> None:
    """One item (of ``sats``) left the total ``prefix + before`` (None: it is new) for
    ``prefix + after``."""
    if before == after:
        return
    rows = [change(prefix + after, 1, sats)]
    if before is not None:
        rows.append(change(prefix + before, -1, -sats))
    await add(session, rows)


# -- folding ---------------------------------------------------------------------------------


@dataclass
class Folded:
    """What a set of changes adds to the totals."""

    totals: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    ends: defaultdict[date, int] = field(default_factory=lambda: defaultdict(int))
    #: user → change of their subscriptions in the active state.
    users: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: str, day: date | None, user_id: int | None, count: int, sats: int) -> None:
        if key == ENDS:
            assert day is not None
            self.ends[day] += count
            return
        total = self.totals[key]
        total[0] += count
        total[1] += sats
        if key.startswith(ACTIVE) and user_id is not None and count:
            self.users[user_id] += count

    def subscribers(self, before: dict[int, int]) -> tuple[int, dict[int, int]]:
        """(change of the subscribers, each touched user's count after)."""
        after = {uid: before.get(uid, 0) + n for uid, n in self.users.items()}
        moved = sum(int(after[uid] > 0) - int(before.get(uid, 0) > 0) for uid in after)
        return moved, after


def _folded(rows: Sequence[Any]) -> Folded:
    folded = Folded()
    for row in rows:
        folded.add(row.key, row.day, row.user_id, int(row.count), int(row.sats))
    return folded


async def fold(session: AsyncSession, limit: int = FOLD_BATCH) -> int:
    """Add up to ``limit`` queued changes to the totals and drop them; how many. Folds take
    turns on the version row."""
    await repository.ensure_version(session)
    version = await repository.version(session, lock=True)
    rows = await repository.changes(session, limit)
    if not rows:
        return 0
    folded = _folded(rows)
    before = await repository.subscribers_of(session, folded.users)
    joined, after = folded.subscribers(before)
    totals = {key: (c, s) for key, (c, s) in folded.totals.items()}
    if joined:
        count, sats = totals.get(SUBSCRIBERS, (0, 0))
        totals[SUBSCRIBERS] = (count + joined, sats)
    await repository.add_totals(session, totals)
    await repository.add_ends_days(session, folded.ends)
    await repository.put_subscribers(session, after)
    await repository.drop_changes(session, [row.id for row in rows])
    await repository.set_version(session, version + 1)
    return len(rows)


async def replace(
    session: AsyncSession,
    totals: Mapping[str, tuple[int, int]],
    active_per_user: Mapping[int, int],
    ends: Mapping[date, int],
) -> None:
    """Set every tally anew (the rebuild; its caller holds the counted tables' writers
    off): the totals, each user's active subscriptions, the count per day; ``subscribers``
    is counted from the users."""
    await repository.ensure_version(session)
    version = await repository.version(session, lock=True)
    await repository.clear(session)
    subscribers = sum(1 for n in active_per_user.values() if n > 0)
    await repository.add_totals(session, {**totals, SUBSCRIBERS: (subscribers, 0)})
    await repository.add_ends_days(session, ends)
    await repository.put_subscribers(session, active_per_user)
    await repository.set_version(session, version + 1)


# -- reading ---------------------------------------------------------------------------------


async def consistent(session: AsyncSession, read: Callable[[], Awaitable[T]]) -> T:
    """``read`` (totals plus the changes not folded) as of one fold."""
    return await read_between_commits(
        session,
        read,
        version=lambda: repository.version(session),
        hold=lambda: repository.version(session, share=True),
        tries=OPTIMISTIC_TRIES,
    )


async def totals(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """Every total (how many, sats) with the changes not folded yet, ``subscribers``
    included. Call it inside ``consistent``."""
    found = await repository.totals(session)
    folded = _folded(await repository.changes(session))
    for key, (count, sats) in folded.totals.items():
        c, s = found.get(key, (0, 0))
        found[key] = (c + count, s + sats)
    joined, _ = folded.subscribers(await repository.subscribers_of(session, folded.users))
    if joined:
        c, s = found.get(SUBSCRIBERS, (0, 0))
        found[SUBSCRIBERS] = (c + joined, s)
    return found


async def ends_between(session: AsyncSession, first: date, last: date) -> int:
    """Subscriptions whose paid time ends on the days in [first, last), with the changes
    not folded yet. Call it inside ``consistent``."""
    total = await repository.ends_days(session, first, last)
    for row in await repository.changes(session):
        if row.key == ENDS and row.day is not None and first <= row.day < last:
            total += int(row.count)
    return total


async def ends_per_day(session: AsyncSession) -> dict[date, int]:
    """Every day's count (the check's)."""

    async def read() -> dict[date, int]:
        found = await repository.all_ends_days(session)
        for row in await repository.changes(session):
            if row.key == ENDS and row.day is not None:
                found[row.day] = found.get(row.day, 0) + int(row.count)
        return {day: n for day, n in found.items() if n}

    return await consistent(session, read)
