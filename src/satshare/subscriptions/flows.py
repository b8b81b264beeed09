"""Subscription jobs in their own units of work (for the background jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from satshare.db import Database
from satshare.subscriptions import reminders, service


async def expire_due(db: Database, now: datetime) -> int:
    """Expire the subscriptions whose period has ended; how many."""
    async with db.transaction() as session:
        return await service.expire_due(session, now)


async def queue_reminders(db: Database, now: datetime, days: Sequence[int]) -> int:
    """Queue the expiry reminders due now; how many."""
    async with db.transaction() as session:
        return await reminders.queue_reminders(session, now, days)
