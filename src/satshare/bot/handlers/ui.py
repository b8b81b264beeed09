"""Showing things in Telegram: edit the message a button belongs to, or send a new one."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from satshare.bot.runtime import BotContext

log = logging.getLogger(__name__)


async def show(
    update: Update,
    context: BotContext,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    notice: str | None = None,
) -> Message | None:
    """Edit the message a button belongs to, or send a new one; then answer the button (with
    ``notice`` as an alert, if given)."""
    query = update.callback_query
    shown: Message | None = None
    edited_in_place = False
    if query is not None and isinstance(query.message, Message) and query.message.text:
        try:
            result = await query.message.edit_text(
                text, reply_markup=markup, parse_mode=ParseMode.HTML, disable_web_page_preview=True
            )
            shown = result if isinstance(result, Message) else None
            edited_in_place = True
        except BadRequest as exc:
            edited_in_place = "not modified" in str(exc).lower()
            if not edited_in_place:
                log.info("could not edit, sending instead: %s", exc)
    if not edited_in_place:
        chat = update.effective_chat
        assert chat is not None
        shown = await context.bot.send_message(
            chat.id,
            text,
            reply_markup=markup,
            parse_mode=ParseMode.HTML,
            disable_web_page_preview=True,
        )
    if query is not None:
        await answer(query, notice)
    return shown


async def answer(query: CallbackQuery, text: str | None = None) -> None:
    """Answer a button press once; answering is last so the screen is ready when it ends."""
    try:
        await query.answer(text, show_alert=text is not None)
    except BadRequest as exc:  # answered already, or too old (after a restart)
        log.debug("callback answer refused: %s", exc)


#: user_data key of the typed answer the bot is waiting for ("destination", "amount").
AWAITING = "awaiting"


def expect_input(context: BotContext, what: str | None) -> None:
    """Take the user's next text message as ``what``; None: stop waiting (menu, /start)."""
    if context.user_data is None:
        return
    if what is None:
        context.user_data.pop(AWAITING, None)
    else:
        context.user_data[AWAITING] = what


def expected_input(context: BotContext) -> str | None:
    value = context.user_data.get(AWAITING) if context.user_data is not None else None
    return value if isinstance(value, str) else None
