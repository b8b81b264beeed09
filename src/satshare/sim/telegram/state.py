"""What the emulated Telegram remembers, and how it shows it as Bot API objects.

Owns the records (users, chats, invite links, messages), the errors every Bot API method
answers with, and :class:`TelegramState`: the bot's identity, the clock, and every table the
method handlers and the user driver read and write (users, chats, messages, invite links,
join requests, button presses, commands, Stars invoice links and charges, the log of calls).
It knows nothing of HTTP, rates or the update queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Telegram user ids the emulator hands out start after this one.
FIRST_USER_ID = 100_000_000


class BotApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad(description: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {description}")


@dataclass
class SimUser:
    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = None
    blocked_bot: bool = False
    started: bool = False

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class SimChat:
    id: int
    type: str  # private | group | supergroup | channel
    title: str | None = None
    members: dict[int, str] = field(default_factory=dict)  # user id -> status

    def as_json(self, users: dict[int, SimUser]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            user = users.get(self.id)
            data["first_name"] = user.first_name if user else "User"
            if user and user.username:
                data["username"] = user.username
        else:
            data["title"] = self.title or f"Chat {self.id}"
        return data


@dataclass
class SimInviteLink:
    invite_link: str
    chat_id: int
    creates_join_request: bool
    member_limit: int | None
    expire_date: int | None
    name: str | None
    is_revoked: bool = False
    usage: int = 0

    def as_json(self, bot: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "invite_link": self.invite_link,
            "creator": bot,
            "creates_join_request": self.creates_join_request,
            "is_primary": False,
            "is_revoked": self.is_revoked,
        }
        for key in ("member_limit", "expire_date", "name"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass
class SimMessage:
    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    text: str | None = None
    caption: str | None = None
    photo: bool = False
    photo_bytes: bytes | None = None
    document_name: str | None = None
    document_bytes: bytes | None = None
    reply_markup: dict[str, Any] | None = None
    parse_mode: str | None = None
    invoice: dict[str, Any] | None = None
    #: A user's Stars payment (the service message Telegram shows for it).
    successful_payment: dict[str, Any] | None = None

    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]


class TelegramState:
    """The tables of one emulated Telegram as one bot sees it, with lookups that answer
    Telegram's own errors ("chat not found", "user not found")."""

    def __init__(
        self,
        *,
        bot_id: int,
        bot_username: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_id = bot_id
        self.bot: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "SatShare",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.clock = clock
        #: Where the links this Telegram makes (invite links, Stars invoice links) point: t.me,
        #: or in the sandbox a page of SatShare's own that plays what Telegram would show.
        self.link_base = "https://t.me"
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.messages: dict[int, list[SimMessage]] = {}
        self.links: dict[str, SimInviteLink] = {}
        self.join_requests: dict[tuple[int, int], int] = {}  # (chat, user) -> date
        self.callbacks: dict[str, tuple[int, int, bool]] = {}  # id -> (user, message, answered)
        self.answers: dict[str, str | None] = {}  # callback query id -> the text shown
        self.alerts: set[str] = set()  # callback query ids answered with show_alert
        self.query_of_update: dict[int, str] = {}  # update id -> callback query id
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # Telegram Stars: invoice links, pending pre-checkout answers, charges made.
        self.invoice_links: dict[str, dict[str, Any]] = {}
        self.pre_checkouts: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}
        self.charges: dict[str, dict[str, Any]] = {}  # charge id -> {user, amount, refunded}

    def now(self) -> int:
        return int(self.clock())

    def add_user(
        self,
        user_id: int | None = None,
        first_name: str = "User",
        username: str | None = None,
        language_code: str | None = "en",
    ) -> SimUser:
        # After the highest id so far: users restored after a restart keep theirs.
        user_id = user_id or max([FIRST_USER_ID, *self.users]) + 1
        user = SimUser(user_id, first_name, username, language_code)
        self.users[user_id] = user
        return user

    def add_chat(self, chat_id: int, title: str, chat_type: str = "channel") -> SimChat:
        chat = SimChat(chat_id, chat_type, title, {self.bot_id: "administrator"})
        self.chats[chat_id] = chat
        return chat

    def sent_to(self, chat_id: int) -> list[SimMessage]:
        return [m for m in self.messages.get(chat_id, []) if m.from_bot]

    def member_status(self, chat_id: int, user_id: int) -> str:
        chat = self.chats.get(chat_id)
        return chat.members.get(user_id, "left") if chat else "left"

    def find_chat(self, chat_id: Any) -> SimChat:
        """The chat, or "chat not found"; a user who started the bot has a private chat."""
        if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
            raise bad("chat not found")
        chat_id = int(chat_id)
        if chat_id in self.chats:
            return self.chats[chat_id]
        user = self.users.get(chat_id)
        if user is not None and user.started:
            chat = SimChat(chat_id, "private")
            self.chats[chat_id] = chat
            return chat
        raise bad("chat not found")

    def find_user(self, user_id: Any) -> SimUser:
        user = self.users.get(int(user_id))
        if user is None:
            raise bad("user not found")
        return user

    def find_message(self, chat_id: int, message_id: int) -> SimMessage:
        for message in self.messages.get(chat_id, []):
            if message.message_id == message_id:
                return message
        raise bad("message to edit not found")

    def store(self, message: SimMessage) -> SimMessage:
        self.messages.setdefault(message.chat_id, []).append(message)
        return message

    def next_message_id(self, chat_id: int) -> int:
        return len(self.messages.get(chat_id, [])) + 1

    def message_json(self, message: SimMessage) -> dict[str, Any]:
        chat = self.chats.get(message.chat_id) or SimChat(message.chat_id, "private")
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": chat.as_json(self.users),
        }
        if message.from_bot:
            data["from"] = self.bot
        elif message.chat_id in self.users:
            data["from"] = self.users[message.chat_id].as_json()
        if message.text is not None:
            data["text"] = message.text
            if not message.from_bot and message.text.startswith("/"):
                command = message.text.split()[0]
                data["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if message.photo:
            data["photo"] = [
                {
                    "file_id": f"photo-{message.chat_id}-{message.message_id}",
                    "file_unique_id": f"u{message.chat_id}{message.message_id}",
                    "width": 512,
                    "height": 512,
                }
            ]
            if message.caption is not None:
                data["caption"] = message.caption
        if message.document_bytes is not None:
            data["document"] = {
                "file_id": f"document-{message.chat_id}-{message.message_id}",
                "file_unique_id": f"d{message.chat_id}{message.message_id}",
                "file_name": message.document_name,
                "file_size": len(message.document_bytes),
            }
            if message.caption is not None:
                data["caption"] = message.caption
        if message.reply_markup:
            data["reply_markup"] = message.reply_markup
        if message.invoice:
            data["invoice"] = message.invoice
        return data
