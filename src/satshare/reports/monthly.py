"""The monthly financial report: the month's figures, day by day, and one line per
affiliate, all sums of the ledger's postings (the ledger's figures: see
``reports.transparency``), read for the month only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import InvalidRequest
from satshare.ledger.figures import service as figures
from satshare.reports.transparency import Figures, figures_of
from satshare.users import repository as users_repo

#: Matched whole (``$`` would allow a trailing newline); \d would take any script's digits.
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
#: Reportable years: the ledger cannot predate 2000, and the month after the last one must
#: still be a datetime (they stop at 9999-12-31).
FIRST_YEAR, LAST_YEAR = 2000, 9998


@dataclass(frozen=True, slots=True)
class Day:
    date: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class AffiliateLine:
    user_id: int
    username: str | None
    referred_sales_sats: int
    commissions: int
    earned_sats: int
    clawed_back_sats: int
    paid_out_sats: int
    owed_sats: int  # at the end of the month


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    month: str
    totals: Figures
    owed_at_start_sats: int
    owed_at_end_sats: int
    days: list[Day]
    affiliates: list[AffiliateLine]
    generated_at: datetime


def month_bounds(month: str) -> tuple[datetime, datetime]:
    match = _MONTH.fullmatch(month or "")
    if (
        not match
        or not 1 <= int(match.group(2)) <= 12
        or not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR
    ):
        raise InvalidRequest(
            f"month must look like 2026-11, from {FIRST_YEAR}-01 to {LAST_YEAR}-12, not {month!r}",
            field="month",
        )
    start = datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def current_month(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


async def monthly_report(session: AsyncSession, month: str, now: datetime) -> MonthlyReport:
    start, end = month_bounds(month)
    data = await figures.days(session, start.date(), end.date())
    days = []
    totals = Figures()
    owed_end = data.owed_before
    day = start
    while day < end:
        sums = data.days.get(day.date(), {})
        day_figures = figures_of(sums)
        totals.add(day_figures)
        owed_end += sums.get("owed_delta_sats", 0)
        days.append(Day(day.strftime("%Y-%m-%d"), day_figures))
        day += timedelta(days=1)
    lines = await affiliate_lines(session, start, end)
    return MonthlyReport(
        month=month,
        totals=totals,
        owed_at_start_sats=data.owed_before,
        owed_at_end_sats=owed_end,
        days=days,
        affiliates=lines,
        generated_at=now,
    )


async def affiliate_lines(
    session: AsyncSession, start: datetime, end: datetime
) -> list[AffiliateLine]:
    """One line per affiliate with figures in [start, end) or owed money at its end, most
    earned first (then by id)."""
    window = await figures.users_between(session, start.date(), end.date())
    owed = await figures.owed_per_user(session, end.date())
    active = {
        uid
        for uid, f in window.items()
        if f.get("earned_sats") or f.get("paid_out_sats") or f.get("commissions")
    } | set(owed)
    names = await users_repo.usernames(session, active)
    lines = [
        AffiliateLine(
            user_id=uid,
            username=names.get(uid),
            referred_sales_sats=window.get(uid, {}).get("referred_sales_sats", 0),
            commissions=window.get(uid, {}).get("commissions", 0),
            earned_sats=window.get(uid, {}).get("earned_sats", 0),
            clawed_back_sats=window.get(uid, {}).get("clawed_back_sats", 0),
            paid_out_sats=window.get(uid, {}).get("paid_out_sats", 0),
            owed_sats=owed.get(uid, 0),
        )
        for uid in active
    ]
    lines.sort(key=lambda line: (-line.earned_sats, line.user_id))
    return lines
