"""The emulator object: one bot's Telegram, put together from the parts of this package.

:class:`TelegramEmulator` is the state (``state``) with the rate limits (``limits``) and the
update queue (``updates``) attached. Its methods are the face tests and the sandbox use:
answer a Bot API call (``transport``), act as a user (``driver``, Stars payments in ``stars``),
redeliver an update, change the limits, close.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from satshare.sim.telegram import driver, stars, transport
from satshare.sim.telegram.limits import RateLimits
from satshare.sim.telegram.state import TelegramState
from satshare.sim.telegram.updates import UpdateQueue


class TelegramEmulator(TelegramState):
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
        super().__init__(bot_id=bot_id, bot_username=bot_username, clock=clock)
        self.token = token
        self.limits = RateLimits(global_rate, chat_rate, chat_burst)
        self.updates = UpdateQueue()

    @property
    def webhook_url(self) -> str | None:
        """Where updates are pushed (set by ``setWebhook``; a test may point it elsewhere)."""
        return self.updates.webhook_url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self.updates.webhook_url = url

    @property
    def webhook_secret(self) -> str | None:
        return self.updates.webhook_secret

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Answer one Bot API call as Telegram would (raises BotApiError)."""
        return await transport.call(self, method, params)

    def set_limits(
        self,
        global_rate: float | None = None,
        chat_rate: float | None = None,
        chat_burst: float | None = None,
    ) -> None:
        self.limits.set(global_rate, chat_rate, chat_burst)

    def redeliver(self, update_id: int) -> None:
        """Send an update again with the same update_id (duplicate delivery)."""
        self.updates.redeliver(update_id)

    async def aclose(self) -> None:
        await self.updates.aclose()

    # -- the user driver ----------------------------------------------------------------------

    def user_sends(self, user_id: int, text: str) -> int:
        return driver.sends(self, user_id, text)

    def user_presses(self, user_id: int, message_id: int, data: str) -> int:
        return driver.presses(self, user_id, message_id, data)

    def callback_answered(self, update_id: int) -> bool:
        return driver.callback_answered(self, update_id)

    def callback_answer(self, update_id: int) -> str | None:
        """The text the bot answered a button press with."""
        return driver.callback_answer(self, update_id)

    def callback_alert(self, update_id: int) -> bool:
        return driver.callback_alert(self, update_id)

    def user_joins(self, user_id: int, invite_link: str) -> str:
        """Follow an invite link: a join request, a direct join, or a refusal."""
        return driver.joins(self, user_id, invite_link)

    def user_blocks(self, user_id: int, blocked: bool = True) -> bool:
        return driver.blocks(self, user_id, blocked)

    async def user_pays(
        self,
        user_id: int,
        *,
        message_id: int | None = None,
        link: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """The user presses Pay on a Stars invoice (a message or a link)."""
        return await stars.pay(self, user_id, message_id=message_id, link=link, timeout=timeout)

    def renew(self, user_id: int, link: str) -> dict[str, Any]:
        """Telegram charges a Stars subscription for its next period."""
        return stars.renew(self, user_id, link)
