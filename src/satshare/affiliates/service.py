"""Which share an affiliate earns, and the record of how it was decided.

Order of precedence: a suspension (nothing: the sale goes to the owner), then custom terms
set by an admin, then the highest level the affiliate's own direct referrals have reached,
then the base share. The decision is stored on each ledger entry as a label, so later
changes never rewrite the past.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.affiliates import repository
from satshare.affiliates.models import AffiliateSuspension, AffiliateTerms, TermsAcceptance
from satshare.affiliates.repository import accepted_at as accepted_at
from satshare.affiliates.repository import current_custom as current_custom
from satshare.affiliates.repository import open_suspension as open_suspension
from satshare.affiliates.repository import terms_history as terms_history
from satshare.affiliates.stats import LevelProgress, ReferralStats
from satshare.db import insert_ignore
from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.ledger.figures import service as figures
from satshare.money import require_bps
from satshare.users.models import User


@dataclass(frozen=True, slots=True)
class Level:
    name: str
    share_bps: int
    min_paying_referrals: int | None = None
    min_referred_sales_sats: int | None = None


@dataclass(frozen=True, slots=True)
class Program:
    """The affiliate program as configured."""

    base_share_bps: int
    levels: tuple[Level, ...] = ()
    hold_days: int = 0
    terms_version: str = "1"


@dataclass(frozen=True, slots=True)
class Terms:
    share_bps: int
    label: str  # e.g. "level:Gold", "custom:v3", "suspended", "base"
    level: str | None = None


def level_for(levels: Sequence[Level], stats: ReferralStats | LevelProgress) -> Level | None:
    """The last level in the (ordered) list whose thresholds are all met."""
    reached = None
    for level in levels:
        if level.min_paying_referrals is not None and stats.paying < level.min_paying_referrals:
            continue
        if (
            level.min_referred_sales_sats is not None
            and stats.referred_sales_sats < level.min_referred_sales_sats
        ):
            continue
        reached = level
    return reached


@dataclass(frozen=True, slots=True)
class NextLevel:
    level: Level
    #: What is still missing to reach it (None: that threshold is already met or unused).
    paying_referrals: int | None
    referred_sales_sats: int | None


def next_level(levels: Sequence[Level], stats: ReferralStats) -> NextLevel | None:
    """The first level after the one reached that is not reached yet, and what it takes."""
    current = level_for(levels, stats)
    start = levels.index(current) + 1 if current is not None else 0
    for level in levels[start:]:
        missing_referrals = (
            level.min_paying_referrals - stats.paying
            if level.min_paying_referrals is not None and stats.paying < level.min_paying_referrals
            else None
        )
        missing_sales = (
            level.min_referred_sales_sats - stats.referred_sales_sats
            if level.min_referred_sales_sats is not None
            and stats.referred_sales_sats < level.min_referred_sales_sats
            else None
        )
        if missing_referrals is not None or missing_sales is not None:
            return NextLevel(level, missing_referrals, missing_sales)
    return None


#: Reads an affiliate's referral figures (``satshare.payments.referrals.referral_stats``): a
#: port, because those figures are queried over payments, a domain above this one.
ReferralProgress = Callable[[AsyncSession, int], Awaitable[ReferralStats | LevelProgress]]


#: What ``level_for`` is given when no level has a threshold (it reads none of it).
NO_PROGRESS = LevelProgress(paying=0, referred_sales_sats=0)


async def terms_for(
    session: AsyncSession, user_id: int, program: Program, progress: ReferralProgress
) -> Terms:
    suspended, custom_share, custom_version = await repository.standing(session, user_id)
    if suspended:
        return Terms(share_bps=0, label="suspended")
    if custom_share is not None:
        return Terms(share_bps=custom_share, label=f"custom:v{custom_version}")
    if program.levels:
        # Levels without thresholds need no figures: the last one always applies.
        needs_progress = any(
            level.min_paying_referrals is not None or level.min_referred_sales_sats is not None
            for level in program.levels
        )
        stats = await progress(session, user_id) if needs_progress else NO_PROGRESS
        level = level_for(program.levels, stats)
        if level is not None:
            return Terms(share_bps=level.share_bps, label=f"level:{level.name}", level=level.name)
    return Terms(share_bps=program.base_share_bps, label="base")


async def set_custom_terms(
    session: AsyncSession,
    user_id: int,
    share_bps: int | None,
    *,
    reason: str,
    author: str,
    now: datetime,
) -> AffiliateTerms:
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    if share_bps is not None:
        try:
            require_bps(share_bps)
        except ValueError as exc:
            raise InvalidRequest(f"share_bps: {exc}", field="share_bps") from exc
    if not reason.strip():
        raise InvalidRequest("say why the terms change (reason)", field="reason")
    previous = await current_custom(session, user_id)
    row = AffiliateTerms(
        user_id=user_id,
        version=(previous.version + 1) if previous else 1,
        share_bps=share_bps,
        set_by=author,
        reason=reason.strip(),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def suspend(
    session: AsyncSession, user_id: int, *, reason: str, author: str, now: datetime
) -> AffiliateSuspension:
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    if await open_suspension(session, user_id) is not None:
        raise Conflict(f"affiliate {user_id} is already suspended")
    row = AffiliateSuspension(
        user_id=user_id, reason=reason.strip() or "-", suspended_by=author, suspended_at=now
    )
    session.add(row)
    await session.flush()
    return row


async def reinstate(session: AsyncSession, user_id: int, *, author: str, now: datetime) -> None:
    row = await open_suspension(session, user_id)
    if row is None:
        raise Conflict(f"affiliate {user_id} is not suspended")
    row.lifted_at = now
    row.lifted_by = author
    await session.flush()


async def accept_terms(session: AsyncSession, user_id: int, version: str, now: datetime) -> None:
    await insert_ignore(
        session,
        TermsAcceptance,
        {"user_id": user_id, "version": version, "accepted_at": now},
        ["user_id", "version"],
    )


async def accepted(session: AsyncSession, user_id: int, version: str) -> bool:
    return await accepted_at(session, user_id, version) is not None


@dataclass(frozen=True, slots=True)
class Balance:
    balance_sats: int  # may be negative after a clawback of a commission already paid out
    pending_sats: int  # commissions still inside the hold period
    total_earned_sats: int

    @property
    def available_sats(self) -> int:
        return max(0, self.balance_sats - self.pending_sats)


async def balance(session: AsyncSession, user_id: int, hold_days: int, now: datetime) -> Balance:
    """Their account's sum, read from the ledger's figures (one row, however long their
    history). Earned: commissions net of clawbacks and adjustments; payout holds only move
    money."""
    mine = await figures.user(session, user_id)
    pending = 0
    if hold_days > 0:
        since = now - timedelta(days=hold_days)
        pending = await figures.pending_commissions(session, user_id, since, now)
    return Balance(
        balance_sats=mine["balance_sats"],
        pending_sats=pending,
        total_earned_sats=mine["earned_sats"],
    )
