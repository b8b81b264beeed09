"""Keeping the figures (the sealer, the rebuild) and reading them exactly.

The sealer folds each batch of entries it chains, in the same transaction, so the tables
always hold the sum of exactly the sealed entries. A read adds the entries still waiting in
the seal queue (normally a handful) with the same fold, so what it answers covers every
committed entry, as a scan of the ledger would. A read that straddles a sealer commit (on
PostgreSQL a statement sees what committed before it) notices the state row's version
change and reads again; after three tries it holds the sealer off with a share lock for
that one read (``db.read_between_commits``).

Rolling windows (today, 7 and 30 days, today included) are counters on the user's row:
sums over the days after ``rolled_day`` minus the window. The sealer moves them to its
today (``_roll``); a read whose today is another day cannot use them and says so
(``windows_ready``), and its caller sums the days instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import read_between_commits
from satshare.ledger.figures import repository
from satshare.ledger.figures.fold import (
    WINDOWED,
    WINDOWS_OF,
    Batch,
    BuyerState,
    buyer_changes,
    buyer_state,
    fold,
    window_column,
)
from satshare.ledger.figures.fold import (
    day_of as day_of,  # the UTC day of a moment, as the figures count days
)
from satshare.ledger.figures.models import (
    FiguresBuyerDay,
    FiguresDay,
    FiguresUser,
    FiguresUserDay,
    FiguresUserMonth,
)

T = TypeVar("T")

#: Reads retried this often when the sealer commits under them, before taking a share lock.
OPTIMISTIC_TRIES = 3
#: Entries folded per transaction by the rebuild.
REBUILD_BATCH = 5000


# -- keeping them ----------------------------------------------------------------------------


async def fold_sealed(session: AsyncSession, entry_ids: Sequence[int], now: datetime) -> None:
    """Fold entries the sealer has just chained (in its transaction), and move the rolling
    windows to today. The caller holds the chain head, so no other sealer runs."""
    state = await repository.state(session, lock=True)
    today = day_of(now)
    rolled, changed = state.rolled_day, False
    if rolled != today:
        await _roll(session, rolled, today)
        rolled, changed = today, True
    if entry_ids:
        batch = fold(await repository.facts(session, entry_ids), rolled)
        await _store(session, batch, rolled)
        changed = True
    if changed:
        await repository.set_state(session, state.version + 1, rolled)


async def _roll(session: AsyncSession, rolled: date | None, today: date) -> None:
    """Move every window from ending on ``rolled`` to ending on ``today`` (either way: a
    clock may go back): days leaving a window are taken off it, days entering added."""
    if rolled is None:  # nothing was counted in any window yet
        return
    for name, windows in WINDOWS_OF.items():
        source = next(column for column, short in WINDOWED.items() if short == name)
        for days in windows:
            await _shift(session, window_column(name, days), source, rolled, today, days)
    for days in (7, 30):
        old_edge, new_edge = rolled - timedelta(days=days), today - timedelta(days=days)
        if new_edge > old_edge:
            await repository.shift_buyer_windows(
                session, f"referral_buyers_{days}d", old_edge, new_edge, -1
            )
        else:
            await repository.shift_buyer_windows(
                session, f"referral_buyers_{days}d", new_edge, old_edge, 1
            )


async def _shift(
    session: AsyncSession, column: str, source: str, rolled: date, today: date, days: int
) -> None:
    old_edge, new_edge = rolled - timedelta(days=days), today - timedelta(days=days)
    if new_edge > old_edge:
        await repository.shift_windows(session, column, source, old_edge, new_edge, -1)
    else:
        await repository.shift_windows(session, column, source, new_edge, old_edge, 1)


@dataclass(frozen=True, slots=True)
class Buyers:
    """What the figures hold about the buyers a batch touches, before it."""

    days: dict[int, dict[date, int]]
    sales: dict[int, int]
    referrers: dict[int, int | None]


async def _buyers_before(session: AsyncSession, batch: Batch) -> Buyers:
    referred = sorted(batch.referrers)
    rows = await repository.buyers(session, _touched(batch))
    return Buyers(
        await repository.buyer_days(session, referred) if referred else {},
        {buyer: row.sales for buyer, row in rows.items()},
        {buyer: row.referrer_user_id for buyer, row in rows.items()},
    )


def _touched(batch: Batch) -> list[int]:
    """Buyers a batch changes: by a payment, or by a refund of a referred one's."""
    return sorted(batch.sales.keys() | batch.referrers.keys())


