"""Housekeeping of Idempotency-Key records, in its own unit of work (for the jobs)."""

from __future__ import annotations

from datetime import datetime

from satshare.db import Database
from satshare.idempotency import repository


async def purge_older_than(db: Database, before: datetime) -> None:
    async with db.transaction() as session:
        await repository.purge_older_than(session, before)
