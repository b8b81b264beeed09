"""The dashboard's counts of the subscriptions and payouts, read from the tallies
(``satshare.tallies``: kept by every write that changes them) plus what time alone changes,
so each costs the same however many subscriptions and payouts there are; and the rebuild
that counts the tallies anew from the rows.

- Subscriptions *active now* are those in the active state whose paid time has not run out:
  the tallies count the first part; a read takes off the ones still marked active whose end
  has passed (``lapsed``: those the expiry job has not reached yet, normally none or a few).
- *Churn* in [start, end): subscriptions ever started whose paid time ends in it, the whole
  days from the per-day tallies, the parts of days at the edges from the end index.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.payouts.models import PayoutStatus
from satshare.reports import repository
from satshare.tallies import service as tallies
from satshare.tallies.models import ACTIVE, PAYOUTS, SUBSCRIBERS


@dataclass(frozen=True, slots=True)
class Counts:
    """The subscriptions active now per plan (how many, the sum of their last bitcoin
    payments), their distinct users, and the payouts per state (how many, their amounts)."""

    active: dict[str, tuple[int, int]]
    subscribers: int
    payouts: dict[PayoutStatus, tuple[int, int]]


def _payouts(totals: dict[str, tuple[int, int]]) -> dict[PayoutStatus, tuple[int, int]]:
    found = {state: totals.get(PAYOUTS + state.value, (0, 0)) for state in PayoutStatus}
    return {state: figures for state, figures in found.items() if figures != (0, 0)}


async def counts(session: AsyncSession, now: datetime) -> Counts:
    async def read() -> Counts:
        totals = await tallies.totals(session)
        lapsed = await repository.lapsed_per_plan(session, now)
        active: dict[str, tuple[int, int]] = {}
        for key, (count, sats) in totals.items():
            if key.startswith(ACTIVE):
                plan = key.removeprefix(ACTIVE)
                gone = lapsed.get(plan, (0, 0))
                if (count - gone[0], sats - gone[1]) != (0, 0):
                    active[plan] = (count - gone[0], sats - gone[1])
        subscribers = totals.get(SUBSCRIBERS, (0, 0))[0]
        subscribers -= await repository.lapsed_subscribers(session, now)
        return Counts(active, subscribers, _payouts(totals))

    return await tallies.consistent(session, read)


async def payouts(session: AsyncSession) -> dict[PayoutStatus, tuple[int, int]]:
    """The payouts per state (how many, their amounts); states with none left out."""

    async def read() -> dict[PayoutStatus, tuple[int, int]]:
        return _payouts(await tallies.totals(session))

    return await tallies.consistent(session, read)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def ended(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Subscriptions ever started whose paid time ends in [start, end)."""
    if end <= start:
        return 0
    first = tallies.day_of(start)
    if _midnight(first) != start:
        first += timedelta(days=1)
    last = tallies.day_of(end)  # the whole days are [first, last)
    if last <= first:
        return await repository.ended_between(session, start, end)

    async def read() -> int:
        return await tallies.ends_between(session, first, last)

    total = await tallies.consistent(session, read)
    total += await repository.ended_between(session, start, _midnight(first))
    return total + await repository.ended_between(session, _midnight(last), end)


async def rebuild(session: AsyncSession) -> None:
    """Count every tally anew from the subscriptions and payouts (their writers wait)."""
    await repository.hold_counted_tables(session)
    totals = {ACTIVE + plan: f for plan, f in (await repository.active_per_plan(session)).items()}
    states = await repository.payouts_per_state(session)
    totals.update({PAYOUTS + state: f for state, f in states.items()})
    ends: defaultdict[date, int] = defaultdict(int)
    for moment in await repository.ends_of_started(session):
        ends[tallies.day_of(moment)] += 1
    await tallies.replace(session, totals, await repository.active_per_user(session), ends)
