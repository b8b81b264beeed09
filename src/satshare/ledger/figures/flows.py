"""The figures' use cases in their own units of work (for the CLI)."""

from __future__ import annotations

from datetime import datetime

from satshare.db import Database
from satshare.ledger.figures import repository, service


async def rebuild(db: Database, now: datetime) -> int:
    """Empty the figures and fold every sealed entry again, in one transaction that holds
    the chain head (sealers wait for it); the number of entries folded."""
    async with db.transaction() as session:
        await repository.lock_chain_head(session)
        return await service.rebuild(session, now)
