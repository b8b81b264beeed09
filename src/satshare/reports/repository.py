"""Reports' queries that join several domains' tables (reports only read): the split
statements' commissions and the admin dashboard's operational counts (the money figures come
from the ledger's postings through ``transparency.aggregate``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from satshare.affiliates.models import ReferralClick, TermsAcceptance
from satshare.ledger import accounts
from satshare.ledger import repository as ledger
from satshare.ledger.models import SALE_KINDS, Account, ChainLink, Entry, Posting
from satshare.notifications.models import OutboxMessage
from satshare.payments.models import Invoice, Payment
from satshare.payouts.models import Payout, PayoutStatus
from satshare.plans.models import Plan
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.users.models import User

#: A commission as the split statements read it: the sale entry, the affiliate's posting,
#: the invoice and payment (if any), the entry's chain link and the id of its reversal.
CommissionRow = tuple[Entry, int, Invoice | None, Payment | None, ChainLink | None, int | None]


async def commission_rows(
    session: AsyncSession, user_id: int, *, limit: int, before_id: int | None = None
) -> list[CommissionRow]:
    """The affiliate's commissions, newest first (``before_id``: a page cursor)."""
    reversal = aliased(Entry)
    query = (
        select(Entry, Posting.amount_sats, Invoice, Payment, ChainLink, reversal.id)
        .join(Posting, Posting.entry_id == Entry.id)
        .join(Account, Account.id == Posting.account_id)
        .outerjoin(Invoice, Invoice.id == Entry.invoice_id)
        .outerjoin(Payment, Payment.invoice_id == Entry.invoice_id)
        .outerjoin(ChainLink, ChainLink.entry_id == Entry.id)
        .outerjoin(reversal, reversal.reverses_entry_id == Entry.id)
        .where(
            Account.code == accounts.affiliate_payable(user_id),
            Entry.kind.in_(SALE_KINDS),
        )
        .order_by(Entry.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(Entry.id < before_id)
    return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


async def plan_days(session: AsyncSession) -> dict[str, int]:
    """Each plan's length in days (the MRR's divisor)."""
    rows = await session.execute(select(Plan.id, Plan.duration_days))
    return {str(plan): int(days) for plan, days in rows.all()}


@dataclass(frozen=True, slots=True)
class Active:
    """The subscriptions active now: how many, their distinct users, and per plan length
    (days) the sum of their last bitcoin payments (the MRR's terms)."""

    subscriptions: int
    subscribers: int
    paid_per_plan_days: dict[int, int]


async def active(session: AsyncSession, now: datetime) -> Active:
    """Counted in the database, from the last payment each subscription row keeps."""
    live = (Subscription.status == SubscriptionStatus.ACTIVE) & (Subscription.ends_at > now)
    counts = (
        await session.execute(
            select(func.count(Subscription.id), func.count(distinct(Subscription.user_id))).where(
                live
            )
        )
    ).one()
    sums = await session.execute(
        select(Plan.duration_days, func.sum(Subscription.last_paid_sats))
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(live, Subscription.last_paid_sats.is_not(None))
        .group_by(Plan.duration_days)
    )
    return Active(
        int(counts[0]), int(counts[1]), {int(days): int(total or 0) for days, total in sums.all()}
    )


async def active_subscriptions(
    session: AsyncSession, now: datetime
) -> Sequence[tuple[int, int, int | None, int]]:
    """(subscription id, user id, the last settled bitcoin invoice's sats, the plan's days)
    of every subscription active now, from the payments themselves (the figures check's
    reference for ``active``)."""
    last_paid = (
        select(func.max(Payment.id))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.subscription_id == Subscription.id, Invoice.currency == "SAT")
        .correlate(Subscription)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Subscription.id, Subscription.user_id, Invoice.amount_sats, Plan.duration_days)
        .join(Plan, Plan.id == Subscription.plan_id)
        .outerjoin(Payment, Payment.id == last_paid)
        .outerjoin(Invoice, Invoice.id == Payment.invoice_id)
        .where(Subscription.status == SubscriptionStatus.ACTIVE, Subscription.ends_at > now)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows.all()]


async def payments_in(session: AsyncSession, start: datetime, end: datetime) -> tuple[int, int]:
    """(new, renewals): payments settled in [start, end); a renewal is a payment for a
    subscription that had a payment settled before it (settlements of one subscription
    take turns on its row, so their ids are in that order). Counted over the payments (the
    figures check's reference; the dashboard reads the per-day figures)."""
    earlier = aliased(Payment)
    earlier_invoice = aliased(Invoice)
    renewal = exists(
        select(earlier.id)
        .join(earlier_invoice, earlier_invoice.id == earlier.invoice_id)
        .where(
            earlier_invoice.subscription_id == Invoice.subscription_id,
            earlier.id < Payment.id,
        )
    )
    rows = await session.execute(
        select(renewal, func.count(Payment.id))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Payment.settled_at >= start, Payment.settled_at < end)
        .group_by(renewal)
    )
    counts = {bool(flag): int(count) for flag, count in rows.all()}
    return counts.get(False, 0), counts.get(True, 0)


