"""API key use cases in their own units of work (for the API's authentication and the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from satshare.apikeys import service
from satshare.apikeys.models import ApiKey
from satshare.db import Database


async def authenticate(db: Database, plaintext: str) -> ApiKey | None:
    """The live key with this secret. One SELECT, sent alone (no BEGIN and COMMIT on
    PostgreSQL): every API request asks it (#15)."""
    async with db.each_statement_alone(write=False) as session:
        return await service.authenticate(session, plaintext)


async def touch(db: Database, key_id: int, now: datetime) -> None:
    """Record a key's use. Bookkeeping, not the request's effect (``effect=False``: see the
    idempotency middleware)."""
    async with db.transaction(effect=False) as session:
        await service.touch(session, key_id, now)


async def create(
    db: Database,
    name: str,
    scopes: Sequence[str],
    now: datetime,
    *,
    platform: str | None = None,
) -> service.IssuedKey:
    """``platform`` binds the key to one platform's users (#14)."""
    async with db.transaction() as session:
        return await service.create(session, name, scopes, now, platform=platform)


async def list_keys(db: Database) -> Sequence[ApiKey]:
    async with db.reading() as session:
        return await service.list_keys(session)


async def revoke(db: Database, reference: str, now: datetime) -> ApiKey:
    async with db.transaction() as session:
        return await service.revoke(session, reference, now)


async def revoke_named(db: Database, name: str, now: datetime) -> int:
    async with db.transaction() as session:
        return await service.revoke_named(session, name, now)
