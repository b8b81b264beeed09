"""Plan reads and the start-up sync, each in its own unit of work (for the adapters)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from satshare.db import Database
from satshare.plans import repository, service
from satshare.plans.models import Plan


async def get(db: Database, plan_id: str) -> Plan | None:
    async with db.reading() as session:
        return await service.get(session, plan_id)


async def list_active(db: Database) -> Sequence[Plan]:
    async with db.reading() as session:
        return await repository.list_active(session)


async def sync(db: Database, specs: Sequence[service.PlanSpec], now: datetime) -> None:
    async with db.transaction() as session:
        await service.sync(session, specs, now)
