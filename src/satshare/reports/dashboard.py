"""The admin dashboard's figures for a period [start, end).

The money figures are ``transparency.aggregate``'s sums of ledger postings, per day — the
same definitions as the transparency page and the monthly report, so each equals what
``satshare ledger export`` recomputes:

- gross, owner share, affiliate share, paid out: summed over the days of the period;
- owed to affiliates: at the end of the period (balances plus payouts held, not yet paid).

The rest are counts of the operational tables:

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

from satshare.notifications.messages import (
    InvoiceGone,
    InvoiceMismatch,
    PaymentInvalidated,
    PayoutContradiction,
    PayoutUnknown,
)
from satshare.payouts.models import PayoutStatus
from satshare.reports import repository
from satshare.reports.transparency import Figures, aggregate

#: The admin alerts the dashboard lists.
ALERT_KINDS = tuple(
    m.kind
    for m in (InvoiceMismatch, InvoiceGone, PaymentInvalidated, PayoutUnknown, PayoutContradiction)
)
#: Longest period a dashboard covers (the figures scan the ledger up to its end).
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


def _mrr(active: list[tuple[int, int, int | None, int]]) -> int:
    total = sum(
        (Fraction(sats * 30, days) for _, _, sats, days in active if sats and days), Fraction(0)
    )
    return int(total)  # whole sats, rounded down once for the sum


async def dashboard(
    session: AsyncSession, start: datetime, end: datetime, now: datetime, top: int = 10
) -> Dashboard:
    data = await aggregate(session, "%Y-%m-%d", start, end)
    days: list[Day] = []
    totals = Figures()
    day = start
    while day < end:
        key = day.strftime("%Y-%m-%d")
        figures = data.periods.get(key, Figures())
        totals.add(figures)
        days.append(Day(key, figures))
        day += timedelta(days=1)
    owed = data.owed_before + sum(data.owed_delta.values())
    ranked = sorted(
        ((uid, f) for uid, f in data.affiliates.items() if f.earned_sats or f.commissions),
        key=lambda item: (-item[1].earned_sats, item[0]),
    )[:top]
    names = await repository.usernames(session, [uid for uid, _ in ranked])
    active = list(await repository.active_subscriptions(session, now))
    new, renewals = await repository.payments_in(session, start, end)
    clicks, registered, paid = await repository.funnel(session, start, end)
    alerts = await repository.recent_alerts(session, ALERT_KINDS, 10)
    return Dashboard(
        start=start,
        end=end,
        totals=totals,
        owed_sats=owed,
        days=days,
        mrr_sats=_mrr(active),
        active_subscriptions=len(active),
        active_subscribers=len({user for _, user, _, _ in active}),
        new_payments=new,
        renewals=renewals,
        churned=await repository.churned(session, start, end, now),
        funnel_clicks=clicks,
        funnel_registered=registered,
        funnel_paid=paid,
        top_affiliates=[
            TopAffiliate(
                user_id=uid,
                username=names.get(uid),
                earned_sats=f.earned_sats,
                commissions=f.commissions,
                referred_sales_sats=f.referred_sales_sats,
            )
            for uid, f in ranked
        ],
        payouts=await repository.payouts_by_status(session),
        alerts=[
            Alert(id=a.id, kind=a.kind, created_at=a.created_at, payload=dict(a.payload))
            for a in alerts
        ],
    )