def _resolve_buyers(batch: Batch, before: Buyers, rolled: date | None) -> dict[int, BuyerState]:
    """Each touched buyer's new state, what it changes in their referrer's counts, and
    whether they paid for the first time (their registration day's paid registrations)."""
    for buyer, count in batch.sales.items():
        if count > 0 and before.sales.get(buyer, 0) == 0 and buyer in batch.registered_on:
            batch.days[batch.registered_on[buyer]]["paid_registrations"] += 1
    days_before = before.days
    changes: dict[int, dict[date, int]] = defaultdict(dict)
    for (buyer, day), count in batch.buyer_days.items():
        changes[buyer][day] = changes[buyer].get(day, 0) + count
    states = {}
    for buyer, referrer in batch.referrers.items():
        before_days = days_before.get(buyer, {})
        after_days = dict(before_days)
        for day, count in changes[buyer].items():
            after_days[day] = after_days.get(day, 0) + count
        after = buyer_state(after_days)
        for column, difference in buyer_changes(buyer_state(before_days), after, rolled).items():
            batch.users[referrer][column] += difference
        states[buyer] = after
    return states


async def _store(session: AsyncSession, batch: Batch, rolled: date | None) -> None:
    if batch.sales or batch.referrers:
        before = await _buyers_before(session, batch)
        states = _resolve_buyers(batch, before, rolled)
        await repository.add(
            session,
            FiguresBuyerDay,
            ["buyer_user_id", "day"],
            [(key, {"payments": count}) for key, count in batch.buyer_days.items()],
        )
        await repository.put_buyers(
            session,
            [
                (
                    buyer,
                    batch.referrers.get(buyer, before.referrers.get(buyer)),
                    before.sales.get(buyer, 0) + batch.sales.get(buyer, 0),
                    states[buyer].payments if buyer in states else 0,
                    states[buyer].last_day if buyer in states else None,
                )
                for buyer in _touched(batch)
            ],
        )
    await repository.add(session, FiguresDay, ["day"], [((k,), v) for k, v in batch.days.items()])
    await repository.add(session, FiguresUserDay, ["user_id", "day"], list(batch.user_days.items()))
    months = list(_months_of(batch).items())
    await repository.add(session, FiguresUserMonth, ["user_id", "month"], months)
    users = [((k,), v) for k, v in batch.users.items()]
    await repository.add(session, FiguresUser, ["user_id"], users)


def month_of(day: date) -> date:
    """The first day of the day's month (the key of the per-month figures)."""
    return day.replace(day=1)


def _months_of(batch: Batch, month: date | None = None) -> dict[tuple[int, date], dict[str, int]]:
    """The batch's per-user-and-day changes summed per month (only ``month``'s if given)."""
    found: dict[tuple[int, date], dict[str, int]] = {}
    for (uid, day), delta in batch.user_days.items():
        key = (uid, month_of(day))
        if month is not None and key[1] != month:
            continue
        picked = {c: delta.get(c, 0) for c in repository.MONTH_COLUMNS if delta.get(c)}
        if picked:
            found[key] = _plus(found.get(key, {}), picked)
    return found


async def rebuild(session: AsyncSession, now: datetime) -> int:
    """Empty the figures and fold every sealed entry again, oldest first; the number of
    entries folded. The caller holds the chain head (no sealer runs meanwhile)."""
    state = await repository.state(session, lock=True)
    await repository.clear(session)
    today = day_of(now)
    folded, after = 0, 0
    while ids := await repository.sealed_ids_after(session, after, REBUILD_BATCH):
        await _store(session, fold(await repository.facts(session, ids), today), today)
        folded, after = folded + len(ids), ids[-1]
    await repository.set_state(session, state.version + 1, today)
    return folded


# -- reading them ----------------------------------------------------------------------------


async def consistent(session: AsyncSession, read: Callable[[], Awaitable[T]]) -> T:
    """``read`` (sealed figures plus the queue's remainder) as of one sealer state."""
    return await read_between_commits(
        session,
        read,
        version=lambda: repository.version(session),
        hold=lambda: repository.state(session, share=True),
        tries=OPTIMISTIC_TRIES,
    )


