"""Keeping the tallies (a change per write, the fold, the rebuild) and reading them exactly.

What is counted, and where it changes:

- a subscription counts as *active* while its state is ``active`` (with an end): per plan,
  how many and the sum of their last bitcoin payments (the MRR's terms); and its user as a
  *subscriber* while they have at least one. Settlement, refunds, trials, an admin's cancel
  or extension and the expiry job report each change (``subscription_changed``). Whether
  its paid time has run out is a matter of time, not of writes: a read takes off the
  subscriptions still ``active`` whose end has passed — the ones the expiry job has not
  reached yet, normally none or a few (``lapsed``);
- a subscription ever started counts on the UTC day its paid time ends (churn: the
  subscriptions whose paid time ended in a period are those days' counts, plus the index's
  range for a day cut in two);
- a payout counts in its state, with its amount (``payout_moved``).

A change is an appended row (no total that every settlement would wait on); ``fold``
(the expiry job's run) adds them to the totals, and a read adds those not folded yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.payouts.models import PayoutStatus
from satshare.subscriptions.models import SubscriptionStatus
from satshare.tallies import repository
from satshare.tallies.models import ACTIVE, ENDS, PAYOUTS, SUBSCRIBERS

T = TypeVar("T")
#: Reads retried this often when a fold commits under them, before holding folds off.
OPTIMISTIC_TRIES = 3
#: Changes folded per transaction.
FOLD_BATCH = 5000


class Counted(Protocol):
    """What a subscription row is, as far as the tallies go."""

    @property
    def user_id(self) -> int: ...
    @property
    def plan_id(self) -> str: ...
    @property
    def status(self) -> SubscriptionStatus: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def last_paid_sats(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Facts:
    """A subscription's counted facts at one moment (taken before a change)."""

    user_id: int
    plan_id: str
    status: SubscriptionStatus
    started_at: datetime | None
    ends_at: datetime | None
    last_paid_sats: int | None


def facts(subscription: Counted) -> Facts:
    return Facts(
        subscription.user_id,
        subscription.plan_id,
        SubscriptionStatus(subscription.status),
        subscription.started_at,
        subscription.ends_at,
        subscription.last_paid_sats,
    )


def expired(before: Facts) -> Facts:
    return replace(before, status=SubscriptionStatus.EXPIRED)


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _active(f: Facts | None) -> tuple[int, int]:
    if f is None or f.status != SubscriptionStatus.ACTIVE or f.ends_at is None:
        return 0, 0
    return 1, f.last_paid_sats or 0


def _ends(f: Facts | None) -> date | None:
    if f is None or f.started_at is None or f.ends_at is None:
        return None
    return day_of(f.ends_at)


def subscription_rows(before: Facts | None, after: Facts) -> list[dict[str, Any]]:
    """The changes from ``before`` (None: a new row) to ``after``."""
    rows: list[dict[str, Any]] = []
    (n0, s0), (n1, s1) = _active(before), _active(after)
    if (n0, s0) != (n1, s1):
        rows.append(
            {
                "key": ACTIVE + after.plan_id,
                "day": None,
                "user_id": after.user_id,
                "count": n1 - n0,
                "sats": s1 - s0,
            }
        )
    d0, d1 = _ends(before), _ends(after)
    if d0 != d1:
        for day, count in ((d0, -1), (d1, 1)):
            if day is not None:
                rows.append({"key": ENDS, "day": day, "user_id": None, "count": count, "sats": 0})
    return rows


async def subscription_changed(session: AsyncSession, before: Facts | None, after: Facts) -> None:
    """Record what a change to one subscription changes in the tallies (one INSERT, or
    nothing when it changes none)."""
    rows = subscription_rows(before, after)
    if rows:
        await repository.add_changes(session, rows)


def _payout_row(state: PayoutStatus, count: int, sats: int) -> dict[str, Any]:
    return {
        "key": PAYOUTS + state.value,
        "day": None,
        "user_id": None,
        "count": count,
        "sats": sats,
    }


async def payout_moved(
    session: AsyncSession, before: PayoutStatus | None, after: PayoutStatus, amount_sats: int
) -> None:
    """A payout entered state ``after`` from ``before`` (None: it was just created)."""
    if before == after:
        return
    rows = [
        {
            "key": PAYOUTS + after.value,
            "day": None,
            "user_id": None,
            "count": 1,
            "sats": amount_sats,
        }
    ]
    if before is not None:
        rows.append(_payout_row(before, -1, -amount_sats))
    await repository.add_changes(session, rows)


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
        after = {uid: before.get(uid, 0) + change for uid, change in self.users.items()}
        change = sum(int(after[uid] > 0) - int(before.get(uid, 0) > 0) for uid in after)
        return change, after


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
    change, after = folded.subscribers(before)
    totals = {key: (c, s) for key, (c, s) in folded.totals.items()}
    if change:
        count, sats = totals.get(SUBSCRIBERS, (0, 0))
        totals[SUBSCRIBERS] = (count + change, sats)
    await repository.add_totals(session, totals)
    await repository.add_ends_days(session, folded.ends)
    await repository.put_subscribers(session, after)
    await repository.drop_changes(session, [row.id for row in rows])
    await repository.set_version(session, version + 1)
    return len(rows)


