"""The outbox: side effects written with the change that causes them, sent after commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import insert_ignore
from satshare.notifications.models import OutboxMessage


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    dedupe_key: str,
    payload: dict[str, object],
    now: datetime,
    user_id: int | None = None,
    chat_id: int | None = None,
) -> bool:
    """Queue a message once; a second call with the same key is a no-op."""
    return await insert_ignore(
        session,
        OutboxMessage,
        {
            "kind": kind,
            "dedupe_key": dedupe_key,
            "payload": payload,
            "user_id": user_id,
            "chat_id": chat_id,
            "created_at": now,
            "attempts": 0,
        },
        ["dedupe_key"],
    )
