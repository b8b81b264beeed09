"""Affiliate use cases in their own units of work (for the API, the bot and the CLI)."""

from __future__ import annotations

from datetime import datetime

from satshare.affiliates import service, stats
from satshare.db import Database
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
