"""Outbox use cases that open their own units of work (for the bot's sender).

Each marks one claimed message in its own short transaction, so what was sent is recorded
right after Telegram accepted it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from satshare.db import Database, purge_in_batches
from satshare.notifications import repository, service
from satshare.notifications.messages import Message


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row claimed for sending, as it is stored."""

    id: int
    kind: str
    user_id: int | None
    chat_id: int | None
    payload: dict[str, Any]
    dedupe_key: str
    attempts: int


async def claim_due(db: Database, now: datetime, limit: int) -> list[Claimed]:
    """Take due messages for sending (a lease: see ``service.claim_due``)."""
    async with db.transaction() as session:
        rows = await service.claim_due(session, now, limit)
        return [
            Claimed(r.id, r.kind, r.user_id, r.chat_id, dict(r.payload), r.dedupe_key, r.attempts)
            for r in rows
        ]


async def mark_sent(db: Database, message_id: int, now: datetime) -> None:
    async with db.transaction() as session:
        await service.mark_sent(session, message_id, now)


async def mark_skipped(db: Database, message_id: int, reason: str, now: datetime) -> None:
    async with db.transaction() as session:
        await service.mark_skipped(session, message_id, reason, now)


async def mark_failed(db: Database, message_id: int, reason: str) -> None:
    async with db.transaction() as session:
        await service.mark_failed(session, message_id, reason)


async def retry_later(db: Database, message_id: int, at: datetime, error: str) -> None:
    async with db.transaction() as session:
        await service.retry_later(session, message_id, at, error)


async def fan_out(
    db: Database,
    message_id: int,
    typed: Message,
    *,
    dedupe_key: str,
    chat_ids: Sequence[int],
    now: datetime,
) -> None:
    """One row per chat for a message addressed to several (each gets it exactly once);
    the original is then done, or skipped when there is no chat to send it to."""
    async with db.transaction() as session:
        for chat_id in chat_ids:
            await service.enqueue(
                session, typed, dedupe_key=f"{dedupe_key}:chat:{chat_id}", chat_id=chat_id, now=now
            )
        if chat_ids:
            await service.mark_sent(session, message_id, now)
        else:
            await service.mark_skipped(session, message_id, "no telegram.admin_chat_ids", now)


#: Rows deleted per transaction by ``purge_delivered``: short locks, bounded work each.
PURGE_BATCH = 5_000


async def purge_delivered(db: Database, before: datetime, batch: int = PURGE_BATCH) -> int:
    """Delete the messages sent or skipped before ``before``, a batch per transaction (the
    table would otherwise grow by three rows a sale for ever, #15); how many."""
    return await purge_in_batches(
        db, lambda session, limit: repository.purge_delivered(session, before, limit), batch
    )


async def backlog(db: Database, now: datetime) -> repository.Backlog:
    """Undelivered messages by status and the age of the oldest waiting one (/metrics)."""
    async with db.reading() as session:
        return await repository.backlog(session, now)
