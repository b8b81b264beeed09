"""Take people out of the private chats when their subscription no longer covers them.

Removal is ban + unban (only_if_banned), so they can come back after renewing. A dry-run
switch logs who would go; a per-run cap bounds the damage of a mistake.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from telegram import Bot
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from satshare.access import flows as access
from satshare.bot.runtime import BotRuntime

log = logging.getLogger(__name__)


@dataclass
class RemovalReport:
    removed: int = 0
    would_remove: list[tuple[int, int]] = field(default_factory=list)  # (user id, chat id)
    errors: list[str] = field(default_factory=list)


async def remove_expired_members(runtime: BotRuntime, bot: Bot) -> RemovalReport:
    report = RemovalReport()
    settings = runtime.settings
    due = await access.due_for_removal(runtime.db, runtime.now(), settings.removal_max_per_run)
    if settings.removal_dry_run:
        for removal in due:
            log.info("dry run: would remove user %s from chat %s", removal.user_id, removal.chat_id)
            report.would_remove.append((removal.user_id, removal.chat_id))
        return report
    done: list[int] = []
    for removal in due:
        telegram_id = removal.external_id
        if telegram_id is None or not telegram_id.lstrip("-").isdigit():
            done.append(removal.access_id)  # not a Telegram account: nothing to remove
            continue
        try:
            await bot.ban_chat_member(removal.chat_id, int(telegram_id))
            await bot.unban_chat_member(removal.chat_id, int(telegram_id), only_if_banned=True)
        except RetryAfter as exc:
            report.errors.append(f"rate limited: {exc}")
            break  # the next run continues
        except (BadRequest, Forbidden) as exc:
            # Not in the chat any more, or the chat is gone: nothing left to remove.
            log.info("removing %s from %s: %s", telegram_id, removal.chat_id, exc)
        except TelegramError as exc:
            report.errors.append(f"user {removal.user_id} in {removal.chat_id}: {exc}")
            continue
        done.append(removal.access_id)
        report.removed += 1
    if done:
        await access.mark_removed(runtime.db, done, runtime.now())
    return report
