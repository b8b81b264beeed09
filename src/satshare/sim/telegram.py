"""A Telegram Bot API emulator over real HTTP: ``POST|GET /bot<token>/<method>``.

Requests are checked against the Bot API 10.1 method list copied into ``telegram_api.json``:
an unknown method is 404, a known one this emulator does not implement is 501, a missing
required field is 400 with a Telegram-style description. Parameters arrive as JSON,
form-urlencoded or multipart (python-telegram-bot sends forms), and are coerced by the
types the specification gives them.

It keeps state: users (who may block the bot), private chats, channels and groups with their
members, invite links and join requests, bans, and every message the bot sent with its
keyboard. It answers ``getUpdates`` long polls or pushes updates to a webhook with
``X-Telegram-Bot-Api-Secret-Token``, and enforces limits: 429 with
``parameters.retry_after`` above the global rate (default 30 messages/s) or a chat's rate
(1/s sustained), 403 for users who blocked the bot.

A control API under ``/_sim`` lets tests, benchmarks and the sandbox page act as users:
send a command or text, press a button, ask to join through a link, block the bot, and read
what the bot sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

SPEC: dict[str, Any] = json.loads(
    resources.files("satshare.sim").joinpath("telegram_api.json").read_text()
)
ALL_METHODS = {name.lower(): name for name in SPEC["all_methods"]}
SEND_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "sendInvoice"}


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

    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.capacity = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self) -> float:
        """Take one token; return 0 if allowed, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class TelegramEmulator:
    def __init__(
        self,
        token: str,
        *,
        bot_id: int = 7_000_000_001,
        bot_username: str = "satshare_sandbox_bot",
        global_rate: float = 30.0,
        chat_rate: float = 1.0,
        chat_burst: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
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
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.messages: dict[int, list[SimMessage]] = {}
        self.links: dict[str, SimInviteLink] = {}
        self.join_requests: dict[tuple[int, int], int] = {}  # (chat, user) -> date
        self.callbacks: dict[str, tuple[int, int, bool]] = {}  # id -> (user, message, answered)
        self.answers: dict[str, str | None] = {}  # callback query id -> the text shown
        self._query_of_update: dict[int, str] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.global_rate = global_rate
        self.chat_rate = chat_rate
        self.chat_burst = chat_burst
        self._global_bucket = TokenBucket(global_rate, global_rate)
        self._chat_buckets: dict[int, TokenBucket] = {}
        self._pending: deque[dict[str, Any]] = deque()
        self._delivered: deque[dict[str, Any]] = deque(maxlen=10_000)  # for redelivery
        self._closing = False
        # Telegram Stars: invoice links, pending pre-checkout answers, charges made.
        self.invoice_links: dict[str, dict[str, Any]] = {}
        self._pre_checkouts: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}
        self.charges: dict[str, dict[str, Any]] = {}  # charge id -> {user, amount, refunded}
        self._next_update_id = 100_000
        self._new_update = asyncio.Event()
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback,
            "setMyCommands": self._set_commands,
            "getMyCommands": self._get_commands,
            "deleteMyCommands": self._delete_commands,
            "createChatInviteLink": self._create_invite_link,
            "revokeChatInviteLink": self._revoke_invite_link,
            "approveChatJoinRequest": self._approve_join_request,
            "declineChatJoinRequest": self._decline_join_request,
            "banChatMember": self._ban,
            "unbanChatMember": self._unban,
            "getChatMember": self._get_chat_member,
            "sendInvoice": self._send_invoice,
            "createInvoiceLink": self._create_invoice_link,
            "answerPreCheckoutQuery": self._answer_pre_checkout,
            "refundStarPayment": self._refund_star_payment,
            "close": self._ok,
            "logOut": self._ok,
        }

    # -- state helpers --------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def add_user(
        self,
        user_id: int | None = None,
        first_name: str = "User",
        username: str | None = None,
        language_code: str | None = "en",
    ) -> SimUser:
        user_id = user_id or 100_000_000 + len(self.users) + 1
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

    def _chat(self, chat_id: Any) -> SimChat:
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

    def _user(self, user_id: Any) -> SimUser:
        user = self.users.get(int(user_id))
        if user is None:
            raise bad("user not found")
        return user

    def _message(self, chat_id: int, message_id: int) -> SimMessage:
        for message in self.messages.get(chat_id, []):
            if message.message_id == message_id:
                return message
        raise bad("message to edit not found")

    def _store(self, message: SimMessage) -> SimMessage:
        self.messages.setdefault(message.chat_id, []).append(message)
        return message

    def _next_message_id(self, chat_id: int) -> int:
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

    # -- limits ---------------------------------------------------------------------------

    def _throttle(self, chat_id: int) -> None:
        wait = self._global_bucket.take()
        if wait == 0:
            bucket = self._chat_buckets.get(chat_id)
            if bucket is None:
                bucket = self._chat_buckets[chat_id] = TokenBucket(self.chat_rate, self.chat_burst)
            wait = bucket.take()
        if wait > 0:
            retry = max(1, int(wait + 0.999))
            raise BotApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)

    def set_limits(
        self,
        global_rate: float | None = None,
        chat_rate: float | None = None,
        chat_burst: float | None = None,
    ) -> None:
        if global_rate is not None:
            self.global_rate = global_rate
            self._global_bucket = TokenBucket(global_rate, global_rate)
        if chat_rate is not None:
            self.chat_rate = chat_rate
        if chat_burst is not None:
            self.chat_burst = chat_burst
        self._chat_buckets.clear()

    # -- updates --------------------------------------------------------------------------

    def push_update(self, payload: dict[str, Any], *, update_id: int | None = None) -> int:
        if update_id is None:
            self._next_update_id += 1
            update_id = self._next_update_id
        update = {"update_id": update_id, **payload}
        self._pending.append(update)
        self._new_update.set()
        if self.webhook_url:
            self._ensure_pusher()
        return update_id

    def user_sends(self, user_id: int, text: str) -> int:
        user = self._user(user_id)
        user.started = True
        chat = self._chat(user_id)
        message = self._store(
            SimMessage(self._next_message_id(chat.id), chat.id, False, self.now(), text=text)
        )
        return self.push_update({"message": self.message_json(message)})

    def callback_answered(self, update_id: int) -> bool:
        query_id = self._query_of_update.get(update_id)
        return query_id is not None and self.callbacks[query_id][2]

    def callback_answer(self, update_id: int) -> str | None:
        """The text the bot answered a button press with."""
        query_id = self._query_of_update.get(update_id)
        return self.answers.get(query_id) if query_id is not None else None

    def user_presses(self, user_id: int, message_id: int, data: str) -> int:
        user = self._user(user_id)
        message = self._message(user_id, message_id)
        if not any(b.get("callback_data") == data for b in message.buttons()):
            raise bad("no such button on that message")
        query_id = str(secrets.randbits(63))
        self.callbacks[query_id] = (user.id, message_id, False)
        update_id = self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.as_json(),
                    "message": self.message_json(message),
                    "chat_instance": str(user.id),
                    "data": data,
                }
            }
        )
        self._query_of_update[update_id] = query_id
        return update_id

    def user_joins(self, user_id: int, invite_link: str) -> str:
        """Follow an invite link: a join request, a direct join, or a refusal."""
        user = self._user(user_id)
        link = self.links.get(invite_link)
        if link is None or link.is_revoked:
            return "invalid"
        if link.expire_date is not None and link.expire_date < self.now():
            return "expired"
        chat = self.chats[link.chat_id]
        if chat.members.get(user.id) == "kicked":
            return "banned"
        if chat.members.get(user.id) in ("member", "administrator", "creator"):
            return "already_member"
        if link.creates_join_request:
            self.join_requests[(chat.id, user.id)] = self.now()
            self.push_update(
                {
                    "chat_join_request": {
                        "chat": chat.as_json(self.users),
                        "from": user.as_json(),
                        "user_chat_id": user.id,
                        "date": self.now(),
                        "invite_link": link.as_json(self.bot),
                    }
                }
            )
            return "requested"
        if link.member_limit is not None and link.usage >= link.member_limit:
            return "limit_reached"
        link.usage += 1
        chat.members[user.id] = "member"
        return "joined"

    def redeliver(self, update_id: int) -> None:
        """Send an update again with the same update_id (duplicate delivery)."""
        for update in list(self._delivered):
            if update["update_id"] == update_id:
                self._pending.append(update)
                self._new_update.set()
                if self.webhook_url:
                    self._ensure_pusher()
                return
        raise KeyError(update_id)

    async def _take_updates(self, offset: int | None, limit: int, timeout: float) -> list[Any]:
        if offset is not None:
            while self._pending and self._pending[0]["update_id"] < offset:
                self._delivered.append(self._pending.popleft())
        if not self._pending and timeout > 0 and not self._closing:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
            if offset is not None:
                while self._pending and self._pending[0]["update_id"] < offset:
                    self._delivered.append(self._pending.popleft())
        return list(self._pending)[:limit]

    def _ensure_pusher(self) -> None:
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.ensure_future(self._push_loop())

    async def _push_loop(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30)
        failures = 0
        while self.webhook_url and self._pending:
            update = self._pending[0]
            headers = {"Content-Type": "application/json"}
            if self.webhook_secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
            try:
                response = await self._client.post(
                    self.webhook_url, content=json.dumps(update), headers=headers
                )
                delivered = response.is_success
            except httpx.HTTPError:
                delivered = False
            if delivered:
                failures = 0
                if self._pending and self._pending[0] is update:
                    self._delivered.append(self._pending.popleft())
            else:
                failures += 1
                await asyncio.sleep(min(5.0, 0.05 * 2**failures))

    async def aclose(self) -> None:
        # Wake any long poll so the HTTP server can stop at once.
        self._closing = True
        self._new_update.set()
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pusher
        if self._client is not None:
            await self._client.aclose()

    # -- methods --------------------------------------------------------------------------

    async def _ok(self, params: dict[str, Any]) -> bool:
        return True

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot

    async def _get_updates(self, params: dict[str, Any]) -> list[Any]:
        if self.webhook_url:
            raise BotApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = min(50.0, float(params.get("timeout") or 0))
        offset = params.get("offset")
        return await self._take_updates(int(offset) if offset is not None else None, limit, timeout)

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params["url"])
        if url and not url.startswith(("https://", "http://")):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and (
            not 1 <= len(secret) <= 256 or not all(c.isalnum() or c in "_-" for c in secret)
        ):
            raise bad("secret token contains unallowed characters")
        self.webhook_url = url or None
        self.webhook_secret = secret
        if params.get("drop_pending_updates"):
            self._pending.clear()
        if self.webhook_url and self._pending:
            self._ensure_pusher()
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = None
        self.webhook_secret = None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    def _check_markup(self, markup: Any) -> dict[str, Any] | None:
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
                if url is not None:
                    host = urlsplit(str(url)).hostname or ""
                    if (
                        not str(url).startswith(("https://", "http://", "tg://"))
                        or host
                        in (
                            "localhost",
                            "127.0.0.1",
                        )
                        or host.startswith("127.")
                    ):
                        raise bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
        return markup

    def _deliverable(self, params: dict[str, Any]) -> SimChat:
        chat = self._chat(params["chat_id"])
        if chat.type == "private":
            user = self.users.get(chat.id)
            if user is not None and user.blocked_bot:
                raise BotApiError(403, "Forbidden: bot was blocked by the user")
        self._throttle(chat.id)
        return chat

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        text = str(params["text"])
        if not text.strip():
            raise bad("message text is empty")
        if len(text) > 4096:
            raise bad("message is too long")
        return self.message_json(self._send_from_bot(params, text=text))

    async def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        photo = params["photo"]
        content: bytes | None = None
        if isinstance(photo, UploadFile):
            content = await photo.read()
            if not content:
                raise bad("file must be non-empty")
        elif not isinstance(photo, str) or not photo:
            raise bad("wrong remote file identifier specified")
        return self._send_media(params, photo=True, photo_bytes=content)

    async def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        document = params["document"]
        if not isinstance(document, UploadFile):
            raise bad("the emulator takes uploaded documents only")
        content = await document.read()
        if not content:
            raise bad("file must be non-empty")
        if len(content) > 50 * 1024 * 1024:
            raise BotApiError(413, "Request Entity Too Large")
        return self._send_media(
            params, document_name=document.filename or "document", document_bytes=content
        )

    def _send_media(self, params: dict[str, Any], **media: Any) -> dict[str, Any]:
        """A photo or a document with an optional caption (at most 1,024 characters)."""
        caption = params.get("caption")
        if caption is not None and len(str(caption)) > 1024:
            raise bad("message caption is too long")
        return self.message_json(self._send_from_bot(params, caption=caption, **media))

    def _send_from_bot(self, params: dict[str, Any], **content: Any) -> SimMessage:
        """What every send method shares: the keyboard checked, the chat reachable (403 when
        blocked, 429 over the rate), the message stored for the chat."""
        markup = self._check_markup(params.get("reply_markup"))
        chat = self._deliverable(params)
        return self._store(
            SimMessage(
                self._next_message_id(chat.id),
                chat.id,
                True,
                self.now(),
                reply_markup=markup,
                parse_mode=params.get("parse_mode"),
                **content,
            )
        )

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        if "chat_id" not in params or "message_id" not in params:
            raise bad("message identifier is not specified")
        chat = self._chat(params["chat_id"])
        message = self._message(chat.id, int(params["message_id"]))
        if not message.from_bot:
            raise bad("message can't be edited")
        text = str(params["text"])
        markup = self._check_markup(params.get("reply_markup"))
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
        return self.message_json(message)

    async def _edit_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params["chat_id"])
        message = self._message(chat.id, int(params["message_id"]))
        message.reply_markup = self._check_markup(params.get("reply_markup"))
        return self.message_json(message)

    async def _delete_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params["chat_id"])
        message = self._message(chat.id, int(params["message_id"]))
        self.messages[chat.id].remove(message)
        return True

    async def _answer_callback(self, params: dict[str, Any]) -> bool:
        query_id = str(params["callback_query_id"])
        known = self.callbacks.get(query_id)
        if known is None or known[2]:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        self.callbacks[query_id] = (known[0], known[1], True)
        self.answers[query_id] = params.get("text")
        return True

    async def _set_commands(self, params: dict[str, Any]) -> bool:
        commands = params["commands"]
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        scope = json.dumps(params.get("scope") or {}) + str(params.get("language_code") or "")
        self.commands[scope] = commands
        return True

    async def _get_commands(self, params: dict[str, Any]) -> list[Any]:
        scope = json.dumps(params.get("scope") or {}) + str(params.get("language_code") or "")
        return self.commands.get(scope, [])

    async def _delete_commands(self, params: dict[str, Any]) -> bool:
        scope = json.dumps(params.get("scope") or {}) + str(params.get("language_code") or "")
        self.commands.pop(scope, None)
        return True

    def _admin_chat(self, chat_id: Any) -> SimChat:
        chat = self._chat(chat_id)
        if chat.type == "private" or chat.members.get(self.bot_id) != "administrator":
            raise bad("not enough rights to manage chat invite link")
        return chat

    async def _create_invite_link(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._admin_chat(params["chat_id"])
        joins = bool(params.get("creates_join_request"))
        limit = params.get("member_limit")
        if joins and limit is not None:
            raise bad("can't combine member limit with join requests")
        if limit is not None and not 1 <= int(limit) <= 99_999:
            raise bad("MEMBER_LIMIT_INVALID")
        link = SimInviteLink(
            invite_link=f"https://t.me/+{secrets.token_urlsafe(12)}",
            chat_id=chat.id,
            creates_join_request=joins,
            member_limit=int(limit) if limit is not None else None,
            expire_date=int(params["expire_date"]) if params.get("expire_date") else None,
            name=params.get("name"),
        )
        self.links[link.invite_link] = link
        return link.as_json(self.bot)

    async def _revoke_invite_link(self, params: dict[str, Any]) -> dict[str, Any]:
        self._admin_chat(params["chat_id"])
        link = self.links.get(str(params["invite_link"]))
        if link is None:
            raise bad("INVITE_HASH_EXPIRED")
        link.is_revoked = True
        return link.as_json(self.bot)

    async def _approve_join_request(self, params: dict[str, Any]) -> bool:
        chat = self._admin_chat(params["chat_id"])
        user_id = int(params["user_id"])
        if self.join_requests.pop((chat.id, user_id), None) is None:
            raise bad("HIDE_REQUESTER_MISSING")
        chat.members[user_id] = "member"
        return True

    async def _decline_join_request(self, params: dict[str, Any]) -> bool:
        chat = self._admin_chat(params["chat_id"])
        if self.join_requests.pop((chat.id, int(params["user_id"])), None) is None:
            raise bad("HIDE_REQUESTER_MISSING")
        return True

    async def _ban(self, params: dict[str, Any]) -> bool:
        chat = self._admin_chat(params["chat_id"])
        user_id = int(params["user_id"])
        if chat.members.get(user_id) in ("administrator", "creator"):
            raise bad("can't remove chat owner or administrator")
        chat.members[user_id] = "kicked"
        return True

    async def _unban(self, params: dict[str, Any]) -> bool:
        chat = self._admin_chat(params["chat_id"])
        user_id = int(params["user_id"])
        status = chat.members.get(user_id, "left")
        if status == "kicked":
            chat.members[user_id] = "left"
        elif not params.get("only_if_banned") and status == "member":
            chat.members[user_id] = "left"  # "guarantees the user is not a member"
        return True

    async def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params["chat_id"])
        user_id = int(params["user_id"])
        user = self.bot if user_id == self.bot_id else self._user(user_id).as_json()
        status = chat.members.get(user_id, "left")
        data: dict[str, Any] = {"status": status, "user": user}
        if status == "kicked":
            data["until_date"] = 0
        if status == "administrator":
            data.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=False,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
            )
        return data

    # -- Telegram Stars -------------------------------------------------------------------

    @staticmethod
    def _stars_invoice(params: dict[str, Any], *, link: bool) -> dict[str, Any]:
        if params.get("currency") != "XTR":
            raise bad("the emulator sells in Telegram Stars only: currency must be XTR")
        if params.get("provider_token") not in (None, ""):
            raise bad("provider_token must be empty for payments in Telegram Stars")
        prices = params.get("prices")
        if not isinstance(prices, list) or len(prices) != 1:
            raise bad("exactly one price is required for payments in Telegram Stars")
        amount = prices[0].get("amount") if isinstance(prices[0], dict) else None
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        period = params.get("subscription_period")
        if period is not None:
            if not link:
                raise bad("subscription_period is only allowed in createInvoiceLink")
            if int(period) != 2_592_000:
                raise bad("SUBSCRIPTION_PERIOD_INVALID: it must be 2592000 (30 days)")
            if amount > 10_000:
                raise bad("subscription price can't exceed 10000 Stars")
        payload = str(params["payload"])
        if not 1 <= len(payload.encode()) <= 128:
            raise bad("INVOICE_PAYLOAD_INVALID")
        return {
            "title": str(params["title"]),
            "description": str(params["description"]),
            "payload": payload,
            "currency": "XTR",
            "total_amount": amount,
            "subscription_period": int(period) if period is not None else None,
        }

    async def _send_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        spec = self._stars_invoice(params, link=False)
        data = self.message_json(self._send_from_bot(params, invoice=spec))
        data["invoice"] = {
            k: spec[k] for k in ("title", "description", "currency", "total_amount")
        } | {"start_parameter": ""}
        return data

    async def _create_invoice_link(self, params: dict[str, Any]) -> str:
        spec = self._stars_invoice(params, link=True)
        link = f"https://t.me/${secrets.token_urlsafe(12)}"
        self.invoice_links[link] = spec
        return link

    async def _answer_pre_checkout(self, params: dict[str, Any]) -> bool:
        query_id = str(params["pre_checkout_query_id"])
        waiting = self._pre_checkouts.get(query_id)
        if waiting is None or waiting.done():
            raise bad("query is too old and response timeout expired or query ID is invalid")
        ok = bool(params["ok"])
        error = params.get("error_message")
        if not ok and not error:
            raise bad("error_message is required when ok is false")
        waiting.set_result((ok, error))
        return True

    async def _refund_star_payment(self, params: dict[str, Any]) -> bool:
        charge = self.charges.get(str(params["telegram_payment_charge_id"]))
        if charge is None or charge["user"] != int(params["user_id"]):
            raise bad("CHARGE_NOT_FOUND")
        if charge["refunded"]:
            raise bad("CHARGE_ALREADY_REFUNDED")
        charge["refunded"] = True
        return True

    async def user_pays(
        self,
        user_id: int,
        *,
        message_id: int | None = None,
        link: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """The user presses Pay: a pre_checkout_query the bot must answer within ``timeout``
        seconds, then, if accepted, a successful_payment message."""
        user = self._user(user_id)
        if link is not None:
            spec = self.invoice_links.get(link)
        else:
            found = self._message(user_id, int(message_id or 0))
            spec = found.invoice
        if spec is None:
            raise bad("no such invoice")
        query_id = str(secrets.randbits(63))
        waiting: asyncio.Future[tuple[bool, str | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pre_checkouts[query_id] = waiting
        self.push_update(
            {
                "pre_checkout_query": {
                    "id": query_id,
                    "from": user.as_json(),
                    "currency": "XTR",
                    "total_amount": spec["total_amount"],
                    "invoice_payload": spec["payload"],
                }
            }
        )
        try:
            ok, error = await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            waiting.cancel()
            return {"status": "timeout"}
        finally:
            self._pre_checkouts.pop(query_id, None)
        if not ok:
            return {"status": "refused", "error": error}
        return {"status": "paid", **self._charge(user, spec, recurring=False)}

    def renew(self, user_id: int, link: str) -> dict[str, Any]:
        """Telegram charges a Stars subscription for its next period."""
        spec = self.invoice_links[link]
        if spec.get("subscription_period") is None:
            raise bad("not a subscription link")
        return self._charge(self._user(user_id), spec, recurring=True)

    def _charge(self, user: SimUser, spec: dict[str, Any], *, recurring: bool) -> dict[str, Any]:
        charge_id = f"stxn{secrets.token_hex(12)}"
        self.charges[charge_id] = {
            "user": user.id,
            "amount": spec["total_amount"],
            "refunded": False,
        }
        payment: dict[str, Any] = {
            "currency": "XTR",
            "total_amount": spec["total_amount"],
            "invoice_payload": spec["payload"],
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }
        if spec.get("subscription_period"):
            payment["subscription_expiration_date"] = self.now() + spec["subscription_period"]
            payment["is_recurring"] = True
            payment["is_first_recurring"] = not recurring
        chat = self._chat(user.id)
        message = SimMessage(self._next_message_id(chat.id), chat.id, False, self.now())
        self._store(message)
        data = self.message_json(message)
        data["successful_payment"] = payment
        update_id = self.push_update({"message": data})
        return {"charge_id": charge_id, "update_id": update_id}

    # -- dispatch -------------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        canonical = ALL_METHODS.get(method.lower())
        if canonical is None:
            raise BotApiError(404, "Not Found")
        spec = SPEC["methods"].get(canonical)
        handler = self.handlers.get(canonical)
        if spec is None or handler is None:
            raise BotApiError(501, f"Not Implemented: the emulator does not implement {canonical}")
        coerced = coerce(spec, params)
        for field_spec in spec["fields"]:
            if field_spec["required"] and coerced.get(field_spec["name"]) in (None, ""):
                raise bad(f'parameter "{field_spec["name"]}" is required')
        self.calls.append((canonical, {k: v for k, v in coerced.items() if k != "photo"}))
        return await handler(coerced)


_SCALARS = {"Integer", "String", "Boolean", "Float", "InputFile"}


def coerce(spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Form values are strings: turn them into what the specification says they are."""
    types = {f["name"]: f["types"] for f in spec["fields"]}
    result: dict[str, Any] = {}
    for name, value in params.items():
        kinds = types.get(name)
        if kinds is None or not isinstance(value, str):
            result[name] = value
            continue
        try:
            if "Integer" in kinds and value.lstrip("-").isdigit():
                result[name] = int(value)
            elif kinds == ["Boolean"]:
                if value not in ("true", "false", "True", "False", "1", "0"):
                    raise bad(f"can't parse {name} as Boolean")
                result[name] = value in ("true", "True", "1")
            elif kinds == ["Float"] or kinds == ["Float", "Integer"]:
                result[name] = float(value)
            elif any(k not in _SCALARS for k in kinds):
                result[name] = json.loads(value)
            else:
                result[name] = value
        except (ValueError, json.JSONDecodeError):
            raise bad(f"can't parse {name}") from None
    return result


def build_app(emulator: TelegramEmulator) -> Starlette:
    async def api(request: Request) -> Response:
        token = request.path_params["token"]
        method = request.path_params["method"]
        if token != emulator.token:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401
            )
        try:
            params = await _params(request)
            result = await emulator.call(method, params)
        except BotApiError as exc:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.parameters:
                body["parameters"] = exc.parameters
            return JSONResponse(body, status_code=exc.code)
        return JSONResponse({"ok": True, "result": result})

    async def control(request: Request) -> Response:
        action = request.path_params["action"]
        body = await request.json() if await request.body() else {}
        try:
            result = await _control(emulator, action, body, request)
        except BotApiError as exc:
            return JSONResponse({"error": exc.description}, status_code=exc.code)
        except KeyError as exc:
            return JSONResponse({"error": f"missing or unknown {exc}"}, status_code=400)
        return JSONResponse(result)

    routes = [
        Route("/bot{token}/{method}", api, methods=["GET", "POST"]),
        Route("/_sim/{action:path}", control, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emulator
    return app


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        raw = await request.body()
        if raw:
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                raise bad("can't parse JSON object") from None
            if not isinstance(data, dict):
                raise bad("can't parse JSON object")
            params.update(data)
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        for key, value in form.multi_items():
            params[key] = value
    return params


def _message_view(emulator: TelegramEmulator, message: SimMessage) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "from_bot": message.from_bot,
        "date": message.date,
        "text": message.text,
        "caption": message.caption,
        "photo": message.photo,
        "buttons": message.buttons(),
        "invoice": message.invoice,
    }


async def _control(
    emulator: TelegramEmulator, action: str, body: dict[str, Any], request: Request
) -> Any:
    parts = action.strip("/").split("/")
    if parts == ["users"] and request.method == "POST":
        user = emulator.add_user(
            body.get("id"),
            body.get("first_name") or "User",
            body.get("username"),
            body.get("language_code", "en"),
        )
        return user.as_json()
    if parts[0] == "users" and len(parts) == 3:
        user_id = int(parts[1])
        verb = parts[2]
        if verb == "send":
            return {"update_id": emulator.user_sends(user_id, str(body["text"]))}
        if verb == "press":
            update = emulator.user_presses(user_id, int(body["message_id"]), str(body["data"]))
            return {"update_id": update}
        if verb == "join":
            return {"result": emulator.user_joins(user_id, str(body["invite_link"]))}
        if verb == "block":
            emulator._user(user_id).blocked_bot = bool(body.get("blocked", True))
            return {"blocked": emulator.users[user_id].blocked_bot}
        if verb == "messages":
            return [_message_view(emulator, m) for m in emulator.messages.get(user_id, [])]
        if verb == "pay":
            return await emulator.user_pays(
                user_id, message_id=body.get("message_id"), link=body.get("link")
            )
    if parts == ["chats"] and request.method == "POST":
        chat = emulator.add_chat(
            int(body["id"]), str(body.get("title") or "Channel"), str(body.get("type") or "channel")
        )
        return chat.as_json(emulator.users)
    if parts[0] == "chats" and len(parts) == 3 and parts[2] == "members":
        found = emulator.chats.get(int(parts[1]))
        if found is None:
            raise BotApiError(404, "chat not found")
        return {str(k): v for k, v in found.members.items()}
    if parts == ["updates", "redeliver"]:
        emulator.redeliver(int(body["update_id"]))
        return {"redelivered": body["update_id"]}
    if parts == ["limits"]:
        if request.method == "POST":
            emulator.set_limits(
                body.get("global_rate"), body.get("chat_rate"), body.get("chat_burst")
            )
        return {
            "global_rate": emulator.global_rate,
            "chat_rate": emulator.chat_rate,
            "chat_burst": emulator.chat_burst,
        }
    if parts == ["calls"]:
        return [{"method": m, "params": p} for m, p in emulator.calls]
    raise BotApiError(404, f"no control action {action!r}")
