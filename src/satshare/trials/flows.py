"""Free trial use cases for the API and the bot: each opens its own unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from satshare.db import Database
from satshare.subscriptions.models import Subscription
from satshare.trials import service
from satshare.users.models import User


async def start(db: Database, user_id: int, plan_id: str, now: datetime) -> Subscription:
    """Start the plan's free trial (``TrialRefused`` when there is none for this person)."""
    async with db.transaction() as session:
        return await service.start(session, user_id, plan_id, now)


async def offered(db: Database, user: User, plan_ids: Sequence[str]) -> list[str]:
    """Those of the plans whose free trial this person may still start."""
    async with db.reading() as session:
        return [p for p in plan_ids if await service.available(session, user, p)]
