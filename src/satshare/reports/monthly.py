"""The monthly financial report: the month's figures, day by day, and one line per
affiliate, all sums of the ledger's postings (see ``transparency.aggregate``)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import InvalidRequest
from satshare.reports.transparency import Figures, aggregate
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
    data = await aggregate(session, "%Y-%m-%d", start, end)
    days = []
    totals = Figures()
    day = start
    while day < end:
        key = day.strftime("%Y-%m-%d")
        figures = data.periods.get(key, Figures())
        totals.add(figures)
        days.append(Day(key, figures))
        day += timedelta(days=1)
    owed_end = data.owed_before + sum(data.owed_delta.values())
    active = {
        uid: f
        for uid, f in data.affiliates.items()
        if f.owed_sats or f.earned_sats or f.paid_out_sats or f.commissions
    }
    names = await users_repo.usernames(session, active)
    lines = [
        AffiliateLine(user_id=uid, username=names.get(uid), **asdict(figures))
        for uid, figures in sorted(active.items(), key=lambda item: -item[1].earned_sats)
    ]
    return MonthlyReport(
        month=month,
        totals=totals,
        owed_at_start_sats=data.owed_before,
        owed_at_end_sats=owed_end,
        days=days,
        affiliates=lines,
        generated_at=now,
    )
