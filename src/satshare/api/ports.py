"""What the sandbox pages need from the emulators, as the API sees it.

The sandbox module (a composition root) implements these over the BTCPay and Bot API
emulators and hands them to ``create_app``; the API never imports the emulators. Outside
sandbox mode there is no ``SandboxPages`` at all and the pages answer 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class SandboxRefused(Exception):
    """The emulator refused what the page asked; the message is its own words."""


class ChatMessage(Protocol):
    @property
    def message_id(self) -> int: ...
    @property
    def from_bot(self) -> bool: ...
    @property
    def date(self) -> int: ...
    @property
    def text(self) -> str | None: ...
    @property
    def caption(self) -> str | None: ...
    @property
    def parse_mode(self) -> str | None: ...
    @property
    def photo_bytes(self) -> bytes | None: ...
    @property
    def document_bytes(self) -> bytes | None: ...
    @property
    def document_name(self) -> str | None: ...
    @property
    def reply_markup(self) -> dict[str, Any] | None: ...
    #: A Telegram Stars invoice (sendInvoice): title, description, total_amount.
    @property
    def invoice(self) -> dict[str, Any] | None: ...
    #: The user's Stars payment: total_amount, is_recurring.
    @property
    def successful_payment(self) -> dict[str, Any] | None: ...


class ChatUser(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def first_name(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def language_code(self) -> str | None: ...


class ChatRoom(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def members(self) -> dict[int, str]: ...


@dataclass(frozen=True, slots=True)
class PressAnswer:
    """How the bot answered a button press (answerCallbackQuery)."""

    answered: bool
    text: str | None
    #: ``show_alert``: a pop-up the user must close, not a passing notice.
    alert: bool


class LinkKind(StrEnum):
    JOIN = "join"  # an invite link into a channel or group
    STARS = "stars"  # a Telegram Stars invoice link (a 30-day subscription)


@dataclass(frozen=True, slots=True)
class LinkPreview:
    """What Telegram shows before a user follows a link it made."""

    kind: LinkKind
    #: The link as the bot sent it.
    url: str
    #: The channel's title, or the invoice's.
    title: str
    chat_id: int | None = None
    #: The bot lets the user in (a join request) rather than the link itself.
    join_request: bool = False
    description: str = ""
    stars: int | None = None


@dataclass(frozen=True, slots=True)
class StarsPaid:
    """What came of pressing Pay on a Stars invoice: ``paid``, ``refused`` (the bot's
    pre-checkout answer, with its error text) or ``timeout`` (the bot did not answer)."""

    status: str
    error: str | None = None


class SandboxChat(Protocol):
    """Telegram as its users see it: the /sandbox chat page plays them."""

    @property
    def bot_username(self) -> str: ...
    def users(self) -> Iterable[ChatUser]: ...
    def user(self, telegram_id: int) -> ChatUser | None: ...
    def add_user(self, *, first_name: str, username: str, language_code: str) -> ChatUser: ...
    def messages(self, telegram_id: int) -> Sequence[ChatMessage]: ...
    def chats(self) -> Iterable[ChatRoom]: ...
    #: The three actions raise SandboxRefused when Telegram would refuse them.
    def user_sends(self, telegram_id: int, text: str) -> int: ...
    def user_presses(self, telegram_id: int, message_id: int, data: str) -> int: ...
    def user_joins(self, telegram_id: int, link: str) -> str: ...
    #: A join request of this user to this chat waits for the bot's decision.
    def join_pending(self, telegram_id: int, chat_id: int) -> bool: ...
    def press_answer(self, update_id: int) -> PressAnswer: ...
    #: The links Telegram made lead to ``/sandbox/link/<code>``; None: no such link (any more).
    def link(self, code: str) -> LinkPreview | None: ...
    async def user_pays(
        self, telegram_id: int, *, link: str | None = None, message_id: int | None = None
    ) -> StarsPaid: ...


class SandboxPayments(Protocol):
    """The processor's side of a checkout: pays an invoice as a buyer's wallet would."""

    def simulate_payment(self, provider_invoice_id: str) -> None:
        """Pay it (Lightning when offered) and mine a block. Raises LookupError when the
        emulator does not know the invoice, SandboxRefused when it cannot be paid."""
        ...


class ReceivedWebhook(Protocol):
    """One delivery the sandbox's webhook receiver got, as sent."""

    @property
    def number(self) -> int: ...
    @property
    def name(self) -> str:
        """The path name after the receiver's mount (``/sim/receiver/<name>``)."""
        ...

    @property
    def received_at(self) -> float: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def status(self) -> int: ...


class SandboxReceiver(Protocol):
    """Where sandbox webhook endpoints can point (no server of the user's own needed)."""

    #: The path the receiver is mounted at; an endpoint URL is ``<server><path>/<name>``.
    path: str

    def deliveries(self) -> Sequence[ReceivedWebhook]:
        """Newest first."""
        ...


@dataclass(frozen=True, slots=True)
class SandboxPages:
    payments: SandboxPayments
    #: None when a real bot token is configured (the chat page needs the Bot API emulator).
    chat: SandboxChat | None
    receiver: SandboxReceiver | None = None


class JobQueue(Protocol):
    """What ``/ready`` and ``/metrics`` ask of the job queue this process reaches
    (procrastinate's job manager has this method, on its PostgreSQL and in-memory
    connectors alike)."""

    async def list_queues_async(self) -> Iterable[dict[str, Any]]: ...
