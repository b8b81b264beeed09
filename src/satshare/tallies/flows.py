"""The tallies' use cases in their own units of work (the expiry job's fold)."""

from __future__ import annotations

from satshare.db import Database
from satshare.tallies import service


async def fold(db: Database) -> int:
    """Fold every queued change, a batch per transaction; how many."""
    folded = 0
    while True:
        async with db.transaction() as session:
            done = await service.fold(session)
        folded += done
        if done < service.FOLD_BATCH:
            return folded
