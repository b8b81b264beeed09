"""Buttons in the admin chats: approve or cancel a payout that waits for approval."""

from __future__ import annotations

from telegram import Update

from satshare.bot import keyboards, texts
from satshare.bot.handlers.ui import answer, show
from satshare.bot.runtime import BotContext, esc, t
from satshare.errors import DomainError
from satshare.payouts import flows


async def decide_payout(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    query = update.callback_query
    chat = update.effective_chat
    admin = update.effective_user
    assert query is not None and query.data is not None and admin is not None
    language = "en"  # admin chats get admin messages in English, like the others
    if chat is None or chat.id not in runtime.settings.admin_chat_ids:
        await answer(query, t(language, texts.PAYOUT_DECISION_REFUSED, reason="not an admin chat"))
        return
    approve = query.data.startswith(keyboards.PAYOUT_APPROVE)
    payout_id = int(query.data.split(":", 1)[1])
    who = f"@{admin.username}" if admin.username else admin.first_name
    author = f"telegram:{admin.id}"
    try:
        if approve:
            await flows.approve(runtime.payouts, payout_id, author)
        else:
            await flows.cancel(runtime.payouts, payout_id, author, None)
    except DomainError as exc:
        await answer(query, t(language, texts.PAYOUT_DECISION_REFUSED, reason=exc.detail))
        return
    done = texts.PAYOUT_DECIDED_APPROVED if approve else texts.PAYOUT_DECIDED_CANCELED
    await show(update, context, t(language, done, id=payout_id, admin=esc(who)))
