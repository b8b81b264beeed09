"""The monthly financial report: the month's figures, day by day, and one line per
affiliate, all sums of the ledger's postings (the ledger's figures: see
``reports.transparency``), read for the month only.

The affiliate lines are those of every affiliate with figures that month or owed money at
its end, most earned first (then by user id). The JSON (the API, the admin's pages) shows a
page of them — ``limit`` lines after a ``cursor`` — so that its cost does not follow the
number of affiliates: the top earners are the top rows of the per-month figures' index. A
page that reaches the lines with nothing earned (affiliates only owed, paid out or clawed
back that month) reads the whole list. The files (CSV, XLSX, the bot's /report) hold every
line."""

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
#: Affiliate lines in a page of the JSON report: by default, and at most.
PAGE_LINES, MAX_PAGE_LINES = 100, 1000
#: A page cursor: the last line's earned sats and user id ("-250:42").
_CURSOR = re.compile(r"(-?[0-9]{1,19}):([0-9]{1,19})")


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
    #: A page of the lines: the cursor of the next page (None: this was the last).
    next_cursor: str | None = None


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


def parse_cursor(cursor: str | None) -> tuple[int, int] | None:
    """(earned sats, user id) of the line a page starts after."""
    if cursor is None:
        return None
    match = _CURSOR.fullmatch(cursor)
    if not match:
        raise InvalidRequest(
            f"cursor must be a next_cursor of the report, like -250:42, not {cursor!r}",
            field="cursor",
        )
    return int(match.group(1)), int(match.group(2))


def _cursor_of(line: AffiliateLine) -> str:
    return f"{line.earned_sats}:{line.user_id}"


async def monthly_report(
    session: AsyncSession,
    month: str,
    now: datetime,
    *,
    limit: int | None = None,
    cursor: str | None = None,
) -> MonthlyReport:
    """The month's report; ``limit``: only a page of the affiliate lines (after ``cursor``),
    None: all of them."""
    start, end = month_bounds(month)
    after = parse_cursor(cursor)
    if limit is not None and not 1 <= limit <= MAX_PAGE_LINES:
        raise InvalidRequest(f"limit must be 1 to {MAX_PAGE_LINES}, not {limit}", field="limit")
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
    next_cursor = None
    if limit is None:
        lines = await affiliate_lines(session, start, end)
    else:
        lines, next_cursor = await page_of_lines(session, start, end, limit, after)
    return MonthlyReport(
        month=month,
        totals=totals,
        owed_at_start_sats=data.owed_before,
        owed_at_end_sats=owed_end,
        days=days,
        affiliates=lines,
        generated_at=now,
        next_cursor=next_cursor,
    )


async def page_of_lines(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    limit: int,
    after: tuple[int, int] | None,
) -> tuple[list[AffiliateLine], str | None]:
    """``limit`` lines after the line ``after`` (its earned sats and user id), and the next
    page's cursor (None: no lines after these)."""
    top = await figures.top_of_month(session, start.date(), limit + 1, after)
    if len(top) > limit:
        # The whole page earned something: its lines are the index's top rows.
        page = top[:limit]
        ids = [r.user_id for r in page]
        owed = await figures.owed_per_user(session, end.date(), ids)
        names = await users_repo.usernames(session, ids)
        lines = [_line(r.user_id, names.get(r.user_id), r.figures, owed) for r in page]
        return lines, _cursor_of(lines[-1])
    # The page reaches the lines with nothing earned: from the whole list.
    every = await affiliate_lines(session, start, end)
    if after is not None:
        every = [
            line for line in every if (-line.earned_sats, line.user_id) > (-after[0], after[1])
        ]
    lines = every[:limit]
    return lines, _cursor_of(lines[-1]) if len(every) > limit else None


def _line(uid: int, name: str | None, sums: dict[str, int], owed: dict[int, int]) -> AffiliateLine:
    return AffiliateLine(
        user_id=uid,
        username=name,
        referred_sales_sats=sums.get("referred_sales_sats", 0),
        commissions=sums.get("commissions", 0),
        earned_sats=sums.get("earned_sats", 0),
        clawed_back_sats=sums.get("clawed_back_sats", 0),
        paid_out_sats=sums.get("paid_out_sats", 0),
        owed_sats=owed.get(uid, 0),
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
    lines = [_line(uid, names.get(uid), window.get(uid, {}), owed) for uid in active]
    lines.sort(key=lambda line: (-line.earned_sats, line.user_id))
    return lines