async def churned(session: AsyncSession, start: datetime, end: datetime, now: datetime) -> int:
    """Subscriptions whose paid time ran out in [start, end) (and before now) and that were
    not renewed: a renewal moves ``ends_at`` past the end of the period."""
    upper = min(end, now)
    count = await session.scalar(
        select(func.count(Subscription.id)).where(
            Subscription.ends_at >= start,
            Subscription.ends_at < upper,
            Subscription.started_at.is_not(None),
        )
    )
    return int(count or 0)


async def opened_and_registered(
    session: AsyncSession, start: datetime, end: datetime
) -> tuple[int, int]:
    """(referral links opened, users registered) in [start, end): index range counts."""
    clicks = await session.scalar(
        select(func.count(ReferralClick.id)).where(
            ReferralClick.created_at >= start, ReferralClick.created_at < end
        )
    )
    registered = await session.scalar(
        select(func.count(User.id)).where(User.created_at >= start, User.created_at < end)
    )
    return int(clicks or 0), int(registered or 0)


async def funnel(session: AsyncSession, start: datetime, end: datetime) -> tuple[int, int, int]:
    """(referral links opened, users registered, of those registered how many have paid) in
    [start, end), counted over the users and payments (the figures check's reference)."""
    clicks = await session.scalar(
        select(func.count(ReferralClick.id)).where(
            ReferralClick.created_at >= start, ReferralClick.created_at < end
        )
    )
    registered = await session.scalar(
        select(func.count(User.id)).where(User.created_at >= start, User.created_at < end)
    )
    paid = await session.scalar(
        select(func.count(User.id)).where(
            User.created_at >= start,
            User.created_at < end,
            exists(select(Payment.id).where(Payment.user_id == User.id)),
        )
    )
    return int(clicks or 0), int(registered or 0), int(paid or 0)


async def payouts_by_status(session: AsyncSession) -> dict[PayoutStatus, tuple[int, int]]:
    """status → (how many, their amount in sats)."""
    rows = await session.execute(
        select(
            Payout.status, func.count(Payout.id), func.coalesce(func.sum(Payout.amount_sats), 0)
        ).group_by(Payout.status)
    )
    return {PayoutStatus(s): (int(n), int(total)) for s, n, total in rows.all()}


async def recent_alerts(
    session: AsyncSession, kinds: Sequence[str], limit: int
) -> Sequence[OutboxMessage]:
    """The newest admin alerts (the original rows, not their copies per admin chat)."""
    rows = await session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.kind.in_(kinds), OutboxMessage.chat_id.is_(None))
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return rows.scalars().all()


async def usernames(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, str | None]:
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return {int(uid): name for uid, name in rows.all()}


async def acceptances_by_version(session: AsyncSession) -> list[tuple[str, int]]:
    """Affiliate terms versions and how many accepted each."""
    rows = await session.execute(
        select(TermsAcceptance.version, func.count(TermsAcceptance.id))
        .group_by(TermsAcceptance.version)
        .order_by(TermsAcceptance.version)
    )
    return [(str(version), int(count)) for version, count in rows.all()]


@dataclass(frozen=True, slots=True)
class UserOverview:
    """Everything about one user, newest first, at most ``limit`` of each."""

    subscriptions: Sequence[Subscription]
    invoices: Sequence[Invoice]
    payments: Sequence[Payment]
    referrals: Sequence[User]
    commissions: Sequence[Entry]
    payouts: Sequence[Payout]
    entries: Sequence[Entry]
    postings: dict[int, list[tuple[str, int]]]


async def user_overview(session: AsyncSession, user_id: int, limit: int = 50) -> UserOverview:
    entries = await ledger.list_entries(session, limit=limit, user_id=user_id)
    subscriptions = await session.scalars(
        select(Subscription)
        .where(Subscription.user_id == user_id)
        .order_by(Subscription.id.desc())
        .limit(limit)
    )
    invoices = await session.scalars(
        select(Invoice)
        .where(Invoice.user_id == user_id)
        .order_by(Invoice.created_at.desc())
        .limit(limit)
    )
    payments = await session.scalars(
        select(Payment).where(Payment.user_id == user_id).order_by(Payment.id.desc()).limit(limit)
    )
    referrals = await session.scalars(
        select(User).where(User.referrer_id == user_id).order_by(User.id.desc()).limit(limit)
    )
    # Commissions: the sales that credited this affiliate (a refund shows as its reversal
    # among the ledger entries).
    commissions = await session.scalars(
        select(Entry)
        .where(Entry.affiliate_user_id == user_id, Entry.kind.in_(SALE_KINDS))
        .order_by(Entry.id.desc())
        .limit(limit)
    )
    payouts = await session.scalars(
        select(Payout).where(Payout.user_id == user_id).order_by(Payout.id.desc()).limit(limit)
    )
    return UserOverview(
        subscriptions=subscriptions.all(),
        invoices=invoices.all(),
        payments=payments.all(),
        referrals=referrals.all(),
        commissions=commissions.all(),
        payouts=payouts.all(),
        entries=entries,
        postings=await ledger.postings_of(session, [e.id for e in entries]),
    )


