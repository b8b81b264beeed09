"""Referral statistics over settled payments: who paid, how much, refunds excluded — the
leaderboard, an affiliate's paying referrals and referred sales (the input of affiliate
levels), and the funnel.

They query payments, so they live here, not in ``satshare.affiliates``: payments sits above
affiliates in the domain layering (``tests/test_architecture.py``) and affiliates must not
import payments. ``affiliates.service.terms_for`` takes ``referral_stats`` as its
``progress`` port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, distinct, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from satshare.affiliates.stats import Funnel, Ranking, ReferralStats, clicks
from satshare.ledger.models import Entry
from satshare.payments.models import Payment
from satshare.users.models import User


def not_refunded() -> ColumnElement[bool]:
    """Payments whose sale was not reversed (refunded)."""
    reversal = aliased(Entry)
    return ~exists().where(reversal.reverses_entry_id == Payment.ledger_entry_id)


@dataclass(frozen=True, slots=True)
class LeaderRow:
    rank: int
    user_id: int
    name: str | None  # None: the affiliate did not opt in to show a name
    value: int


async def leaderboard(
    session: AsyncSession, by: Ranking, since: datetime | None, limit: int = 10
) -> list[LeaderRow]:
    """Affiliates ranked by paying referrals (distinct buyers) or referred sales (sats, Stars
    sales at their sats value) in the period. Equal values share a rank."""
    buyer = aliased(User)
    value = (
        func.count(distinct(Payment.user_id))
        if by == "referrals"
        else func.coalesce(func.sum(Entry.gross_sats), 0)
    )
    query = (
        select(buyer.referrer_id, value.label("value"))
        .select_from(Payment)
        .join(buyer, buyer.id == Payment.user_id)
        .join(Entry, Entry.id == Payment.ledger_entry_id)
        .where(buyer.referrer_id.is_not(None), not_refunded())
        .group_by(buyer.referrer_id)
        .order_by(value.desc(), buyer.referrer_id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(Payment.settled_at >= since)
    ranked = [(int(uid), int(v)) for uid, v in (await session.execute(query)).all() if uid and v]
    names = dict(
        (
            await session.execute(
                select(User.id, User.leaderboard_name).where(User.id.in_([u for u, _ in ranked]))
            )
        ).all()
    )
    rows: list[LeaderRow] = []
    for position, (user_id, amount) in enumerate(ranked, start=1):
        rank = rows[-1].rank if rows and rows[-1].value == amount else position
        rows.append(LeaderRow(rank, user_id, names.get(user_id), amount))
    return rows


async def referral_stats(session: AsyncSession, user_id: int) -> ReferralStats:
    """The affiliate's own direct referrals: registered, paying, and what they paid."""
    registered = await session.scalar(
        select(func.count(User.id)).where(User.referrer_id == user_id)
    )
    paying, sales = (
        await session.execute(
            select(
                func.count(distinct(Payment.user_id)),
                func.coalesce(func.sum(Payment.amount_sats), 0),
            )
            .join(User, User.id == Payment.user_id)
            .where(User.referrer_id == user_id, not_refunded())
        )
    ).one()
    return ReferralStats(int(registered or 0), int(paying), int(sales))


async def funnel(session: AsyncSession, user_id: int) -> Funnel:
    referrals = await referral_stats(session, user_id)
    return Funnel(await clicks(session, user_id), referrals.registered, referrals.paying)
