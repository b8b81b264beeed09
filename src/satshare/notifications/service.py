"""The outbox: side effects written with the change that causes them, sent after commit.

The outbox is the lowest domain layer: every domain may queue a message here, and it imports
no other domain (what is due — e.g. the expiry reminders — is selected by the domain that owns
the data, see ``satshare.subscriptions.reminders``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import insert_ignore_rows
from satshare.notifications import repository
from satshare.notifications.messages import Message
from satshare.notifications.models import OutboxMessage


async def enqueue(
    session: AsyncSession,
    message: Message,
    *,
    dedupe_key: str,
    now: datetime,
    user_id: int | None = None,
    chat_id: int | None = None,
) -> bool:
    """Queue a message once; a second call with the same key is a no-op."""
    return bool(await enqueue_all(session, [Queued(message, dedupe_key, user_id, chat_id)], now))


@dataclass(frozen=True, slots=True)
class Queued:
    """One message for ``enqueue_all``."""

    message: Message
    dedupe_key: str
    user_id: int | None = None
    chat_id: int | None = None


async def enqueue_all(session: AsyncSession, messages: Sequence[Queued], now: datetime) -> int:
    """Queue several messages in one statement (a settlement's three), each once by its
    key; how many were new."""
    if not messages:
        return 0
    inserted = await insert_ignore_rows(
        session,
        OutboxMessage,
        [
            {
                "kind": queued.message.kind,
                "dedupe_key": queued.dedupe_key,
                "payload": queued.message.to_payload(),
                "user_id": queued.user_id,
                "chat_id": queued.chat_id,
                "created_at": now,
                "attempts": 0,
            }
            for queued in messages
        ],
        ["dedupe_key"],
    )
    return len(inserted)


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, lease: timedelta = timedelta(minutes=5)
) -> Sequence[OutboxMessage]:
    """Take due messages for sending. A claim is a lease: a sender that dies mid-way leaves
    its messages to be taken again once the lease ends (at-least-once in that window only).
    Concurrent senders (several processes) skip each other's rows."""
    rows = await repository.due_for_update(session, now, limit)
    for row in rows:
        row.status = "sending"
        row.next_attempt_at = now + lease
    await session.flush()
    return rows


async def _row(session: AsyncSession, message_id: int) -> OutboxMessage:
    row = await session.get(OutboxMessage, message_id)
    assert row is not None
    return row


async def mark_sent(session: AsyncSession, message_id: int, now: datetime) -> None:
    await repository.mark_sent(session, message_id, now)


async def mark_skipped(session: AsyncSession, message_id: int, reason: str, now: datetime) -> None:
    row = await _row(session, message_id)
    row.status, row.sent_at, row.last_error = "skipped", now, reason


async def mark_failed(session: AsyncSession, message_id: int, reason: str) -> None:
    row = await _row(session, message_id)
    row.status, row.last_error = "failed", reason[:500]


async def retry_later(
    session: AsyncSession, message_id: int, at: datetime, error: str, max_attempts: int = 8
) -> None:
    row = await _row(session, message_id)
    row.attempts += 1
    row.last_error = error[:500]
    if row.attempts >= max_attempts:
        row.status = "failed"
    else:
        row.status = "pending"
        row.next_attempt_at = at
