"""Every figure recomputed from the ledger itself, compared with what the reads answer.

The reads (transparency, reports, dashboard, balances, referral figures, leaderboard) use
the ledger's figures, sums the sealer keeps (``ledger.figures``). This module computes the
same numbers the slow way — a scan of every posting (``transparency.aggregate``), sums over
an account's postings, counts over the payments — and lists every difference. ``satshare
figures check`` runs it; the tests run it on a history with refunds, clawbacks and payouts.
It reads the whole ledger several times: a check, never a page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.affiliates import repository as affiliates_repo
from satshare.affiliates import service as affiliates
from satshare.affiliates import stats
from satshare.ledger import accounts
from satshare.ledger import repository as ledger_repo
from satshare.ledger.figures import repository as figures_repo
from satshare.ledger.figures import service as figures
from satshare.ledger.figures.models import WINDOWS
from satshare.ledger.models import PAYOUT_KINDS, SALE_KINDS
from satshare.payments import referrals
from satshare.payments import repository as payments_repo
from satshare.reports import dashboard as dashboards
from satshare.reports import monthly
from satshare.reports import repository as reports_repo
from satshare.reports.transparency import AffiliateFigures, Figures, aggregate, figures_of
from satshare.tallies import service as tallies
from satshare.users import repository as users_repo

#: Hold periods the pending commissions are checked for.
HOLD_DAYS = (1, 7, 30)


@dataclass
class Report:
    checked: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def compare(self, what: str, read: object, recomputed: object) -> None:
        self.checked += 1
        if read != recomputed:
            self.differences.append(f"{what}: figures say {read!r}, the ledger {recomputed!r}")


async def check(session: AsyncSession, now: datetime, *, months: bool = True) -> Report:
    """Compare every figure with its recomputation (``months``: also each month's lines)."""
    report = Report()
    await _days(session, report)
    affiliate_ids = await _affiliates(session, report)
    await _windows(session, report, now)
    if months:
        await _months(session, report)
    await _accounts(session, report, affiliate_ids, now)
    await _referrals(session, report, now)
    await _dashboard(session, report, now)
    return report


async def _days(session: AsyncSession, report: Report) -> None:
    data = await aggregate(session, "%Y-%m-%d")
    read = await figures.days(session)
    keys = {d.isoformat() for d in read.days} | set(data.periods)
    for key in sorted(keys):
        sums = read.days.get(date.fromisoformat(key), {})
        report.compare(f"day {key}", figures_of(sums), data.periods.get(key, Figures()))
        report.compare(
            f"day {key} owed change", sums.get("owed_delta_sats", 0), data.owed_delta.get(key, 0)
        )
    report.compare("entries", read.entries, await ledger_repo.count_entries(session))


def _affiliate(sums: dict[str, int]) -> AffiliateFigures:
    return AffiliateFigures(**{f.name: sums.get(f.name, 0) for f in fields(AffiliateFigures)})


async def _affiliates(session: AsyncSession, report: Report) -> set[int]:
    """All-time figures per affiliate; returns every user either side knows of."""
    data = await aggregate(session, "%Y")
    known = set(data.affiliates) | set(await figures_repo.user_ids(session))
    for uid in sorted(known):
        mine = await figures.user(session, uid)
        report.compare(
            f"user {uid} all time", _affiliate(mine), data.affiliates.get(uid, AffiliateFigures())
        )
    return known


async def _windows(session: AsyncSession, report: Report, now: datetime) -> None:
    today = figures.day_of(now)
    rest = await figures.remainder(session)
    if not rest.windows_ready(today):
        report.differences.append(
            f"the rolling windows end on {rest.rolled_day}, not today ({today}): the sealer "
            "has not run today"
        )
        return
    for days in WINDOWS:
        start = datetime.combine(today - timedelta(days=days - 1), time(), tzinfo=UTC)
        data = await aggregate(session, "%Y", start, None)
        known = set(data.affiliates) | set(await figures_repo.user_ids(session))
        for uid in sorted(known):
            mine = await figures.user(session, uid)
            expected = data.affiliates.get(uid, AffiliateFigures())
            report.compare(
                f"user {uid} last {days} days",
                (
                    mine[f"earned_{days}d"],
                    mine[f"commissions_{days}d"],
                    mine[f"referred_sales_{days}d"],
                ),
                (expected.earned_sats, expected.commissions, expected.referred_sales_sats),
            )


async def _months(session: AsyncSession, report: Report) -> None:
    """Each month's affiliate lines (the monthly report's) against a scan of that month."""
    read = await figures.days(session)
    for month in sorted({d.strftime("%Y-%m") for d in read.days}):
        start, end = monthly.month_bounds(month)
        data = await aggregate(session, "%Y-%m-%d", start, end)
        expected = {
            uid: asdict(f)
            for uid, f in data.affiliates.items()
            if f.owed_sats or f.earned_sats or f.paid_out_sats or f.commissions
        }
        lines = {
            line.user_id: {f.name: getattr(line, f.name) for f in fields(AffiliateFigures)}
            for line in await monthly.affiliate_lines(session, start, end)
        }
        report.compare(f"month {month} affiliate lines", lines, expected)
        # The JSON's first page: the top rows of the per-month figures, in the lines' order.
        ranked = sorted(expected, key=lambda uid: (-expected[uid]["earned_sats"], uid))
        page, _ = await monthly.page_of_lines(session, start, end, monthly.PAGE_LINES, None)
        report.compare(
            f"month {month} first page of affiliate lines",
            [line.user_id for line in page],
            ranked[: monthly.PAGE_LINES],
        )


async def _accounts(
    session: AsyncSession, report: Report, user_ids: set[int], now: datetime
) -> None:
    """Balances, earnings per month and pending commissions against each account's postings."""
    for uid in sorted(user_ids):
        code = accounts.affiliate_payable(uid)
        balance = await affiliates.balance(session, uid, 0, now)
        report.compare(
            f"user {uid} balance",
            (balance.balance_sats, balance.total_earned_sats),
            (
                -await affiliates_repo.account_sum(session, code),
                -await affiliates_repo.account_sum(session, code, excluding=PAYOUT_KINDS),
            ),
        )
        for hold in HOLD_DAYS:
            since = now - timedelta(days=hold)
            report.compare(
                f"user {uid} pending ({hold} days)",
                await figures.pending_commissions(session, uid, since, now),
                -await affiliates_repo.recent_unrefunded_commissions(session, code, since),
            )
        months: dict[str, list[int]] = {}
        for created_at, kind, amount in await affiliates_repo.commission_postings(
            session, code, excluding=PAYOUT_KINDS
        ):
            month = months.setdefault(created_at.strftime("%Y-%m"), [0, 0])
            month[0] -= amount
            month[1] += kind in SALE_KINDS
        report.compare(
            f"user {uid} earnings per month",
            [
                (m.month, m.earned_sats, m.commissions)
                for m in await stats.earnings_by_month(session, uid)
            ],
            [(m, e, c) for m, (e, c) in sorted(months.items())],
        )


async def _referrals(session: AsyncSession, report: Report, now: datetime) -> None:
    """Referral counts, paying referrals and the leaderboard against the payments."""
    for uid in await users_repo.referrer_ids(session):
        _, clicks = await users_repo.referral_counts(session, uid)
        mine = await referrals.referral_stats(session, uid)
        report.compare(
            f"user {uid} referrals",
            (mine.registered, mine.paying, mine.referred_sales_sats, clicks),
            (
                *await payments_repo.referred_counts(session, uid),
                await affiliates_repo.click_count(session, uid),
            ),
        )
    everyone = 10**9
    for by in get_args(stats.Ranking):
        for period in get_args(stats.Period):
            rows = await referrals.leaderboard(session, by, period, now, everyone)
            report.compare(
                f"leaderboard {by} {period}",
                [(row.user_id, row.value) for row in rows],
                await payments_repo.referrer_ranking(
                    session, by, stats.since_for(period, now), everyone
                ),
            )


async def _dashboard(session: AsyncSession, report: Report, now: datetime) -> None:
    """The dashboard's counts per day (payments new and renewed, registrations that paid)
    and its churn over each month and the last 1, 7 and 30 days; its tallies (subscriptions
    active now, subscribers, MRR, payouts per state, paid time ending per day) against
    counts over the subscriptions and payouts themselves."""
    read = await figures.days(session)
    today = datetime.combine(figures.day_of(now), time(), tzinfo=UTC)
    periods = [
        (f"last {days} days", today - timedelta(days=days - 1), today + timedelta(days=1))
        for days in WINDOWS
    ]
    for month in sorted({d.strftime("%Y-%m") for d in read.days}):
        periods.append((f"month {month}", *monthly.month_bounds(month)))
    data = None
    for label, start, end in periods:
        data = await dashboards.dashboard(session, start, end, now)
        clicks, registered, paid = await reports_repo.funnel(session, start, end)
        report.compare(
            f"dashboard {label} churned (tallied)",
            data.churned,
            await reports_repo.churned(session, start, end, now),
        )
        report.compare(
            f"dashboard {label} counts",
            (
                data.new_payments,
                data.renewals,
                data.funnel_clicks,
                data.funnel_registered,
                data.funnel_paid,
            ),
            (*await reports_repo.payments_in(session, start, end), clicks, registered, paid),
        )
    scanned = await reports_repo.active_subscriptions(session, now)
    per_days: dict[int, int] = {}
    for _, _, sats, days in scanned:
        if sats:
            per_days[days] = per_days.get(days, 0) + sats
    assert data is not None  # the periods include the last days
    report.compare(
        "active subscriptions (count, subscribers, MRR; tallied)",
        (data.active_subscriptions, data.active_subscribers, data.mrr_sats),
        (len(scanned), len({user for _, user, _, _ in scanned}), dashboards.mrr(per_days)),
    )
    report.compare(
        "payouts per state (count, sats; tallied)",
        data.payouts,
        await reports_repo.payouts_by_status(session),
    )
    counted = await tallies.ends_per_day(session)
    ends: dict[date, int] = {}
    for moment in await reports_repo.ends_of_started(session):
        ends[tallies.day_of(moment)] = ends.get(tallies.day_of(moment), 0) + 1
    for day in sorted(counted.keys() | ends.keys()):
        report.compare(
            f"subscriptions whose paid time ends on {day} (tallied)",
            counted.get(day, 0),
            ends.get(day, 0),
        )