@dataclass(frozen=True, slots=True)
class Remainder:
    """The entries waiting for the sealer, folded."""

    batch: Batch
    rolled_day: date | None

    def windows_ready(self, today: date) -> bool:
        return self.rolled_day == today


async def remainder(session: AsyncSession) -> Remainder:
    """Fold the seal queue, with what it changes in the counts of buyers (which reads the
    touched buyers' rows)."""
    _, rolled = await repository.version(session)
    batch = fold(await repository.facts(session), rolled)
    if batch.sales or batch.referrers:
        _resolve_buyers(batch, await _buyers_before(session, batch), rolled)
    return Remainder(batch, rolled)


def _plus(base: dict[str, int], delta: dict[str, int] | None) -> dict[str, int]:
    if not delta:
        return base
    merged = dict(base)
    for column, change in delta.items():
        merged[column] = merged.get(column, 0) + change
    return merged


@dataclass(frozen=True, slots=True)
class Days:
    """The whole ledger's figures per day in a range, and what was owed before it."""

    days: dict[date, dict[str, int]]
    owed_before: int
    entries: int


async def days(session: AsyncSession, start: date | None = None, end: date | None = None) -> Days:
    """Figures of the days in [start, end) (None: unbounded); ``entries``: all entries."""

    async def read() -> Days:
        rest = await remainder(session)
        found = await repository.days(session, start, end)
        owed = await repository.owed_before(session, start) if start is not None else 0
        for day, delta in rest.batch.days.items():
            if start is not None and day < start:
                owed += delta.get("owed_delta_sats", 0)
            elif end is None or day < end:
                found[day] = _plus(found.get(day, {}), delta)
        entries = await repository.sealed_entries(session) + rest.batch.entries
        return Days(found, owed, entries)

    return await consistent(session, read)


async def user(session: AsyncSession, user_id: int) -> dict[str, int]:
    """One user's figures (all time and rolling windows; zeros when they have none)."""

    async def read() -> dict[str, int]:
        rest = await remainder(session)
        found = (await repository.users(session, [user_id])).get(user_id, _zeros())
        return _plus(found, rest.batch.users.get(user_id))

    return await consistent(session, read)


async def referral_progress(session: AsyncSession, user_id: int) -> tuple[int, int]:
    """An affiliate's paying referrals and their referrals' bitcoin sales (what affiliate
    levels read): the sealed counters plus, of the entries waiting for the sealer, only the
    sales and refunds of buyers they referred. Every referred sale asks this; folding the
    whole queue each time made settlement slower the busier it was (#15)."""

    async def read() -> tuple[int, int]:
        _, rolled = await repository.version(session)
        batch = fold(await repository.facts(session, referrer=user_id), rolled)
        if batch.sales or batch.referrers:
            _resolve_buyers(batch, await _buyers_before(session, batch), rolled)
        found = (await repository.users(session, [user_id])).get(user_id, _zeros())
        mine = _plus(found, batch.users.get(user_id))
        return mine["referral_paying"], mine["referral_sales_sats"]

    return await consistent(session, read)


def _zeros() -> dict[str, int]:
    return dict.fromkeys(repository.USER_COLUMNS, 0)


async def user_days(
    session: AsyncSession, user_id: int, start: date | None = None, end: date | None = None
) -> dict[date, dict[str, int]]:
    """One user's figures per day in [start, end)."""

    async def read() -> dict[date, dict[str, int]]:
        rest = await remainder(session)
        found = await repository.user_days(session, user_id, start, end)
        for (uid, day), delta in rest.batch.user_days.items():
            if uid == user_id and (start is None or day >= start) and (end is None or day < end):
                found[day] = _plus(found.get(day, {}), delta)
        return found

    return await consistent(session, read)


@dataclass(frozen=True, slots=True)
class Ranked:
    user_id: int
    figures: dict[str, int]


