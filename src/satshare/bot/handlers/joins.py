"""Join requests to the private channels: approved only while a subscription covers them."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.error import BadRequest, Forbidden

from satshare.access import flows as access_flows
from satshare.bot import texts
from satshare.bot.runtime import PLATFORM, BotContext, esc, t
from satshare.users import flows as user_flows

log = logging.getLogger(__name__)


async def join_request(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    request = update.chat_join_request
    assert request is not None
    chat, requester = request.chat, request.from_user
    now = runtime.now()
    user = await user_flows.by_external_id(runtime.db, PLATFORM, str(requester.id))
    allowed = user is not None and await access_flows.may_join(runtime.db, user.id, chat.id, now)
    title = esc(chat.title or str(chat.id))
    language = user.language if user is not None else "en"
    try:
        if allowed:
            assert user is not None
            await request.approve()
            await access_flows.record(runtime.db, user.id, chat.id, "member", now)
            message = t(language, texts.JOIN_APPROVED, chat=title)
        else:
            await request.decline()
            message = t(language, texts.JOIN_DECLINED, chat=title)
    except BadRequest as exc:  # already handled elsewhere, or the request was withdrawn
        log.info("join request of %s to %s: %s", requester.id, chat.id, exc)
        return
    # If they never started the bot, or blocked it, the decision stands anyway.
    with contextlib.suppress(Forbidden, BadRequest):
        await context.bot.send_message(request.user_chat_id, message)
