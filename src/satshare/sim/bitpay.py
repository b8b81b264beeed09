"""A BitPay emulator (REST API v2, the "pos" facade) over real HTTP.

``POST /invoices`` and ``GET /invoices/{id}`` with ``X-Accept-Version: 2.0.0``; every answer
is wrapped in ``{"data": ...}``. Statuses new → paid → confirmed → complete, or expired /
invalid; ``exceptionStatus`` false, "paidPartial" or "paidOver". Instant Payment
Notifications (IPNs) go to the invoice's ``notificationURL``, unsigned, as BitPay sends them.

Control API under ``/_sim``: pay (in full, partly or over), confirm, complete, expire, invalidate.

Faults (``sim/faults.py``), from Python or ``POST /_sim/settings``: ``api_down`` (503 to
every API call), ``drop_webhooks`` (IPNs are recorded in ``ipns_dropped``, never sent), and
the uniform knobs (``delay``, ``fail_next``, ``accept_then_fail``, ``die_mid_call``) on
``create_invoice`` (POST /invoices) and ``fetch_invoice`` (GET /invoices/{id}), e.g.
``emulator.faults.fetch_invoice.fail_next = 3`` or
``{"faults": {"fetch_invoice": {"fail_next": 3}}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satshare.sim.faults import Faults, FaultSettingsError, settings_request
from satshare.sim.lightning import RegtestWallet

EVENTS = {
    "paid": (1003, "invoice_paidInFull"),
    "confirmed": (1005, "invoice_confirmed"),
    "complete": (1006, "invoice_completed"),
    "expired": (1004, "invoice_expired"),
    "invalid": (1013, "invoice_failedToConfirm"),
    "partial": (1001, "invoice_receivedPayment"),
}


@dataclass
class SimBitPayInvoice:
    id: str
    price: str
    currency: str
    sats: int
    order_id: str | None
    notification_url: str | None
    item_desc: str
    created_ms: int
    expires_ms: int
    address: str
    status: str = "new"
    exception: str | bool = False
    paid_sats: int = 0

    def as_json(self, base_url: str, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": f"{base_url}/i/{self.id}",
            "status": self.status,
            "price": float(self.price),
            "currency": self.currency,
            "orderId": self.order_id,
            "itemDesc": self.item_desc,
            "invoiceTime": self.created_ms,
            "expirationTime": self.expires_ms,
            "currentTime": now_ms,
            "exceptionStatus": self.exception,
            "paymentSubtotals": {"BTC": self.sats},
            "paymentTotals": {"BTC": self.sats},
            "amountPaid": self.paid_sats,
            "transactionCurrency": "BTC" if self.paid_sats else None,
            "paymentCodes": {
                "BTC": {"BIP72b": f"bitcoin:{self.address}?amount={self.sats / 1e8:.8f}"}
            },
            "bitpayAddress": self.address,
        }


class BitPayEmulator:
    def __init__(
        self, *, token: str, base_url: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.invoices: dict[str, SimBitPayInvoice] = {}
        self.ipns: list[tuple[str, dict[str, Any], int | None]] = []
        #: IPNs drop_webhooks swallowed: (url, payload).
        self.ipns_dropped: list[tuple[str, dict[str, Any]]] = []
        self.api_down = False
        self.drop_webhooks = False
        self.faults = Faults("create_invoice", "fetch_invoice")
        self.wallet = RegtestWallet()
        self._client = httpx.AsyncClient(timeout=10)
        self._tasks: set[asyncio.Task[int | None]] = set()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def create(self, body: dict[str, Any]) -> SimBitPayInvoice:
        price = Decimal(str(body["price"]))
        currency = str(body.get("currency") or "BTC").upper()
        if currency != "BTC":
            raise ValueError("the emulator prices in BTC only")
        sats = int((price * 100_000_000).to_integral_value(rounding=ROUND_CEILING))
        now = self.now_ms()
        invoice = SimBitPayInvoice(
            id=secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")[:22],
            price=str(price),
            currency=currency,
            sats=sats,
            order_id=body.get("orderId"),
            notification_url=body.get("notificationURL"),
            item_desc=str(body.get("itemDesc") or ""),
            created_ms=now,
            expires_ms=now + 15 * 60 * 1000,
            address=self.wallet.next_address(),
        )
        self.invoices[invoice.id] = invoice
        return invoice

    def transition(self, invoice: SimBitPayInvoice, status: str, event: str | None = None) -> None:
        invoice.status = status
        self._ipn(invoice, event or status)

    def pay(self, invoice: SimBitPayInvoice, sats: int | None = None) -> None:
        if invoice.status != "new":
            raise ValueError(f"invoice is {invoice.status}")
        amount = invoice.sats - invoice.paid_sats if sats is None else sats
        invoice.paid_sats += amount
        if invoice.paid_sats < invoice.sats:
            invoice.exception = "paidPartial"
            self._ipn(invoice, "partial")
            return
        invoice.exception = "paidOver" if invoice.paid_sats > invoice.sats else False
        self.transition(invoice, "paid")

    def _payload(self, invoice: SimBitPayInvoice, event: str) -> dict[str, Any]:
        code, name = EVENTS[event]
        return {
            "event": {"code": code, "name": name},
            "data": invoice.as_json(self.base_url, self.now_ms()),
        }

    def _ipn(self, invoice: SimBitPayInvoice, event: str) -> None:
        if not invoice.notification_url:
            return
        if self.drop_webhooks:
            self.ipns_dropped.append((invoice.notification_url, self._payload(invoice, event)))
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        # The payload is taken now: the IPN describes the invoice as it was at the event.
        task: asyncio.Task[int | None] = asyncio.ensure_future(
            self._send(invoice.notification_url, self._payload(invoice, event))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def notify(self, invoice: SimBitPayInvoice, event: str) -> int | None:
        """Send the IPN of ``event`` (a key of EVENTS) about the invoice as it is now, at once
        and regardless of drop_webhooks; returns the status the receiver answered (None: no
        answer). Tests call it to play an IPN again."""
        assert invoice.notification_url is not None
        return await self._send(invoice.notification_url, self._payload(invoice, event))

    async def _send(self, url: str, payload: dict[str, Any]) -> int | None:
        status: int | None = None
        try:
            response = await self._client.post(url, json=payload)
            status = response.status_code
        except httpx.HTTPError:
            status = None
        self.ipns.append((url, payload, status))
        return status

    async def wait_idle(self, timeout: float = 5) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.faults.aclose()
        await self._client.aclose()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "code": status, "data": None, "error": message}, status_code=status
    )


def build_app(emulator: BitPayEmulator) -> Starlette:
    Handler = Callable[[Request], Awaitable[Response]]

    def api(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            if emulator.api_down:
                return _error(503, "Service Unavailable")
            if request.headers.get("x-accept-version") != "2.0.0":
                return _error(400, "Missing or unsupported X-Accept-Version; send 2.0.0")
            return await handler(request)

        return wrapped

    async def create(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return _error(400, "Invalid JSON")
        if not isinstance(body, dict) or body.get("token") != emulator.token:
            return _error(401, "Unauthorized sin")
        try:
            price = Decimal(str(body.get("price")))
            if not price.is_finite() or price <= 0:
                raise InvalidOperation
            invoice = emulator.create(body)
        except (InvalidOperation, ValueError) as exc:
            return _error(400, f"Invalid price or currency: {exc}")
        return JSONResponse({"data": invoice.as_json(emulator.base_url, emulator.now_ms())})

    async def fetch(request: Request) -> Response:
        if request.query_params.get("token") != emulator.token:
            return _error(401, "Unauthorized sin")
        invoice = emulator.invoices.get(request.path_params["invoice_id"])
        if invoice is None:
            return _error(404, "Object not found")
        if invoice.status == "new" and emulator.now_ms() > invoice.expires_ms:
            emulator.transition(invoice, "expired")
        return JSONResponse({"data": invoice.as_json(emulator.base_url, emulator.now_ms())})

    async def control(request: Request) -> Response:
        invoice = emulator.invoices.get(request.path_params["invoice_id"])
        if invoice is None:
            return _error(404, "Object not found")
        action = request.path_params["action"]
        body = json.loads(await request.body() or b"{}")
        try:
            if action == "pay":
                emulator.pay(invoice, body.get("sats"))
            elif action in ("confirmed", "complete", "invalid"):
                emulator.transition(invoice, action)
            elif action == "expire":
                invoice.expires_ms = emulator.now_ms() - 1
                emulator.transition(invoice, "expired")
            else:
                return _error(404, f"no control action {action}")
        except ValueError as exc:
            return _error(422, str(exc))
        return JSONResponse({"data": invoice.as_json(emulator.base_url, emulator.now_ms())})

    async def settings(request: Request) -> Response:
        try:
            body = await settings_request(request, emulator.faults)
        except FaultSettingsError as exc:
            return _error(422, str(exc))
        for name in ("api_down", "drop_webhooks"):
            if name in body:
                setattr(emulator, name, bool(body[name]))
        return JSONResponse(
            {
                "api_down": emulator.api_down,
                "drop_webhooks": emulator.drop_webhooks,
                "faults": emulator.faults.as_json(),
            }
        )

    creating = emulator.faults.wrap("create_invoice", create, _error)
    fetching = emulator.faults.wrap("fetch_invoice", fetch, _error)
    app = Starlette(
        routes=[
            Route("/invoices", api(creating), methods=["POST"]),
            Route("/invoices/{invoice_id}", api(fetching), methods=["GET"]),
            Route("/_sim/settings", settings, methods=["GET", "POST"]),
            Route("/_sim/invoices/{invoice_id}/{action}", control, methods=["POST"]),
        ]
    )
    app.state.emulator = emulator
    return app
