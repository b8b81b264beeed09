"""Everything about one affiliate in one read: what the API, the CLI and the bot show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.affiliates import service as affiliates
from satshare.affiliates import stats as affiliate_stats
from satshare.affiliates.models import AffiliateSuspension
from satshare.db import Database
from satshare.ledger import accounts
from satshare.ledger import repository as ledger_repo
from satshare.payments import referrals
from satshare.payouts import service as payouts
from satshare.payouts.models import PayoutDestination
from satshare.users import service as users


@dataclass(frozen=True, slots=True)
class AffiliateOverview:
    user_id: int
    terms: affiliates.Terms
    balance: affiliates.Balance
    payouts: payouts.PayoutTotals
    referrals: affiliate_stats.ReferralStats
    suspension: AffiliateSuspension | None
    terms_version: str
    terms_accepted_at: datetime | None
    destination: PayoutDestination | None


async def affiliate_overview(
    session: AsyncSession, program: affiliates.Program, user_id: int, now: datetime
) -> AffiliateOverview:
    await users.require(session, user_id)
    return AffiliateOverview(
        user_id=user_id,
        terms=await affiliates.terms_for(session, user_id, program, referrals.referral_stats),
        balance=await affiliates.balance(session, user_id, program.hold_days, now),
        payouts=await payouts.totals(session, user_id),
        referrals=await referrals.referral_stats(session, user_id),
        suspension=await affiliates.open_suspension(session, user_id),
        terms_version=program.terms_version,
        terms_accepted_at=await affiliates.accepted_at(session, user_id, program.terms_version),
        destination=await payouts.saved_destination(session, user_id),
    )


@dataclass(frozen=True, slots=True)
class InviteView:
    """What the bot's "Invite & earn" screen shows."""

    earnings: affiliates.Balance
    terms: affiliates.Terms
    progress: affiliate_stats.ReferralStats
    clicks: int
    months: Sequence[affiliate_stats.MonthEarnings]
    #: The newest commissions: (amount, when), newest first.
    recent: list[tuple[int, datetime]]


async def invite_view(
    db: Database, program: affiliates.Program, user_id: int, now: datetime, *, recent: int
) -> InviteView:
    async with db.reading() as session:
        return InviteView(
            earnings=await affiliates.balance(session, user_id, program.hold_days, now),
            terms=await affiliates.terms_for(session, user_id, program, referrals.referral_stats),
            progress=await referrals.referral_stats(session, user_id),
            clicks=await affiliate_stats.clicks(session, user_id),
            months=await affiliate_stats.earnings_by_month(session, user_id),
            recent=await ledger_repo.recent_sale_postings(
                session, accounts.affiliate_payable(user_id), recent
            ),
        )


async def overview(
    db: Database, program: affiliates.Program, user_id: int, now: datetime
) -> AffiliateOverview:
    """``affiliate_overview`` in its own unit of work (for the adapters)."""
    async with db.reading() as session:
        return await affiliate_overview(session, program, user_id, now)
