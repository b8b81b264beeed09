"""Bot API methods on messages and their buttons.

Owns ``sendMessage``, ``sendPhoto``, ``sendDocument``, ``editMessageText``,
``editMessageReplyMarkup``, ``deleteMessage`` and ``answerCallbackQuery``, with what every
send shares (:func:`send_from_bot`: the inline keyboard checked, 403 when the user blocked
the bot, 429 over the rate limits, the message stored in its chat). ``sendInvoice`` uses it
too (``stars``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.datastructures import UploadFile

from satshare.sim.telegram.state import BotApiError, SimChat, SimMessage, bad

if TYPE_CHECKING:
    from satshare.sim.telegram.emulator import TelegramEmulator


def check_markup(tg: TelegramEmulator, markup: Any) -> dict[str, Any] | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad("can't parse inline keyboard button: Text buttons are unallowed")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad("BUTTON_DATA_INVALID")
            url = button.get("url")
            # Telegram's own links (t.me, or the sandbox page standing in for it) always work.
            if url is not None and not str(url).startswith(f"{tg.link_base}/"):
                host = urlsplit(str(url)).hostname or ""
                if (
                    not str(url).startswith(("https://", "http://", "tg://"))
                    or host in ("localhost", "127.0.0.1")
                    or host.startswith("127.")
                ):
                    raise bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    return markup


def _deliverable(tg: TelegramEmulator, params: dict[str, Any]) -> SimChat:
    chat = tg.find_chat(params["chat_id"])
    if chat.type == "private":
        user = tg.users.get(chat.id)
        if user is not None and user.blocked_bot:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
    tg.limits.throttle(chat.id)
    return chat


def send_from_bot(tg: TelegramEmulator, params: dict[str, Any], **content: Any) -> SimMessage:
    """What every send method shares: the keyboard checked, the chat reachable (403 when
    blocked, 429 over the rate), the message stored for the chat."""
    markup = check_markup(tg, params.get("reply_markup"))
    chat = _deliverable(tg, params)
    return tg.store(
        SimMessage(
            tg.next_message_id(chat.id),
            chat.id,
            True,
            tg.now(),
            reply_markup=markup,
            parse_mode=params.get("parse_mode"),
            **content,
        )
    )


async def send_message(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    text = str(params["text"])
    if not text.strip():
        raise bad("message text is empty")
    if len(text) > 4096:
        raise bad("message is too long")
    return tg.message_json(send_from_bot(tg, params, text=text))


async def send_photo(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    photo = params["photo"]
    content: bytes | None = None
    if isinstance(photo, UploadFile):
        content = await photo.read()
        if not content:
            raise bad("file must be non-empty")
    elif not isinstance(photo, str) or not photo:
        raise bad("wrong remote file identifier specified")
    return _send_media(tg, params, photo=True, photo_bytes=content)


async def send_document(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    document = params["document"]
    if not isinstance(document, UploadFile):
        raise bad("the emulator takes uploaded documents only")
    content = await document.read()
    if not content:
        raise bad("file must be non-empty")
    if len(content) > 50 * 1024 * 1024:
        raise BotApiError(413, "Request Entity Too Large")
    return _send_media(
        tg, params, document_name=document.filename or "document", document_bytes=content
    )


def _send_media(tg: TelegramEmulator, params: dict[str, Any], **media: Any) -> dict[str, Any]:
    """A photo or a document with an optional caption (at most 1,024 characters)."""
    caption = params.get("caption")
    if caption is not None and len(str(caption)) > 1024:
        raise bad("message caption is too long")
    return tg.message_json(send_from_bot(tg, params, caption=caption, **media))


async def edit_message_text(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    if "chat_id" not in params or "message_id" not in params:
        raise bad("message identifier is not specified")
    chat = tg.find_chat(params["chat_id"])
    message = tg.find_message(chat.id, int(params["message_id"]))
    if not message.from_bot:
        raise bad("message can't be edited")
    text = str(params["text"])
    markup = check_markup(tg, params.get("reply_markup"))
    if message.text == text and message.reply_markup == markup:
        raise bad(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )
    if message.photo:
        raise bad("there is no text in the message to edit")
    message.text = text
    message.reply_markup = markup
    message.parse_mode = params.get("parse_mode")
    return tg.message_json(message)


async def edit_reply_markup(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    chat = tg.find_chat(params["chat_id"])
    message = tg.find_message(chat.id, int(params["message_id"]))
    message.reply_markup = check_markup(tg, params.get("reply_markup"))
    return tg.message_json(message)


async def delete_message(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    chat = tg.find_chat(params["chat_id"])
    message = tg.find_message(chat.id, int(params["message_id"]))
    tg.messages[chat.id].remove(message)
    return True


async def answer_callback(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    query_id = str(params["callback_query_id"])
    known = tg.callbacks.get(query_id)
    if known is None or known[2]:
        raise bad("query is too old and response timeout expired or query ID is invalid")
    tg.callbacks[query_id] = (known[0], known[1], True)
    tg.answers[query_id] = params.get("text")
    if str(params.get("show_alert", "")).lower() in ("true", "1"):
        tg.alerts.add(query_id)
    return True


METHODS = {
    "sendMessage": send_message,
    "sendPhoto": send_photo,
    "sendDocument": send_document,
    "editMessageText": edit_message_text,
    "editMessageReplyMarkup": edit_reply_markup,
    "deleteMessage": delete_message,
    "answerCallbackQuery": answer_callback,
}
