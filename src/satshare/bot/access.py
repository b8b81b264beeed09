"""Links into the private channels, as configured: a shared join-request link per channel
(approved only for active subscribers), or a one-use expiring link per buyer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from telegram import Bot
from telegram.error import TelegramError

from satshare.access import flows as access
from satshare.bot import texts
from satshare.bot.runtime import BotRuntime, t

log = logging.getLogger(__name__)


async def links_for(
    runtime: BotRuntime, bot: Bot, user_id: int, chat_ids: Sequence[int]
) -> list[str]:
    """Invite links for ``user_id`` into each chat; raises TelegramError if one fails."""
    db = runtime.db
    now = runtime.now()
    links: list[str] = []
    for chat_id in chat_ids:
        if runtime.settings.access_mode == "join_request":
            link = await access.shared_link(db, chat_id)
            if link is None:
                created = await bot.create_chat_invite_link(
                    chat_id, name="SatShare subscribers", creates_join_request=True
                )
                link = await access.save_shared_link(db, chat_id, created.invite_link, now)
            links.append(link)
        else:
            expires = now + timedelta(hours=runtime.settings.invite_link_ttl_hours)
            created = await bot.create_chat_invite_link(
                chat_id, name=f"SatShare #{user_id}", member_limit=1, expire_date=expires
            )
            await access.record(
                db,
                user_id,
                chat_id,
                "granted",
                now,
                invite_link=created.invite_link,
                link_expires_at=expires,
            )
            links.append(created.invite_link)
    return links


async def safe_links_for(
    runtime: BotRuntime, bot: Bot, user_id: int, chat_ids: Sequence[int]
) -> list[str] | None:
    try:
        return await links_for(runtime, bot, user_id, chat_ids)
    except TelegramError as exc:
        log.warning("could not create invite links for user %s: %s", user_id, exc)
        return None


def access_hint(runtime: BotRuntime, language: str) -> str:
    """How to use the links: ask to join, or a personal one-use link."""
    if runtime.settings.access_mode == "join_request":
        return "\n" + t(language, texts.ACCESS_JOIN_REQUEST)
    return "\n" + t(language, texts.ACCESS_ONE_USE, hours=runtime.settings.invite_link_ttl_hours)
