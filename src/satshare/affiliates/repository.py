"""Affiliates' queries: terms, suspensions, acceptances, and sums over their ledger account
(the reads use the ledger's figures; these sums are what ``satshare figures check``
compares them with)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from satshare.affiliates.models import (
    AffiliateSuspension,
    AffiliateTerms,
    ReferralClick,
    TermsAcceptance,
)
from satshare.ledger.models import SALE_KINDS, Account, Entry, Posting
from satshare.users.models import User


async def current_custom(session: AsyncSession, user_id: int) -> AffiliateTerms | None:
    result = await session.execute(
        select(AffiliateTerms)
        .where(AffiliateTerms.user_id == user_id)
        .order_by(AffiliateTerms.version.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def open_suspension(session: AsyncSession, user_id: int) -> AffiliateSuspension | None:
    result = await session.execute(
        select(AffiliateSuspension).where(
            AffiliateSuspension.user_id == user_id, AffiliateSuspension.lifted_at.is_(None)
        )
    )
    return result.scalars().first()


def _standing() -> Any:
    user_id: Any = bindparam("user_id", type_=BigInteger)
    latest = (
        select(AffiliateTerms.share_bps, AffiliateTerms.version)
        .where(AffiliateTerms.user_id == user_id)
        .order_by(AffiliateTerms.version.desc())
        .limit(1)
        .subquery()
    )
    suspended = exists().where(
        AffiliateSuspension.user_id == user_id, AffiliateSuspension.lifted_at.is_(None)
    )
    return select(
        suspended,
        select(latest.c.share_bps).scalar_subquery(),
        select(latest.c.version).scalar_subquery(),
    )


#: Built once (every referred sale runs it).
_STANDING = _standing()


async def standing(session: AsyncSession, user_id: int) -> tuple[bool, int | None, int | None]:
    """(suspended now, latest custom terms' share or None, their version or None) in one
    round trip: what every referred sale asks."""
    row = (await session.execute(_STANDING, {"user_id": user_id})).one()
    return bool(row[0]), row[1], row[2]


async def terms_history(session: AsyncSession, user_id: int) -> Sequence[AffiliateTerms]:
    result = await session.execute(
        select(AffiliateTerms)
        .where(AffiliateTerms.user_id == user_id)
        .order_by(AffiliateTerms.version)
    )
    return result.scalars().all()


async def accepted_at(session: AsyncSession, user_id: int, version: str) -> datetime | None:
    result = await session.execute(
        select(TermsAcceptance.accepted_at).where(
            TermsAcceptance.user_id == user_id, TermsAcceptance.version == version
        )
    )
    return result.scalar_one_or_none()


def _account_sum(code: str) -> Select[int]:
    return (
        select(func.coalesce(func.sum(Posting.amount_sats), 0))
        .join(Account, Account.id == Posting.account_id)
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Account.code == code)
    )


async def account_sum(session: AsyncSession, code: str, *, excluding: Collection[str] = ()) -> int:
    """The sum of the account's postings (entries of the ``excluding`` kinds left out)."""
    query = _account_sum(code)
    if excluding:
        query = query.where(Entry.kind.not_in(excluding))
    return int((await session.execute(query)).scalar_one())


async def recent_unrefunded_commissions(session: AsyncSession, code: str, since: datetime) -> int:
    """The sum of the commissions credited to the account after ``since`` whose sale was not
    refunded (a refunded sale's commission is already gone from the balance)."""
    reversal = aliased(Entry)
    query = _account_sum(code).where(
        Entry.kind.in_(SALE_KINDS),
        Entry.created_at > since,
        Posting.amount_sats < 0,
        ~exists().where(reversal.reverses_entry_id == Entry.id),
    )
    return int((await session.execute(query)).scalar_one())


async def user_id_by_referral_code(session: AsyncSession, referral_code: str) -> int | None:
    result = await session.execute(select(User.id).where(User.referral_code == referral_code))
    return result.scalar_one_or_none()


async def click_count(session: AsyncSession, user_id: int) -> int:
    count = await session.scalar(
        select(func.count(ReferralClick.id)).where(ReferralClick.affiliate_user_id == user_id)
    )
    return int(count or 0)


async def commission_postings(
    session: AsyncSession, code: str, *, excluding: Collection[str]
) -> list[tuple[datetime, str, int]]:
    """(when, entry kind, amount) of every posting to the account, oldest first."""
    rows = await session.execute(
        select(Entry.created_at, Entry.kind, Posting.amount_sats)
        .join(Posting, Posting.entry_id == Entry.id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.code == code, Entry.kind.not_in(excluding))
        .order_by(Entry.id)
    )
    return [(when, kind, amount) for when, kind, amount in rows.all()]
