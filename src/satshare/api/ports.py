"""What the sandbox pages need from the emulators, as the API sees it.

The sandbox module (a composition root) implements these over the BTCPay and Bot API
emulators and hands them to ``create_app``; the API never imports the emulators. Outside
sandbox mode there is no ``SandboxPages`` at all and the pages answer 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
    def reply_markup(self) -> dict[str, Any] | None: ...


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


class SandboxPayments(Protocol):
    """The processor's side of a checkout: pays an invoice as a buyer's wallet would."""

    def simulate_payment(self, provider_invoice_id: str) -> None:
        """Pay it (Lightning when offered) and mine a block. Raises LookupError when the
        emulator does not know the invoice, SandboxRefused when it cannot be paid."""
        ...


@dataclass(frozen=True, slots=True)
class SandboxPages:
    payments: SandboxPayments
    #: None when a real bot token is configured (the chat page needs the Bot API emulator).
    chat: SandboxChat | None
