"""Affiliate statistics kept by the affiliates domain: link clicks, leaderboard names, earnings
per month (from the ledger's figures) and the shapes of the referral figures. The figures over
payments (leaderboard, paying referrals, referred sales, funnel) are in
``satshare.payments.referrals``: payments sits above affiliates in the domain layering
(``tests/test_architecture.py``), so affiliates never imports payments. Refunded sales never
count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.affiliates import repository
from satshare.affiliates.models import ReferralClick
from satshare.errors import InvalidRequest, NotFound
from satshare.ledger.figures import service as figures
from satshare.users import repository as users_repo
from satshare.users.models import User

Ranking = Literal["sales", "referrals"]
Period = Literal["week", "month", "all"]
PERIOD_DAYS: dict[str, int | None] = {"week": 7, "month": 30, "all": None}
CLICK_SOURCES = ("telegram", "website", "discord", "api")
MAX_NAME = 32


def since_for(period: Period, now: datetime) -> datetime | None:
    """Where a period starts: midnight (UTC) of the first of its last 7 or 30 days, today
    included; None for all time."""
    days = PERIOD_DAYS[period]
    if days is None:
        return None
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    return today - timedelta(days=days - 1)


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
    await users_repo.count_referral(session, affiliate_id, clicks=1)
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


@dataclass(frozen=True, slots=True)
class LevelProgress:
    """What affiliate levels' thresholds read (``ReferralStats`` without the sign-ups)."""

    paying: int
    referred_sales_sats: int


async def clicks(session: AsyncSession, user_id: int) -> int:
    """How often the affiliate's link was opened."""
    return (await users_repo.referral_counts(session, user_id))[1]


@dataclass(frozen=True, slots=True)
class MonthEarnings:
    month: str
    earned_sats: int  # commissions net of clawbacks
    commissions: int


async def earnings_by_month(session: AsyncSession, user_id: int) -> Sequence[MonthEarnings]:
    """Every month with a posting to the affiliate's account other than a payout's."""
    per_day = await figures.user_days(session, user_id)
    per_month = figures.months(per_day.items())
    return [
        MonthEarnings(month, f.get("earned_sats", 0), f.get("commissions", 0))
        for month, f in sorted(per_month.items())
        if f.get("earning_postings", 0)
    ]
