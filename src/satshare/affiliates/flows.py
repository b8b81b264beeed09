"""Affiliate use cases in their own units of work (for the API, the bot, the CLI and the
panel). An admin's change takes ``by``: its audit row is written in the change's own
transaction (the API and the CLI record theirs after it, so they pass none)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from satshare.affiliates import service, stats
from satshare.affiliates.models import AffiliateTerms
from satshare.audit.flows import Actor, audited
from satshare.db import Database
from satshare.users import service as users
from satshare.users.models import User


async def record_click(db: Database, referral_code: str, source: str, now: datetime) -> int | None:
    """Count an opened referral link; the affiliate's id, None for an unknown code."""
    async with db.transaction() as session:
        return await stats.record_click(session, referral_code, source, now)


async def accept_terms(db: Database, user_id: int, version: str, now: datetime) -> None:
    async with db.transaction() as session:
        await service.accept_terms(session, user_id, version, now)


async def balance(db: Database, user_id: int, hold_days: int, now: datetime) -> service.Balance:
    async with db.reading() as session:
        return await service.balance(session, user_id, hold_days, now)


async def set_leaderboard_name(db: Database, user_id: int, name: str | None) -> User:
    async with db.transaction() as session:
        return await stats.set_leaderboard_name(session, user_id, name)


async def set_custom_terms(
    db: Database,
    user_id: int,
    share_bps: int | None,
    *,
    reason: str,
    author: str,
    now: datetime,
    by: Actor | None = None,
) -> AffiliateTerms:
    target = f"user:{user_id}"
    async with audited(db, by, "affiliate.terms", target, now=now, reason=reason) as work:
        terms = await service.set_custom_terms(
            work.session, user_id, share_bps, reason=reason, author=author, now=now
        )
        work.after = {"share_bps": share_bps}
        return terms


async def terms_history(db: Database, user_id: int) -> Sequence[AffiliateTerms]:
    async with db.reading() as session:
        await users.require(session, user_id)
        return await service.terms_history(session, user_id)


async def suspend(
    db: Database,
    user_id: int,
    *,
    reason: str,
    author: str,
    now: datetime,
    by: Actor | None = None,
) -> None:
    target = f"user:{user_id}"
    async with audited(db, by, "affiliate.suspend", target, now=now, reason=reason) as work:
        await service.suspend(work.session, user_id, reason=reason, author=author, now=now)
        work.after = {"suspended": True}


async def reinstate(
    db: Database,
    user_id: int,
    *,
    author: str,
    now: datetime,
    by: Actor | None = None,
    reason: str = "",
) -> None:
    target = f"user:{user_id}"
    async with audited(db, by, "affiliate.reinstate", target, now=now, reason=reason) as work:
        await users.require(work.session, user_id)
        await service.reinstate(work.session, user_id, author=author, now=now)
        work.after = {"suspended": False}


async def accept_terms_of_user(db: Database, user_id: int, version: str, now: datetime) -> None:
    """``accept_terms`` for a user who may not exist (NotFound)."""
    async with db.transaction() as session:
        await users.require(session, user_id)
        await service.accept_terms(session, user_id, version, now)
