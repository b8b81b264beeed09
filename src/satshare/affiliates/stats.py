"""Affiliate statistics kept by the affiliates domain: link clicks, leaderboard names, earnings
per month (from the ledger) and the shapes of the referral figures. The figures over payments
(leaderboard, paying referrals, referred sales, funnel) are in ``satshare.payments.referrals``:
payments sits above affiliates in the domain layering (``tests/test_architecture.py``), so
affiliates never imports payments. Refunded sales never count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.affiliates import repository
from satshare.affiliates.models import ReferralClick
from satshare.errors import InvalidRequest, NotFound
from satshare.ledger import accounts
from satshare.ledger.models import PAYOUT_KINDS, SALE_KINDS
from satshare.users.models import User

Ranking = Literal["sales", "referrals"]
Period = Literal["week", "month", "all"]
PERIOD_DAYS: dict[str, int | None] = {"week": 7, "month": 30, "all": None}
CLICK_SOURCES = ("telegram", "website", "discord", "api")
MAX_NAME = 32


def since_for(period: Period, now: datetime) -> datetime | None:
    days = PERIOD_DAYS[period]
    return None if days is None else now - timedelta(days=days)


async def set_leaderboard_name(session: AsyncSession, user_id: int, name: str | None) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if name is not None:
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME:
            raise InvalidRequest(
                f"the leaderboard name must be 1 to {MAX_NAME} characters", field="name"
            )
    user.leaderboard_name = name
    await session.flush()
    return user


async def record_click(
    session: AsyncSession, referral_code: str, source: str, now: datetime
) -> int | None:
    """Count an opened referral link. Returns the affiliate's id, None for an unknown code."""
    if source not in CLICK_SOURCES:
        raise InvalidRequest(
            f"unknown source {source!r}; use one of {', '.join(CLICK_SOURCES)}", field="source"
        )
    affiliate_id = await repository.user_id_by_referral_code(session, referral_code)
    if affiliate_id is None:
        return None
    session.add(ReferralClick(affiliate_user_id=affiliate_id, source=source, created_at=now))
    await session.flush()
    return int(affiliate_id)


@dataclass(frozen=True, slots=True)
class Funnel:
    clicks: int
    registrations: int
    paying: int


@dataclass(frozen=True, slots=True)
class ReferralStats:
    registered: int
    paying: int  # distinct buyers who paid, refunds excluded
    referred_sales_sats: int


async def clicks(session: AsyncSession, user_id: int) -> int:
    """How often the affiliate's link was opened."""
    return await repository.click_count(session, user_id)


@dataclass(frozen=True, slots=True)
class MonthEarnings:
    month: str
    earned_sats: int  # commissions net of clawbacks
    commissions: int


async def earnings_by_month(session: AsyncSession, user_id: int) -> Sequence[MonthEarnings]:
    code = accounts.affiliate_payable(user_id)
    rows = await repository.commission_postings(session, code, excluding=PAYOUT_KINDS)
    earned: dict[str, list[int]] = {}
    for created_at, kind, amount in rows:
        month = earned.setdefault(created_at.strftime("%Y-%m"), [0, 0])
        month[0] -= amount
        if kind in SALE_KINDS:
            month[1] += 1
    return [MonthEarnings(m, e, c) for m, (e, c) in sorted(earned.items())]
