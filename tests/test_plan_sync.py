"""Several ``serve`` processes starting at once on one database each sync the config plans
(seen in CI: two inserting the same new plan, one of them crashed at start with a unique
key violation). Two syncs on their own connections, at the same moment, both succeed and
leave one row per plan."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import delete, func, select

from satshare.db import Database
from satshare.plans import flows
from satshare.plans.models import Plan
from satshare.plans.service import PlanSpec

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
SPECS = [
    PlanSpec("monthly", "Premium, 30 days", "", 50_000, 30, (-1001000000001,)),
    PlanSpec("yearly", "Premium, a year", "", 500_000, 365, (-1001000000001,)),
]


async def test_processes_starting_at_once_sync_the_same_new_plans(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(3)]  # a connection pool each
    try:
        for _ in range(3):  # new plans each round but the first: every sync races to insert
            async with databases[0].transaction() as session:
                await session.execute(delete(Plan))
            await asyncio.gather(*(flows.sync(db, SPECS, NOW) for db in databases))
            async with databases[0].reading() as session:
                rows = await session.execute(
                    select(Plan.id, func.count()).group_by(Plan.id).order_by(Plan.id)
                )
                assert rows.all() == [("monthly", 1), ("yearly", 1)]
    finally:
        for db in databases:
            await db.dispose()
