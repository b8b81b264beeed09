"""The admin dashboard's figures for a period [start, end).

The money figures are sums of ledger postings, per day (the ledger's figures, kept by the
sealer) — the same definitions as the transparency page and the monthly report, so each
equals what ``satshare ledger export`` recomputes:

- gross, owner share, affiliate share, paid out: summed over the days of the period;
- owed to affiliates: at the end of the period (balances plus payouts held, not yet paid).

The rest are counts of the operational tables, kept as tallies by every write that changes
them (``satshare.tallies``, read in ``reports.tallied``: constant time, whatever the number
of subscriptions or payouts):

- MRR: what the subscriptions active now bring per 30 days (each one's last bitcoin payment
  * 30 / its plan's days; Stars-paid ones are left out, the ledger has no sats for them);
- new vs renewals: payments settled in the period, a renewal being a payment for a
  subscription that was paid before;
- churn: subscriptions whose paid time ran out in the period and that were not renewed;
- funnel: referral links opened, users registered, and of those how many have paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ledger.figures import service as figures
from satshare.ledger.figures.models import WINDOWS
from satshare.notifications.messages import (
    InvoiceGone,
    InvoiceMismatch,
    PaymentInvalidated,
    PayoutContradiction,
    PayoutUnknown,
)
from satshare.payouts.models import PayoutStatus
from satshare.reports import repository, tallied
from satshare.reports.transparency import Figures, figures_of

#: The admin alerts the dashboard lists.
ALERT_KINDS = tuple(
    m.kind
    for m in (InvoiceMismatch, InvoiceGone, PaymentInvalidated, PayoutUnknown, PayoutContradiction)
)
#: Longest period a dashboard covers.
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class Day:
    date: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class TopAffiliate:
    user_id: int
    username: str | None
    earned_sats: int
    commissions: int
    referred_sales_sats: int


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str
    created_at: datetime
    payload: dict[str, object]


@dataclass
class Dashboard:
    start: datetime
    end: datetime
    totals: Figures
    owed_sats: int
    days: list[Day]
    mrr_sats: int
    active_subscriptions: int
    active_subscribers: int
    new_payments: int
    renewals: int
    churned: int
    funnel_clicks: int
    funnel_registered: int
    funnel_paid: int
    top_affiliates: list[TopAffiliate]
    payouts: dict[PayoutStatus, tuple[int, int]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)


def period(
    preset: str, now: datetime, start: date | None = None, end: date | None = None
) -> tuple[datetime, datetime]:
    """[start, end) of ``today``, ``7d``, ``30d`` (the last 7 / 30 days, today included) or
    ``custom`` (``start`` to ``end``, both days included), in UTC."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    if preset == "custom" and start is not None and end is not None:
        if end < start:
            start, end = end, start
        first = datetime.combine(start, time(), tzinfo=UTC)
        last = datetime.combine(end, time(), tzinfo=UTC) + timedelta(days=1)
        if (last - first).days > MAX_DAYS:
            first = last - timedelta(days=MAX_DAYS)
        return first, last
    days = {"today": 1, "7d": 7, "30d": 30}.get(preset, 30)
    return today - timedelta(days=days - 1), today + timedelta(days=1)


def mrr(paid_per_plan_days: dict[int, int]) -> int:
    """Per 30 days: each subscription's last payment * 30 / its plan's days, summed exactly
    and rounded down once (whole sats)."""
    total = sum(
        (Fraction(sats * 30, days) for days, sats in paid_per_plan_days.items() if days),
        Fraction(0),
    )
    return int(total)


async def top_affiliates(
    session: AsyncSession, start: datetime, end: datetime, now: datetime, top: int
) -> list[TopAffiliate]:
    """The affiliates who earned most in [start, end) (then by id), those with neither
    earnings nor commissions left out. The last 1, 7 or 30 days (today included) are kept as
    counters per affiliate, so those read only the top rows; other periods sum their days."""
    today = figures.day_of(now)
    days = (end - start).days
    ranked: list[tuple[int, int, int, int]] | None = None
    if end.date() == today + timedelta(days=1) and days in WINDOWS:
        earned, commissions = f"earned_{days}d", f"commissions_{days}d"
        rows = await figures.ranking(
            session, earned, top, today, window=True, nonzero=(earned, commissions)
        )
        if rows is not None:
            ranked = [
                (
                    r.user_id,
                    r.figures[earned],
                    r.figures[commissions],
                    r.figures[f"referred_sales_{days}d"],
                )
                for r in rows
            ]
    if ranked is None:
        window = await figures.users_between(session, start.date(), end.date())
        ranked = sorted(
            (
                (
                    uid,
                    f.get("earned_sats", 0),
                    f.get("commissions", 0),
                    f.get("referred_sales_sats", 0),
                )
                for uid, f in window.items()
                if f.get("earned_sats") or f.get("commissions")
            ),
            key=lambda row: (-row[1], row[0]),
        )[:top]
    names = await repository.usernames(session, [row[0] for row in ranked])
    return [
        TopAffiliate(
            user_id=uid,
            username=names.get(uid),
            earned_sats=earned_sats,
            commissions=count,
            referred_sales_sats=referred,
        )
        for uid, earned_sats, count, referred in ranked
    ]


async def dashboard(
    session: AsyncSession, start: datetime, end: datetime, now: datetime, top: int = 10
) -> Dashboard:
    data = await figures.days(session, start.date(), end.date())
    days: list[Day] = []
    totals = Figures()
    owed = data.owed_before
    # Payments and the funnel's paying users are counted per day too (by the sealer).
    counts: dict[str, int] = {"new_payments": 0, "renewals": 0, "paid_registrations": 0}
    day = start
    while day < end:
        sums = data.days.get(day.date(), {})
        day_figures = figures_of(sums)
        totals.add(day_figures)
        owed += sums.get("owed_delta_sats", 0)
        for name in counts:
            counts[name] += sums.get(name, 0)
        days.append(Day(day.strftime("%Y-%m-%d"), day_figures))
        day += timedelta(days=1)
    counted = await tallied.counts(session, now)
    durations = await repository.plan_days(session)
    paid_per_plan_days: dict[int, int] = {}
    for plan, (_, sats) in counted.active.items():
        days_of_plan = durations.get(plan, 0)
        paid_per_plan_days[days_of_plan] = paid_per_plan_days.get(days_of_plan, 0) + sats
    clicks, registered = await repository.opened_and_registered(session, start, end)
    alerts = await repository.recent_alerts(session, ALERT_KINDS, 10)
    return Dashboard(
        start=start,
        end=end,
        totals=totals,
        owed_sats=owed,
        days=days,
        mrr_sats=mrr(paid_per_plan_days),
        active_subscriptions=sum(count for count, _ in counted.active.values()),
        active_subscribers=counted.subscribers,
        new_payments=counts["new_payments"],
        renewals=counts["renewals"],
        churned=await tallied.ended(session, start, min(end, now)),
        funnel_clicks=clicks,
        funnel_registered=registered,
        funnel_paid=counts["paid_registrations"],
        top_affiliates=await top_affiliates(session, start, end, now, top),
        payouts=counted.payouts,
        alerts=[
            Alert(id=a.id, kind=a.kind, created_at=a.created_at, payload=dict(a.payload))
            for a in alerts
        ],
    )
