"""Idempotency-Key records: claim, complete, abandon."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import insert_ignore
from satshare.idempotency.models import IdempotencyRecord


class ClaimState(StrEnum):
    NEW = "new"  # run the request
    REPLAY = "replay"  # answer with the stored response
    MISMATCH = "mismatch"  # the key was used for another request
    IN_FLIGHT = "in_flight"  # another request under this key is running: retry later
    #: The request that held the key died after committing part of its effect and before its
    #: answer was stored: neither replaying nor running again is safe.
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
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
    in_flight_ttl: timedelta,
) -> Claim:
    """Claim ``key`` for this request. A claim still in flight after ``in_flight_ttl`` (no
    request runs that long: its holder died) is taken over when its holder committed nothing."""
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
            "claimed_at": now,
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
        return Claim(ClaimState.NEW, record)
    if record.request_hash != request_hash:
        return Claim(ClaimState.MISMATCH, record)
    if record.status_code is not None:
        return Claim(ClaimState.REPLAY, record)
    claimed_at = record.claimed_at or record.created_at
    if claimed_at > now - in_flight_ttl:
        return Claim(ClaimState.IN_FLIGHT, record)
    if record.effect_committed_at is not None:
        return Claim(ClaimState.INCOMPLETE, record)
    taken = await session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == record.id,
            IdempotencyRecord.status_code.is_(None),
            IdempotencyRecord.effect_committed_at.is_(None),
            or_(
                IdempotencyRecord.claimed_at == record.claimed_at,
                IdempotencyRecord.claimed_at.is_(None),
            ),
        )
        .values(claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        return Claim(ClaimState.IN_FLIGHT, record)  # another retry took it over first
    return Claim(ClaimState.NEW, record)


async def mark_effect(session: AsyncSession, record_id: int, now: datetime) -> None:
    """In the same transaction as a write of the request: it has committed an effect."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.effect_committed_at.is_(None))
        .values(effect_committed_at=now)
    )


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
