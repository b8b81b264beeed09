"""Rate-limit counter use cases in their own units of work (the jobs' housekeeping)."""

from __future__ import annotations

from satshare.db import Database
from satshare.ratelimits import repository


async def purge_expired(db: Database, now: float) -> int:
    """Forget the counters of windows that ended before ``now`` (a Unix time); how many."""
    async with db.transaction() as session:
        return await repository.purge_expired(session, now)