async def rebuild(session: AsyncSession) -> None:
    """Count every tally anew from the subscriptions and payouts (writers of both wait)."""
    await repository.hold_counted_tables(session)
    await repository.ensure_version(session)
    version = await repository.version(session, lock=True)
    await repository.clear(session)
    per_user = await repository.active_per_user(session)
    totals: dict[str, tuple[int, int]] = {
        ACTIVE + plan: figures
        for plan, figures in (await repository.active_per_plan(session)).items()
    }
    totals.update(
        {
            PAYOUTS + state: figures
            for state, figures in (await repository.payouts_per_state(session)).items()
        }
    )
    totals[SUBSCRIBERS] = (len(per_user), 0)
    await repository.add_totals(session, totals)
    ends: defaultdict[date, int] = defaultdict(int)
    for moment in await repository.ends_of_started(session):
        ends[day_of(moment)] += 1
    await repository.add_ends_days(session, ends)
    await repository.put_subscribers(session, per_user)
    await repository.set_version(session, version + 1)


# -- reading ---------------------------------------------------------------------------------


async def consistent(session: AsyncSession, read: Callable[[], Awaitable[T]]) -> T:
    """``read`` (totals plus the changes not folded) as of one fold."""
    for _ in range(OPTIMISTIC_TRIES):
        before = await repository.version(session)
        result = await read()
        if await repository.version(session) == before:
            return result
    await repository.version(session, share=True)
    return await read()


@dataclass(frozen=True, slots=True)
class Counts:
    """The subscriptions active now per plan (how many, the sum of their last bitcoin
    payments), their distinct users, and the payouts per state (how many, their amounts)."""

    active: dict[str, tuple[int, int]]
    subscribers: int
    payouts: dict[PayoutStatus, tuple[int, int]]


async def counts(session: AsyncSession, now: datetime) -> Counts:
    async def read() -> Counts:
        totals = await repository.totals(session)
        pending = await repository.changes(session)
        folded = _folded(pending)
        for key, (count, sats) in folded.totals.items():
            c, s = totals.get(key, (0, 0))
            totals[key] = (c + count, s + sats)
        change, _ = folded.subscribers(await repository.subscribers_of(session, folded.users))
        lapsed = await repository.lapsed_per_plan(session, now)
        active: dict[str, tuple[int, int]] = {}
        for key, (count, sats) in totals.items():
            if key.startswith(ACTIVE):
                plan = key.removeprefix(ACTIVE)
                gone = lapsed.get(plan, (0, 0))
                active[plan] = (count - gone[0], sats - gone[1])
        subscribers = (
            totals.get(SUBSCRIBERS, (0, 0))[0]
            + change
            - await repository.lapsed_subscribers(session, now)
        )
        payouts = {state: totals.get(PAYOUTS + state.value, (0, 0)) for state in PayoutStatus}
        return Counts(
            {plan: figures for plan, figures in active.items() if figures != (0, 0)},
            subscribers,
            {state: figures for state, figures in payouts.items() if figures != (0, 0)},
        )

    return await consistent(session, read)


async def payouts(session: AsyncSession) -> dict[PayoutStatus, tuple[int, int]]:
    """The payouts per state (how many, their amounts); states with none left out."""

    async def read() -> dict[PayoutStatus, tuple[int, int]]:
        totals = await repository.totals(session)
        for key, (count, sats) in _folded(await repository.changes(session)).totals.items():
            c, s = totals.get(key, (0, 0))
            totals[key] = (c + count, s + sats)
        found = {state: totals.get(PAYOUTS + state.value, (0, 0)) for state in PayoutStatus}
        return {state: figures for state, figures in found.items() if figures != (0, 0)}

    return await consistent(session, read)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def ended(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Subscriptions ever started whose paid time ends in [start, end): the whole days'
    counts, and the index's range for the parts of days at either edge."""
    if end <= start:
        return 0
    first = day_of(start) + timedelta(days=0 if _midnight(day_of(start)) == start else 1)
    last = day_of(end)  # the whole days are [first, last)
    if last <= first:
        return await repository.ended_between(session, start, end)

    async def read() -> int:
        whole = await repository.ends_days(session, first, last)
        for row in await repository.changes(session):
            if row.key == ENDS and row.day is not None and first <= row.day < last:
                whole += int(row.count)
        return whole

    total = await consistent(session, read)
    total += await repository.ended_between(session, start, _midnight(first))
    return total + await repository.ended_between(session, _midnight(last), end)


async def ends_per_day(session: AsyncSession) -> dict[date, int]:
    """Every day's count (the check's)."""

    async def read() -> dict[date, int]:
        found = await repository.all_ends_days(session)
        for row in await repository.changes(session):
            if row.key == ENDS and row.day is not None:
                found[row.day] = found.get(row.day, 0) + int(row.count)
        return {day: n for day, n in found.items() if n}

    return await consistent(session, read)
