"""Referral statistics over settled payments: who paid, how much, refunds excluded — the
leaderboard, an affiliate's paying referrals and referred sales (the input of affiliate
levels), and the funnel.

They query payments, so they live here, not in ``satshare.affiliates``: payments sits above
affiliates in the domain layering (``tests/test_architecture.py``) and affiliates must not
import payments. ``affiliates.service.terms_for`` takes ``referral_stats`` (or, where only
the level matters, ``level_progress``) as its ``progress`` port."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.affiliates.stats import (
    Funnel,
    LevelProgress,
    MonthEarnings,
    Period,
    Ranking,
    ReferralStats,
    clicks,
    earnings_by_month,
    since_for,
)
from satshare.db import Database
from satshare.ledger.figures import service as figures
from satshare.payments import repository
from satshare.users import repository as users_repo
from satshare.users import service as users


@dataclass(frozen=True, slots=True)
class LeaderRow:
    rank: int
    user_id: int
    name: str | None  # None: the affiliate did not opt in to show a name
    value: int


#: The figure each ranking and period reads (``ledger.figures``): a counter per referrer,
#: kept by the sealer, so a ranking reads its top rows, never the payments.
RANKED_BY: dict[tuple[str, str], str] = {
    ("sales", "all"): "referral_value_sats",
    ("sales", "month"): "referral_value_30d",
    ("sales", "week"): "referral_value_7d",
    ("referrals", "all"): "referral_paying",
    ("referrals", "month"): "referral_buyers_30d",
    ("referrals", "week"): "referral_buyers_7d",
}


async def leaderboard(
    session: AsyncSession, by: Ranking, period: Period, now: datetime, limit: int = 10
) -> list[LeaderRow]:
    """Affiliates ranked by paying referrals (distinct buyers) or referred sales (sats, Stars
    sales at their sats value) in the period (the last 7 or 30 days, today included, or all
    time). Equal values share a rank."""
    column = RANKED_BY[(by, period)]
    top = await figures.ranking(session, column, limit, figures.day_of(now), window=period != "all")
    if top is not None:
        ranked = [(row.user_id, row.figures[column]) for row in top]
    else:  # the sealer has not moved the windows to today yet: count the payments
        ranked = await repository.referrer_ranking(session, by, since_for(period, now), limit)
    names = await users_repo.leaderboard_names(session, [u for u, _ in ranked])
    rows: list[LeaderRow] = []
    for position, (user_id, amount) in enumerate(ranked, start=1):
        rank = rows[-1].rank if rows and rows[-1].value == amount else position
        rows.append(LeaderRow(rank, user_id, names.get(user_id), amount))
    return rows


async def referral_stats(session: AsyncSession, user_id: int) -> ReferralStats:
    """The affiliate's own direct referrals: registered, paying, and what they paid (in
    bitcoin), refunds left out: counters, so this costs the same for any affiliate."""
    registered, _ = await users_repo.referral_counts(session, user_id)
    mine = await figures.user(session, user_id)
    return ReferralStats(registered, mine["referral_paying"], mine["referral_sales_sats"])


async def level_progress(session: AsyncSession, user_id: int) -> LevelProgress:
    """What the affiliate's level depends on (``affiliates.terms_for``'s ``progress`` on
    every referred sale): their paying referrals and referred sales, without the sign-ups."""
    paying, sales_sats = await figures.referral_progress(session, user_id)
    return LevelProgress(paying, sales_sats)


async def funnel(session: AsyncSession, user_id: int) -> Funnel:
    referrals = await referral_stats(session, user_id)
    return Funnel(await clicks(session, user_id), referrals.registered, referrals.paying)


async def top(
    db: Database, by: Ranking, period: Period, now: datetime, limit: int = 10
) -> list[LeaderRow]:
    """The leaderboard, read in its own unit of work (for the adapters)."""
    async with db.reading() as session:
        return await leaderboard(session, by, period, now, limit)


async def affiliate_figures(db: Database, user_id: int) -> tuple[Funnel, Sequence[MonthEarnings]]:
    """An affiliate's funnel and earnings per month (NotFound for an unknown user)."""
    async with db.reading() as session:
        await users.require(session, user_id)
        return await funnel(session, user_id), await earnings_by_month(session, user_id)
