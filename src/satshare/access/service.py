"""Access to private channels follows active subscriptions: who may join, who must go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.access import repository
from satshare.access.models import ChannelAccess, ChannelLink
from satshare.db import insert_ignore


async def chats_of_active_subscriptions(
    session: AsyncSession, user_id: int, now: datetime
) -> set[int]:
    rows = await repository.channels_of_active_plans(session, user_id, now)
    return {int(chat) for channels in rows for chat in channels or []}


async def may_join(session: AsyncSession, user_id: int, chat_id: int, now: datetime) -> bool:
    return chat_id in await chats_of_active_subscriptions(session, user_id, now)


async def record(
    session: AsyncSession,
    user_id: int,
    chat_id: int,
    status: str,
    now: datetime,
    *,
    invite_link: str | None = None,
    link_expires_at: datetime | None = None,
) -> None:
    await insert_ignore(
        session,
        ChannelAccess,
        {"user_id": user_id, "chat_id": chat_id, "status": status, "updated_at": now},
        ["user_id", "chat_id"],
    )
    row = await repository.access_row(session, user_id, chat_id)
    row.status = status
    row.updated_at = now
    if invite_link is not None:
        row.invite_link = invite_link
        row.link_expires_at = link_expires_at
    await session.flush()


async def shared_link(session: AsyncSession, chat_id: int) -> str | None:
    link = await session.get(ChannelLink, chat_id)
    return link.invite_link if link else None


async def save_shared_link(session: AsyncSession, chat_id: int, link: str, now: datetime) -> str:
    """Keep the first link stored for a channel (two concurrent creators agree on one)."""
    await insert_ignore(
        session,
        ChannelLink,
        {"chat_id": chat_id, "invite_link": link, "created_at": now},
        ["chat_id"],
    )
    stored = await session.get(ChannelLink, chat_id)
    assert stored is not None
    return stored.invite_link


@dataclass(frozen=True, slots=True)
class Removal:
    access_id: int
    user_id: int
    chat_id: int
    external_id: str | None


async def due_for_removal(session: AsyncSession, now: datetime, limit: int) -> list[Removal]:
    """People let in whose subscriptions no longer cover the chat (oldest first)."""
    rows = await repository.let_in(session)
    removals: list[Removal] = []
    covered: dict[int, set[int]] = {}
    for access, external_id in rows:
        if access.user_id not in covered:
            covered[access.user_id] = await chats_of_active_subscriptions(
                session, access.user_id, now
            )
        if access.chat_id not in covered[access.user_id]:
            removals.append(Removal(access.id, access.user_id, access.chat_id, external_id))
            if len(removals) >= limit:
                break
    return removals


async def mark_removed(session: AsyncSession, access_ids: Sequence[int], now: datetime) -> None:
    for access_id in access_ids:
        row = await session.get(ChannelAccess, access_id)
        if row is not None:
            row.status = "removed"
            row.updated_at = now
    await session.flush()