# -- the dashboard's tallies: what time changes, and the counts over the rows ---------------


async def hold_counted_tables(session: AsyncSession) -> None:
    """Hold writers of subscriptions and payouts off until this transaction ends (the
    rebuild's snapshot and the changes it drops must agree). SQLite has one writer anyway."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("LOCK TABLE subscriptions, payouts IN SHARE MODE"))


# -- what time changes: active subscriptions whose paid time has run out -------------------

_ACTIVE = Subscription.status == SubscriptionStatus.ACTIVE


#: Lapsed subscriptions read per query (a LIMIT keeps the planner on the index).
LAPSED_PAGE = 1000


async def _lapsed(session: AsyncSession, now: datetime) -> list[tuple[str, int, int]]:
    """(plan, user, last payment) of each subscription still in the active state whose paid
    time ended by ``now`` (the expiry job's backlog: normally none or a few), walked along
    the (status, end) index a page at a time: the statistics cannot see that active rows
    rarely have an end in the past, and without a LIMIT the planner scans the table."""
    found: list[tuple[str, int, int]] = []
    after: tuple[datetime | None, int] | None = None
    while True:
        query = select(
            Subscription.plan_id,
            Subscription.user_id,
            Subscription.last_paid_sats,
            Subscription.ends_at,
            Subscription.id,
        ).where(_ACTIVE, Subscription.ends_at <= now)
        if after is not None:
            query = query.where(
                (Subscription.ends_at > after[0])
                | ((Subscription.ends_at == after[0]) & (Subscription.id > after[1]))
            )
        rows = (
            await session.execute(
                query.order_by(Subscription.ends_at, Subscription.id).limit(LAPSED_PAGE)
            )
        ).all()
        found += [(str(r[0]), int(r[1]), int(r[2] or 0)) for r in rows]
        if len(rows) < LAPSED_PAGE:
            return found
        after = (rows[-1][3], int(rows[-1][4]))


async def lapsed_per_plan(session: AsyncSession, now: datetime) -> dict[str, tuple[int, int]]:
    """Subscriptions still in the active state whose paid time ended by ``now``, per plan:
    how many, their last payments."""
    per_plan: dict[str, tuple[int, int]] = {}
    for plan, _, sats in await _lapsed(session, now):
        count, total = per_plan.get(plan, (0, 0))
        per_plan[plan] = (count + 1, total + sats)
    return per_plan


async def lapsed_subscribers(session: AsyncSession, now: datetime) -> int:
    """Users with subscriptions in the active state, all of whose paid time ended by now
    (their other subscriptions looked up by user: the unique (user, plan) index)."""
    users = {user for _, user, _ in await _lapsed(session, now)}
    if not users:
        return 0
    still = await session.scalars(
        select(Subscription.user_id)
        .distinct()
        .where(Subscription.user_id.in_(sorted(users)), _ACTIVE, Subscription.ends_at > now)
    )
    return len(users - {int(uid) for uid in still.all()})


async def ended_between(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Subscriptions ever started whose paid time ends in [start, end): the index's range
    (the part of a day the per-day counts cannot cut)."""
    if end <= start:
        return 0
    count = await session.scalar(
        select(func.count(Subscription.id)).where(
            Subscription.ends_at >= start,
            Subscription.ends_at < end,
            Subscription.started_at.is_not(None),
        )
    )
    return int(count or 0)


# -- counted over the rows themselves (the rebuild, the check) -----------------------------


async def active_per_plan(session: AsyncSession) -> dict[str, tuple[int, int]]:
    rows = await session.execute(
        select(
            Subscription.plan_id,
            func.count(Subscription.id),
            func.coalesce(func.sum(Subscription.last_paid_sats), 0),
        )
        .where(_ACTIVE, Subscription.ends_at.is_not(None))
        .group_by(Subscription.plan_id)
    )
    return {str(plan): (int(n), int(sats or 0)) for plan, n, sats in rows.all()}


async def active_per_user(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(
        select(Subscription.user_id, func.count(Subscription.id))
        .where(_ACTIVE, Subscription.ends_at.is_not(None))
        .group_by(Subscription.user_id)
    )
    return {int(uid): int(n) for uid, n in rows.all()}


async def payouts_per_state(session: AsyncSession) -> dict[str, tuple[int, int]]:
    rows = await session.execute(
        select(
            Payout.status, func.count(Payout.id), func.coalesce(func.sum(Payout.amount_sats), 0)
        ).group_by(Payout.status)
    )
    return {str(status): (int(n), int(sats)) for status, n, sats in rows.all()}


async def ends_of_started(session: AsyncSession) -> list[datetime]:
    """When the paid time of every subscription ever started ends."""
    rows = await session.execute(
        select(Subscription.ends_at).where(
            Subscription.started_at.is_not(None), Subscription.ends_at.is_not(None)
        )
    )
    return [ends for (ends,) in rows.all() if ends is not None]
