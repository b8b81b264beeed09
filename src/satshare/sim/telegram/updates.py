"""The bot's updates: the queue, ``getUpdates`` long polls and webhook pushes.

Owns :class:`UpdateQueue` (update ids, the pending updates, the ones already delivered kept
for a duplicate redelivery, the webhook URL and secret, the task that pushes to the webhook
with ``X-Telegram-Bot-Api-Secret-Token`` and backs off while it fails) and the Bot API methods
``getUpdates``, ``setWebhook``, ``deleteWebhook`` and ``getWebhookInfo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import TYPE_CHECKING, Any

import httpx

from satshare.sim.telegram.state import BotApiError, bad

if TYPE_CHECKING:
    from satshare.sim.telegram.emulator import TelegramEmulator


class UpdateQueue:
    def __init__(self) -> None:
        self._pending: deque[dict[str, Any]] = deque()
        self._delivered: deque[dict[str, Any]] = deque(maxlen=10_000)  # for redelivery
        self._closing = False
        self._next_update_id = 100_000
        #: Long polls so far; a poll still waiting when a newer one arrives is answered 409,
        #: as Telegram does when two bot instances poll at once.
        self._polls = 0
        self._superseded = asyncio.Event()
        #: 409 Conflict answers given to concurrent getUpdates (a test counts them).
        self.conflicts = 0
        self._new_update = asyncio.Event()
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def continue_after(self, update_id: int) -> None:
        """New updates get ids above ``update_id`` (a restarted sandbox: the bot remembers
        the ids it handled and would drop a reused one as a duplicate)."""
        self._next_update_id = max(self._next_update_id, update_id)

    @property
    def polls(self) -> int:
        """getUpdates calls answered or waiting so far."""
        return self._polls

    def push(self, payload: dict[str, Any], *, update_id: int | None = None) -> int:
        if update_id is None:
            self._next_update_id += 1
            update_id = self._next_update_id
        update = {"update_id": update_id, **payload}
        self._pending.append(update)
        self._new_update.set()
        if self.webhook_url:
            self._ensure_pusher()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Send an update again with the same update_id (duplicate delivery); one still in
        flight (pushed, its answer not back yet) counts as delivered."""
        for update in [*self._delivered, *self._pending]:
            if update["update_id"] == update_id:
                self._pending.append(update)
                self._new_update.set()
                if self.webhook_url:
                    self._ensure_pusher()
                return
        raise KeyError(update_id)

    async def take(self, offset: int | None, limit: int, timeout: float) -> list[Any]:
        """A long poll: updates from ``offset`` on (the ones before are confirmed), waiting up
        to ``timeout`` seconds for one when there are none."""
        if offset is not None:
            self._confirm_before(offset)
        self._polls += 1
        mine = self._polls
        self._superseded.set()  # an older poll still waiting loses to this one
        self._superseded = asyncio.Event()
        superseded = self._superseded
        if not self._pending and timeout > 0 and not self._closing:
            self._new_update.clear()
            waits = [
                asyncio.ensure_future(self._new_update.wait()),
                asyncio.ensure_future(superseded.wait()),
            ]
            try:
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
            if mine != self._polls:
                self.conflicts += 1
                raise BotApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            if offset is not None:
                self._confirm_before(offset)
        return list(self._pending)[:limit]

    def _confirm_before(self, offset: int) -> None:
        while self._pending and self._pending[0]["update_id"] < offset:
            self._delivered.append(self._pending.popleft())

    def set_webhook(self, url: str | None, secret: str | None, *, drop_pending: bool) -> None:
        self.webhook_url = url
        self.webhook_secret = secret
        if drop_pending:
            self._pending.clear()
        if self.webhook_url and self._pending:
            self._ensure_pusher()

    def pending_count(self) -> int:
        return len(self._pending)

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


# -- Bot API methods ---------------------------------------------------------------------------


async def get_updates(tg: TelegramEmulator, params: dict[str, Any]) -> list[Any]:
    if tg.updates.webhook_url:
        raise BotApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; use "
            "deleteWebhook to delete the webhook first",
        )
    limit = max(1, min(100, int(params.get("limit") or 100)))
    timeout = min(50.0, float(params.get("timeout") or 0))
    offset = params.get("offset")
    return await tg.updates.take(int(offset) if offset is not None else None, limit, timeout)


async def set_webhook(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    url = str(params["url"])
    if url and not url.startswith(("https://", "http://")):
        raise bad("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.get("secret_token")
    if secret is not None and (
        not 1 <= len(secret) <= 256 or not all(c.isalnum() or c in "_-" for c in secret)
    ):
        raise bad("secret token contains unallowed characters")
    tg.updates.set_webhook(
        url or None, secret, drop_pending=bool(params.get("drop_pending_updates"))
    )
    return True


async def delete_webhook(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    tg.updates.set_webhook(None, None, drop_pending=bool(params.get("drop_pending_updates")))
    return True


async def get_webhook_info(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": tg.updates.webhook_url or "",
        "has_custom_certificate": False,
        "pending_update_count": tg.updates.pending_count(),
    }


METHODS = {
    "getUpdates": get_updates,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
}
