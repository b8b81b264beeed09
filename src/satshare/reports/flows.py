"""Report reads in their own units of work (for the API, the bot and the CLI)."""

from __future__ import annotations

from datetime import datetime

from satshare.db import Database
from satshare.reports import recompute, statements
from satshare.reports import transparency as public
from satshare.reports.monthly import MonthlyReport, monthly_report
from satshare.users import service as users


async def month(db: Database, month: str, now: datetime) -> MonthlyReport:
    async with db.reading() as session:
        return await monthly_report(session, month, now)


async def commission_statements(
    db: Database, user_id: int, *, limit: int, before_id: int | None = None
) -> list[statements.Statement]:
    async with db.reading() as session:
        return await statements.commission_statements(
            session, user_id, limit=limit, before_id=before_id
        )


async def statements_of_user(
    db: Database, user_id: int, *, limit: int, before_id: int | None = None
) -> list[statements.Statement]:
    """``commission_statements`` of a user who may not exist (NotFound)."""
    async with db.reading() as session:
        await users.require(session, user_id)
        return await statements.commission_statements(
            session, user_id, limit=limit, before_id=before_id
        )


async def transparency(db: Database, now: datetime) -> public.Transparency:
    async with db.reading() as session:
        return await public.transparency(session, now)


async def check_figures(db: Database, now: datetime, *, months: bool = True) -> recompute.Report:
    """Every figure against its recomputation from the ledger (``satshare figures check``)."""
    async with db.reading() as session:
        return await recompute.check(session, now, months=months)
