"""Store webhooks of the BTCPay emulator: events signed and delivered as BTCPay does.

Owns :class:`WebhookSource`, the part of the emulator that keeps the stores' webhooks and
every delivery: an invoice event becomes one delivery per webhook that wants it, its JSON body
signed with ``BTCPay-Sig`` (HMAC-SHA256 of the body with the webhook's secret), sent in order
by one sender per webhook; a failed one (connection error, 5xx, 408, 429) is retried after
``retry_delays`` as a redelivery with a NEW deliveryId, as BTCPay does; ``drop_webhooks``
records deliveries as Dropped instead of sending them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from satshare.security import hmac_sha256_hex
from satshare.sim.btcpay.model import SimDelivery, SimInvoice, SimWebhook, new_id

DEFAULT_RETRY_DELAYS = (10.0, 60.0, *([600.0] * 6))


class WebhookSource:
    """The webhooks of one emulated BTCPay Server and their deliveries."""

    def __init__(
        self,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        webhook_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.retry_delays = tuple(retry_delays)
        self.clock = clock
        self.webhooks: dict[str, SimWebhook] = {}
        self.deliveries: list[SimDelivery] = []
        self.drop_webhooks = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: Automatic redeliveries waiting out their delay: not idle while any is.
        self._retries_waiting = 0
        self._queues: dict[str, asyncio.Queue[SimDelivery]] = {}
        self._client = httpx.AsyncClient(timeout=webhook_timeout)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every queued webhook delivery has been attempted (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                self._retries_waiting == 0
                and all(q.empty() for q in self._queues.values())
                and not any(d.status == "Pending" for d in self.deliveries)
            ):
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("webhook deliveries still pending")

    def add_webhook(self, store_id: str, url: str, secret: str | None = None) -> SimWebhook:
        hook = SimWebhook(
            id=new_id(), store_id=store_id, url=url, secret=secret or secrets.token_urlsafe(24)
        )
        self.webhooks[hook.id] = hook
        return hook

    def emit(self, invoice: SimInvoice, event_type: str, **fields: Any) -> None:
        for hook in self.webhooks.values():
            if hook.store_id != invoice.store_id or not hook.wants(event_type):
                continue
            delivery_id = new_id()
            event = {
                "deliveryId": delivery_id,
                "webhookId": hook.id,
                "originalDeliveryId": delivery_id,
                "isRedelivery": False,
                "type": event_type,
                "timestamp": int(self.clock()),
                "storeId": invoice.store_id,
                "invoiceId": invoice.id,
                "metadata": invoice.metadata,
                **fields,
            }
            self._enqueue(hook, event)

    def _record(self, hook: SimWebhook, event: dict[str, Any]) -> SimDelivery:
        """A delivery of ``event`` to ``hook`` in the list, Dropped when webhooks are off."""
        body = json.dumps(event, separators=(",", ":")).encode()
        delivery = SimDelivery(
            id=event["deliveryId"],
            webhook_id=hook.id,
            event=event,
            body=body,
            timestamp=event["timestamp"],
        )
        self.deliveries.append(delivery)
        if self.drop_webhooks:
            delivery.status = "Dropped"
        return delivery

    def _enqueue(self, hook: SimWebhook, event: dict[str, Any]) -> SimDelivery:
        delivery = self._record(hook, event)
        if delivery.status == "Dropped":
            return delivery
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            delivery.status = "Dropped"  # no event loop: nothing can send (sync tools)
            return delivery
        queue = self._queues.get(hook.id)
        if queue is None:
            queue = self._queues[hook.id] = asyncio.Queue()
            self._spawn(self._sender(hook, queue))
        queue.put_nowait(delivery)
        return delivery

    def _redelivery_of(self, delivery: SimDelivery) -> tuple[SimWebhook, dict[str, Any]]:
        """A redelivery is a new delivery with a NEW deliveryId, as in BTCPay."""
        hook = self.webhooks[delivery.webhook_id]
        event = {
            **delivery.event,
            "deliveryId": new_id(),
            "isRedelivery": True,
            "originalDeliveryId": delivery.event["originalDeliveryId"],
            "timestamp": int(self.clock()),
        }
        return hook, event

    def redeliver(self, delivery: SimDelivery) -> SimDelivery:
        hook, event = self._redelivery_of(delivery)
        return self._enqueue(hook, event)

    def signature(self, hook: SimWebhook, body: bytes) -> str:
        return "sha256=" + hmac_sha256_hex(hook.secret, body)

    async def _sender(self, hook: SimWebhook, queue: asyncio.Queue[SimDelivery]) -> None:
        # One sender per webhook keeps deliveries in order, as BTCPay does.
        while True:
            delivery = await queue.get()
            try:
                await self._send(hook, delivery)
            finally:
                queue.task_done()

    async def _send(self, hook: SimWebhook, delivery: SimDelivery, attempt: int = 0) -> None:
        headers = {
            "Content-Type": "application/json",
            "BTCPay-Sig": self.signature(hook, delivery.body),
            "User-Agent": "BTCPayServer (satshare emulator)",
        }
        retry = False
        try:
            response = await self._client.post(hook.url, content=delivery.body, headers=headers)
            delivery.http_code = response.status_code
            if response.is_success:
                delivery.status = "HttpSuccess"
                return
            delivery.status = "HttpError"
            delivery.error = f"HTTP {response.status_code}"
            retry = response.status_code >= 500 or response.status_code in (408, 429)
        except httpx.HTTPError as exc:
            delivery.status = "HttpError"
            delivery.error = type(exc).__name__
            retry = True
        if retry and hook.automatic_redelivery and attempt < len(self.retry_delays):
            self._retries_waiting += 1
            self._spawn(self._retry_later(hook, delivery, attempt))
        else:
            delivery.status = "Failed" if retry else delivery.status

    async def _retry_later(self, hook: SimWebhook, delivery: SimDelivery, attempt: int) -> None:
        try:
            await asyncio.sleep(self.retry_delays[attempt])
            if hook.id not in self.webhooks:
                return
            _, event = self._redelivery_of(delivery)
            redelivery = self._record(hook, event)  # Pending from here on
        finally:
            self._retries_waiting -= 1
        if redelivery.status != "Dropped":
            await self._send(hook, redelivery, attempt + 1)
