"""Idempotency-Key records: claim, complete, abandon."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import insert_ignore
from satshare.idempotency.models import IdempotencyRecord


@dataclass(frozen=True, slots=True)
class Claim:
    state: str  # new | replay | mismatch | in_flight
    record: IdempotencyRecord


async def claim(
    session: AsyncSession,
    *,
    api_key_id: int,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    now: datetime,
) -> Claim:
    inserted = await insert_ignore(
        session,
        IdempotencyRecord,
        {
            "api_key_id": api_key_id,
            "key": key,
            "method": method,
            "path": path,
            "request_hash": request_hash,
            "created_at": now,
        },
        ["api_key_id", "key"],
    )
    record = (
        await session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key
            )
        )
    ).scalar_one()
    if inserted:
        return Claim("new", record)
    if record.request_hash != request_hash:
        return Claim("mismatch", record)
    if record.status_code is None:
        return Claim("in_flight", record)
    return Claim("replay", record)


async def complete(
    session: AsyncSession, record_id: int, status_code: int, content_type: str | None, body: str
) -> None:
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .values(status_code=status_code, content_type=content_type, response_body=body)
    )


async def abandon(session: AsyncSession, record_id: int) -> None:
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


async def purge_older_than(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