async def ranking(
    session: AsyncSession,
    column: str,
    limit: int,
    today: date,
    *,
    window: bool = False,
    nonzero: Sequence[str] = (),
) -> list[Ranked] | None:
    """The first ``limit`` users by ``column`` (highest first, then by id), rows whose
    ``nonzero`` columns (default: ``column``) are all 0 left out. None when ``column`` is a
    ``window`` counter the sealer has not moved to ``today`` yet."""
    checked = tuple(nonzero or (column,))

    async def read() -> list[Ranked] | None:
        rest = await remainder(session)
        if window and not rest.windows_ready(today):
            return None
        touched = {
            uid: delta
            for uid, delta in rest.batch.users.items()
            if any(delta.get(c) for c in {column, *checked})
        }
        # A touched user may fall out of the top: read one more row per touched user.
        top = await repository.top_users(session, column, limit + len(touched), nonzero=checked)
        rows = dict(top)
        rows.update(await repository.users(session, [uid for uid in touched if uid not in rows]))
        merged = [
            Ranked(uid, _plus(rows.get(uid, _zeros()), touched.get(uid)))
            for uid in rows.keys() | touched.keys()
        ]
        kept = [r for r in merged if any(r.figures.get(c) for c in checked)]
        kept.sort(key=lambda r: (-r.figures[column], r.user_id))
        return kept[:limit]

    return await consistent(session, read)


async def users_between(session: AsyncSession, start: date, end: date) -> dict[int, dict[str, int]]:
    """Every user's figures summed over the days in [start, end)."""

    async def read() -> dict[int, dict[str, int]]:
        rest = await remainder(session)
        found = await repository.users_in_days(session, start, end)
        for (uid, day), delta in rest.batch.user_days.items():
            if start <= day < end:
                found[uid] = _plus(found.get(uid, {}), delta)
        return found

    return await consistent(session, read)


async def owed_per_user(
    session: AsyncSession, end: date | None = None, user_ids: Sequence[int] | None = None
) -> dict[int, int]:
    """What each affiliate (or each of ``user_ids``) was owed at the start of day ``end``
    (None: now); those owed nothing are left out."""

    async def read() -> dict[int, int]:
        rest = await remainder(session)
        owed = await repository.owed_per_user(session, end, user_ids)
        wanted = None if user_ids is None else set(user_ids)
        for (uid, day), delta in rest.batch.user_days.items():
            if (end is None or day < end) and (wanted is None or uid in wanted):
                owed[uid] = owed.get(uid, 0) + delta.get("owed_delta_sats", 0)
        return {uid: amount for uid, amount in owed.items() if amount}

    return await consistent(session, read)


async def top_of_month(
    session: AsyncSession, month: date, limit: int, after: tuple[int, int] | None = None
) -> list[Ranked]:
    """The month's (``month``: its first day) first ``limit`` earners — earned > 0, most
    earned first, then by id — after the line ``after`` (earned sats, user id): the top
    rows of an index, whatever the number of affiliates."""

    def later(uid: int, earned: int) -> bool:
        return after is None or (-earned, uid) > (-after[0], after[1])

    async def read() -> list[Ranked]:
        rest = await remainder(session)
        touched = {uid: delta for (uid, _), delta in _months_of(rest.batch, month).items()}
        # A touched user may move in or out of the page: one more row per touched user.
        top = dict(await repository.top_of_month(session, month, limit + len(touched), after))
        missing = [uid for uid in touched if uid not in top]
        top.update(await repository.user_months(session, month, missing))
        merged = [Ranked(uid, _plus(top.get(uid, {}), touched.get(uid))) for uid in top | touched]
        kept = [
            r
            for r in merged
            if r.figures.get("earned_sats", 0) > 0 and later(r.user_id, r.figures["earned_sats"])
        ]
        kept.sort(key=lambda r: (-r.figures["earned_sats"], r.user_id))
        return kept[:limit]

    return await consistent(session, read)


async def pending_commissions(
    session: AsyncSession, user_id: int, since: datetime, now: datetime
) -> int:
    """Commissions credited after ``since`` whose sale was not refunded: whole days from
    the per-day sums, the day ``since`` falls on from the ledger itself."""
    first_whole = day_of(since) + timedelta(days=1)
    whole_days = await user_days(session, user_id, first_whole, None)
    total = sum(d.get("unrefunded_commission_sats", 0) for d in whole_days.values())
    edge_end = datetime.combine(first_whole, datetime.min.time(), tzinfo=since.tzinfo)
    return total + await repository.unrefunded_commissions_on(session, user_id, since, edge_end)


def months(per_day: Iterable[tuple[date, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Per-day figures summed per month ("YYYY-MM")."""
    found: dict[str, dict[str, int]] = {}
    for day, figures in per_day:
        found[day.strftime("%Y-%m")] = _plus(found.get(day.strftime("%Y-%m"), {}), figures)
    return found
