"""A BTCPay Server emulator speaking the Greenfield API v1 over real HTTP.

Covers what SatShare uses, following the BTCPay Greenfield OpenAPI 2.4.1 spec:
invoices (create, get under the store or the invoice alone, payment methods, mark status),
store payouts (``btcpay_payouts``), store webhooks (create, list, get, delete, deliveries,
redeliver) signed with ``BTCPay-Sig``,
automatic redelivery with a NEW deliveryId on failure, expiry and late payments.

A control API under ``/_sim`` (not part of BTCPay) lets tests, benchmarks and the sandbox
checkout pay invoices, mine blocks, expire or invalidate invoices, drop webhooks and read
deliveries.

Faults (``sim/faults.py``): ``api_down`` answers 503 to every Greenfield call;
``drop_webhooks`` records deliveries as Dropped instead of sending them; and the uniform
knobs (``delay``, ``fail_next``, ``accept_then_fail``, ``die_mid_call``) on the operations
``create_invoice`` (POST an invoice) and ``fetch_invoice`` (GET one invoice; its payment
methods are not affected), as ``emulator.faults.create_invoice.fail_next = 2`` or
``POST /_sim/settings {"faults": {"create_invoice": {"fail_next": 2}}}``. Store payouts have
their own (``btcpay_payouts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from satshare.security import hmac_sha256_hex
from satshare.sim.btcpay_payouts import PayoutBook, fault_answer, payout_routes
from satshare.sim.faults import Faults, FaultSettingsError, settings_request
from satshare.sim.lightning import RegtestNode, RegtestWallet

log = logging.getLogger(__name__)

SATS_PER_BTC = 100_000_000
CONFIRMATIONS_NEEDED = {"HighSpeed": 0, "MediumSpeed": 1, "LowMediumSpeed": 2, "LowSpeed": 6}
DEFAULT_RETRY_DELAYS = (10.0, 60.0, *([600.0] * 6))
_ID_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
Handler = Callable[[Request], Awaitable[Response]]


def _new_id(length: int = 22) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _btc(sats: int) -> str:
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), SATS_PER_BTC)
    return f"{sign}{whole}.{frac:08d}"


@dataclass
class SimPayment:
    id: str
    method: str  # BTC-LN | BTC-CHAIN
    sats: int
    received: int
    destination: str
    confirmations: int = 0
    invalid: bool = False


@dataclass
class SimInvoice:
    id: str
    store_id: str
    amount: str
    currency: str
    amount_sats: int
    metadata: dict[str, Any]
    checkout: dict[str, Any]
    created: int
    expiration: int
    monitoring_expiration: int
    speed_policy: str
    methods: list[str]
    address: str | None
    bolt11: str | None
    payment_hash: str | None
    status: str = "New"
    additional_status: str = "None"
    payments: list[SimPayment] = field(default_factory=list)
    marked: bool = False
    archived: bool = False

    def paid_sats(self) -> int:
        return sum(p.sats for p in self.payments if not p.invalid)

    def confirmed_sats(self) -> int:
        needed = CONFIRMATIONS_NEEDED.get(self.speed_policy, 1)
        return sum(
            p.sats
            for p in self.payments
            if not p.invalid and (p.method == "BTC-LN" or p.confirmations >= needed)
        )


@dataclass
class SimWebhook:
    id: str
    store_id: str
    url: str
    secret: str
    enabled: bool = True
    automatic_redelivery: bool = True
    everything: bool = True
    specific_events: list[str] = field(default_factory=list)

    def wants(self, event_type: str) -> bool:
        return self.enabled and (self.everything or event_type in self.specific_events)

    def as_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "enabled": self.enabled,
            "automaticRedelivery": self.automatic_redelivery,
            "url": self.url,
            "authorizedEvents": {
                "everything": self.everything,
                "specificEvents": self.specific_events,
            },
        }
        if with_secret:
            data["secret"] = self.secret
        return data


@dataclass
class SimDelivery:
    id: str
    webhook_id: str
    event: dict[str, Any]
    body: bytes
    timestamp: int
    status: str = "Pending"  # Pending | HttpSuccess | HttpError | Failed | Dropped
    http_code: int | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "httpCode": self.http_code,
            "errorMessage": self.error,
            "status": self.status,
        }


class BTCPayEmulator:
    """State and behaviour of one emulated BTCPay Server with one or more stores."""

    def __init__(
        self,
        *,
        api_key: str,
        store_id: str,
        base_url: str = "",
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        webhook_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.stores = {store_id}
        self.base_url = base_url.rstrip("/")
        self.retry_delays = tuple(retry_delays)
        self.clock = clock
        self.invoices: dict[str, SimInvoice] = {}
        self.webhooks: dict[str, SimWebhook] = {}
        self.deliveries: list[SimDelivery] = []
        self.drop_webhooks = False
        self.api_down = False
        self.faults = Faults("create_invoice", "fetch_invoice")
        #: The store's rate table (BTC price per currency), served by GET .../rates.
        self.rates: dict[str, Decimal] = {"USD": Decimal("97000"), "EUR": Decimal("89500")}
        self.node = RegtestNode()
        self.wallet = RegtestWallet()
        #: Store payouts (paying affiliates), see btcpay_payouts.
        self.payouts = PayoutBook()
        self._tasks: set[asyncio.Task[None]] = set()
        self._queues: dict[str, asyncio.Queue[SimDelivery]] = {}
        self._client = httpx.AsyncClient(timeout=webhook_timeout)
        self._watcher: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._watch_expiry())

    async def _watch_expiry(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for invoice in list(self.invoices.values()):
                self.evaluate(invoice)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        if self._watcher is not None:
            tasks.append(self._watcher)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.faults.aclose()
        await self.payouts.faults.aclose()
        await self._client.aclose()

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every queued webhook delivery has been attempted (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(q.empty() for q in self._queues.values()) and not any(
                d.status == "Pending" for d in self.deliveries
            ):
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("webhook deliveries still pending")

    # -- invoices -------------------------------------------------------------------------

    def create_invoice(self, store_id: str, body: dict[str, Any]) -> SimInvoice:
        now = int(self.clock())
        checkout = body.get("checkout") or {}
        amount_text = str(body["amount"])
        currency = str(body.get("currency") or "BTC").upper()
        amount = Decimal(amount_text)
        if currency == "SATS":
            amount_sats = int(amount.to_integral_value(rounding="ROUND_CEILING"))
        else:
            # BTC: due is rounded UP to whole sats, as BTCPay does.
            amount_sats = int((amount * SATS_PER_BTC).to_integral_value(rounding="ROUND_CEILING"))
        expiration_minutes = float(checkout.get("expirationMinutes") or 15)
        monitoring_minutes = float(checkout.get("monitoringMinutes") or 1440)
        expiration = now + int(expiration_minutes * 60)
        methods = list(checkout.get("paymentMethods") or ["BTC-CHAIN", "BTC-LN"])
        invoice_id = _new_id()
        metadata = dict(body.get("metadata") or {})
        bolt11 = payment_hash = address = None
        if "BTC-LN" in methods:
            bolt11, payment_hash, _ = self.node.invoice(
                amount_sats * 1000,
                str(metadata.get("itemDesc") or f"Invoice {invoice_id}"),
                int(expiration_minutes * 60),
            )
        if "BTC-CHAIN" in methods:
            address = self.wallet.next_address()
        invoice = SimInvoice(
            id=invoice_id,
            store_id=store_id,
            amount=amount_text,
            currency=currency,
            amount_sats=amount_sats,
            metadata=metadata,
            checkout=checkout,
            created=now,
            expiration=expiration,
            monitoring_expiration=expiration + int(monitoring_minutes * 60),
            speed_policy=str(checkout.get("speedPolicy") or "MediumSpeed"),
            methods=methods,
            address=address,
            bolt11=bolt11,
            payment_hash=payment_hash,
        )
        self.invoices[invoice_id] = invoice
        self.emit(invoice, "InvoiceCreated")
        return invoice

    def invoice_json(self, invoice: SimInvoice) -> dict[str, Any]:
        self.evaluate(invoice)
        return {
            "id": invoice.id,
            "storeId": invoice.store_id,
            "amount": invoice.amount,
            "paidAmount": self._in_currency(invoice, invoice.paid_sats()),
            "currency": invoice.currency,
            "type": "Standard",
            "checkoutLink": f"{self.base_url}/i/{invoice.id}",
            "createdTime": invoice.created,
            "expirationTime": invoice.expiration,
            "monitoringExpiration": invoice.monitoring_expiration,
            "status": invoice.status,
            "additionalStatus": invoice.additional_status,
            "availableStatusesForManualMarking": self._markable(invoice),
            "archived": invoice.archived,
            "metadata": invoice.metadata,
            "checkout": {
                "speedPolicy": invoice.speed_policy,
                "paymentMethods": invoice.methods,
                "expirationMinutes": (invoice.expiration - invoice.created) // 60,
            },
        }

    @staticmethod
    def _in_currency(invoice: SimInvoice, sats: int) -> str:
        return str(sats) if invoice.currency == "SATS" else _btc(sats)

    @staticmethod
    def _markable(invoice: SimInvoice) -> list[str]:
        if invoice.status in ("Settled", "Invalid"):
            return []
        return ["Settled", "Invalid"]

    def payment_methods_json(self, invoice: SimInvoice) -> list[dict[str, Any]]:
        self.evaluate(invoice)
        paid_total = invoice.paid_sats()
        result: list[dict[str, Any]] = []
        for method in invoice.methods:
            destination = invoice.bolt11 if method == "BTC-LN" else invoice.address
            payments = [p for p in invoice.payments if p.method == method]
            needed = CONFIRMATIONS_NEEDED.get(invoice.speed_policy, 1)
            result.append(
                {
                    "paymentMethodId": method,
                    "currency": "BTC",
                    "destination": destination,
                    "paymentLink": (
                        f"lightning:{destination}"
                        if method == "BTC-LN"
                        else f"bitcoin:{destination}?amount={_btc(invoice.amount_sats)}"
                    ),
                    "rate": "1.00000000" if invoice.currency == "BTC" else "100000000",
                    "paymentMethodPaid": _btc(sum(p.sats for p in payments if not p.invalid)),
                    "totalPaid": _btc(paid_total),
                    "due": _btc(invoice.amount_sats - paid_total),
                    "amount": _btc(invoice.amount_sats),
                    "paymentMethodFee": "0.00000000",
                    "activated": True,
                    "payments": [
                        {
                            "id": p.id,
                            "receivedDate": p.received,
                            "value": _btc(p.sats),
                            "fee": "0.00000000",
                            "status": (
                                "Invalid"
                                if p.invalid
                                else "Settled"
                                if p.method == "BTC-LN" or p.confirmations >= needed
                                else "Processing"
                            ),
                            "destination": p.destination,
                        }
                        for p in payments
                    ],
                    "additionalData": {},
                }
            )
        return result

    def evaluate(self, invoice: SimInvoice) -> None:
        """Recompute status from payments and time; emit the events of any transition."""
        if invoice.marked or invoice.status in ("Settled", "Invalid"):
            return
        now = int(self.clock())
        paid = invoice.paid_sats()
        before = (invoice.status, invoice.additional_status)
        if invoice.status == "Expired":
            if paid >= invoice.amount_sats and invoice.additional_status != "PaidLate":
                invoice.additional_status = "PaidLate"
            elif 0 < paid < invoice.amount_sats:
                invoice.additional_status = "PaidPartial"
        elif paid >= invoice.amount_sats:
            over = paid > invoice.amount_sats
            if invoice.confirmed_sats() >= invoice.amount_sats:
                invoice.status = "Settled"
            else:
                invoice.status = "Processing"
                if now > invoice.monitoring_expiration:
                    invoice.status = "Invalid"
            invoice.additional_status = "PaidOver" if over else "None"
        elif now > invoice.expiration:
            invoice.status = "Expired"
            invoice.additional_status = "PaidPartial" if paid > 0 else "None"
        else:
            invoice.additional_status = "PaidPartial" if paid > 0 else "None"
        after = (invoice.status, invoice.additional_status)
        if after == before:
            return
        over = invoice.additional_status == "PaidOver"
        if invoice.status == "Processing" and before[0] != "Processing":
            self.emit(invoice, "InvoiceProcessing", overPaid=over)
        elif invoice.status == "Settled":
            self.emit(invoice, "InvoiceSettled", manuallyMarked=False, overPaid=over)
        elif invoice.status == "Invalid":
            self.emit(invoice, "InvoiceInvalid", manuallyMarked=False)
        elif invoice.status == "Expired" and before[0] != "Expired":
            self.emit(invoice, "InvoiceExpired", partiallyPaid=paid > 0)
            if paid > 0:
                self.emit(invoice, "InvoiceExpiredPaidPartial", partiallyPaid=True)
        elif invoice.status == "Expired" and invoice.additional_status == "PaidLate":
            self.emit(invoice, "InvoicePaidAfterExpiration")

    def pay(self, invoice: SimInvoice, *, method: str, sats: int | None = None) -> SimPayment:
        self.evaluate(invoice)
        amount = invoice.amount_sats - invoice.paid_sats() if sats is None else sats
        if amount <= 0:
            raise ValueError("nothing left to pay; pass amount_sats to overpay")
        if method not in invoice.methods:
            raise ValueError(f"payment method {method} is not enabled on this invoice")
        destination = (invoice.bolt11 if method == "BTC-LN" else invoice.address) or ""
        payment = SimPayment(
            id=_new_id(16) if method == "BTC-LN" else f"{secrets.token_hex(32)}-0",
            method=method,
            sats=amount,
            received=int(self.clock()),
            destination=destination,
        )
        invoice.payments.append(payment)
        late = invoice.status == "Expired"
        self.emit(
            invoice,
            "InvoiceReceivedPayment",
            afterExpiration=late,
            paymentMethodId=method,
            payment={"id": payment.id, "value": _btc(amount), "status": "Processing"},
        )
        if method == "BTC-LN":
            self.emit(
                invoice,
                "InvoicePaymentSettled",
                afterExpiration=late,
                paymentMethodId=method,
                payment={"id": payment.id, "value": _btc(amount), "status": "Settled"},
            )
        self.evaluate(invoice)
        return payment

    def mine(self, blocks: int = 1) -> None:
        """Confirm on-chain payments by ``blocks`` more blocks."""
        for invoice in self.invoices.values():
            needed = CONFIRMATIONS_NEEDED.get(invoice.speed_policy, 1)
            for payment in invoice.payments:
                if payment.method != "BTC-CHAIN" or payment.invalid:
                    continue
                was = payment.confirmations
                payment.confirmations += blocks
                if was < needed <= payment.confirmations:
                    self.emit(
                        invoice,
                        "InvoicePaymentSettled",
                        afterExpiration=False,
                        paymentMethodId="BTC-CHAIN",
                        payment={
                            "id": payment.id,
                            "value": _btc(payment.sats),
                            "status": "Settled",
                        },
                    )
            self.evaluate(invoice)

    def expire(self, invoice: SimInvoice) -> None:
        invoice.expiration = min(invoice.expiration, int(self.clock()) - 1)
        self.evaluate(invoice)

    def mark(self, invoice: SimInvoice, status: str) -> None:
        if status not in ("Settled", "Invalid"):
            raise ValueError("status must be Settled or Invalid")
        invoice.status = status
        invoice.additional_status = "Marked"
        invoice.marked = True
        event = "InvoiceSettled" if status == "Settled" else "InvoiceInvalid"
        extra = {"overPaid": False} if status == "Settled" else {}
        self.emit(invoice, event, manuallyMarked=True, **extra)

    # -- webhooks -------------------------------------------------------------------------

    def add_webhook(self, store_id: str, url: str, secret: str | None = None) -> SimWebhook:
        hook = SimWebhook(
            id=_new_id(), store_id=store_id, url=url, secret=secret or secrets.token_urlsafe(24)
        )
        self.webhooks[hook.id] = hook
        return hook

    def emit(self, invoice: SimInvoice, event_type: str, **fields: Any) -> None:
        for hook in self.webhooks.values():
            if hook.store_id != invoice.store_id or not hook.wants(event_type):
                continue
            delivery_id = _new_id()
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

    def _enqueue(self, hook: SimWebhook, event: dict[str, Any]) -> SimDelivery:
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
            "deliveryId": _new_id(),
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
            self._spawn(self._retry_later(hook, delivery, attempt))
        else:
            delivery.status = "Failed" if retry else delivery.status

    async def _retry_later(self, hook: SimWebhook, delivery: SimDelivery, attempt: int) -> None:
        await asyncio.sleep(self.retry_delays[attempt])
        if hook.id not in self.webhooks:
            return
        _, event = self._redelivery_of(delivery)
        body = json.dumps(event, separators=(",", ":")).encode()
        redelivery = SimDelivery(
            id=event["deliveryId"],
            webhook_id=hook.id,
            event=event,
            body=body,
            timestamp=event["timestamp"],
        )
        self.deliveries.append(redelivery)
        if self.drop_webhooks:
            redelivery.status = "Dropped"
            return
        await self._send(hook, redelivery, attempt + 1)


# -- HTTP layer -------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _validation(errors: list[tuple[str, str]]) -> JSONResponse:
    return JSONResponse([{"path": p, "message": m} for p, m in errors], status_code=422)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    return json.loads(raw)


def build_app(emulator: BTCPayEmulator) -> Starlette:
    def greenfield(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            if emulator.api_down:
                return _error(503, "service-unavailable", "BTCPay Server is restarting")
            emulator._ensure_watcher()
            auth = request.headers.get("authorization", "")
            if auth != f"token {emulator.api_key}":
                return _error(
                    401, "unauthenticated", "Authentication is required for accessing this endpoint"
                )
            store_id = request.path_params.get("store_id")
            if store_id is not None and store_id not in emulator.stores:
                return _error(403, "unauthorized", "The API key does not have access to this store")
            try:
                return await handler(request)
            except json.JSONDecodeError:
                return _error(400, "invalid-json", "The request body is not valid JSON")

        return wrapped

    def find_invoice(request: Request) -> SimInvoice | None:
        invoice = emulator.invoices.get(request.path_params["invoice_id"])
        store_id = request.path_params.get("store_id")
        if invoice is None or (store_id is not None and invoice.store_id != store_id):
            return None
        return invoice

    async def create_invoice(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _validation([("", "The request body must be a JSON object")])
        errors: list[tuple[str, str]] = []
        amount = body.get("amount")
        try:
            value = Decimal(str(amount))
            if not value.is_finite() or value <= 0:
                errors.append(("amount", "Amount should be a positive number"))
        except InvalidOperation:
            errors.append(("amount", "Amount should be a decimal number"))
        currency = str(body.get("currency") or "BTC").upper()
        if currency not in ("BTC", "SATS"):
            errors.append(
                ("currency", "The emulator has no rate for this currency (use BTC or SATS)")
            )
        checkout = body.get("checkout") or {}
        minutes = checkout.get("expirationMinutes")
        if minutes is not None and (not isinstance(minutes, int | float) or minutes <= 0):
            errors.append(("checkout.expirationMinutes", "Expiration should be positive"))
        speed = checkout.get("speedPolicy")
        if speed is not None and speed not in CONFIRMATIONS_NEEDED:
            errors.append(("checkout.speedPolicy", "Invalid speed policy"))
        methods = checkout.get("paymentMethods")
        if methods is not None and (
            not isinstance(methods, list) or not set(methods) <= {"BTC-CHAIN", "BTC-LN"}
        ):
            errors.append(("checkout.paymentMethods", "Unknown payment method"))
        if errors:
            return _validation(errors)
        invoice = emulator.create_invoice(request.path_params["store_id"], body)
        return JSONResponse(emulator.invoice_json(invoice))

    async def list_invoices(request: Request) -> Response:
        store_id = request.path_params["store_id"]
        invoices = [i for i in emulator.invoices.values() if i.store_id == store_id]
        return JSONResponse([emulator.invoice_json(i) for i in reversed(invoices)])

    async def get_invoice(request: Request) -> Response:
        invoice = find_invoice(request)
        if invoice is None:
            return _error(404, "invoice-not-found", "The invoice was not found")
        return JSONResponse(emulator.invoice_json(invoice))

    async def payment_methods(request: Request) -> Response:
        invoice = find_invoice(request)
        if invoice is None:
            return _error(404, "invoice-not-found", "The invoice was not found")
        return JSONResponse(emulator.payment_methods_json(invoice))

    async def mark_status(request: Request) -> Response:
        invoice = find_invoice(request)
        if invoice is None:
            return _error(404, "invoice-not-found", "The invoice was not found")
        body = await _json_body(request)
        status = body.get("status") if isinstance(body, dict) else None
        if status not in ("Settled", "Invalid"):
            return _validation([("status", "Status can only be marked to Settled or Invalid")])
        emulator.mark(invoice, status)
        return JSONResponse(emulator.invoice_json(invoice))

    async def create_webhook(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return _validation([("url", "url is required")])
        if not body["url"].startswith(("http://", "https://")):
            return _validation([("url", "url should be an absolute URL")])
        hook = emulator.add_webhook(
            request.path_params["store_id"], body["url"], body.get("secret")
        )
        hook.enabled = bool(body.get("enabled", True))
        hook.automatic_redelivery = bool(body.get("automaticRedelivery", True))
        events = body.get("authorizedEvents") or {}
        hook.everything = bool(events.get("everything", True))
        hook.specific_events = list(events.get("specificEvents") or [])
        return JSONResponse(hook.as_json(with_secret=True))

    async def list_webhooks(request: Request) -> Response:
        store_id = request.path_params["store_id"]
        return JSONResponse(
            [h.as_json() for h in emulator.webhooks.values() if h.store_id == store_id]
        )

    def find_hook(request: Request) -> SimWebhook | None:
        hook = emulator.webhooks.get(request.path_params["webhook_id"])
        store_id = request.path_params.get("store_id")
        if hook is None or (store_id is not None and hook.store_id != store_id):
            return None
        return hook

    async def get_webhook(request: Request) -> Response:
        hook = find_hook(request)
        if hook is None:
            return _error(404, "webhook-not-found", "The webhook was not found")
        if request.method == "DELETE":
            del emulator.webhooks[hook.id]
            return Response(status_code=200)
        return JSONResponse(hook.as_json())

    async def list_deliveries(request: Request) -> Response:
        hook = find_hook(request)
        if hook is None:
            return _error(404, "webhook-not-found", "The webhook was not found")
        items = [d.as_json() for d in emulator.deliveries if d.webhook_id == hook.id]
        return JSONResponse(list(reversed(items)))

    def find_delivery(request: Request) -> SimDelivery | None:
        hook = find_hook(request)
        if hook is None:
            return None
        wanted = request.path_params["delivery_id"]
        return next(
            (d for d in emulator.deliveries if d.id == wanted and d.webhook_id == hook.id), None
        )

    async def get_delivery(request: Request) -> Response:
        delivery = find_delivery(request)
        if delivery is None:
            return _error(404, "webhookdelivery-not-found", "The webhook delivery was not found")
        return JSONResponse(delivery.as_json())

    async def delivery_request(request: Request) -> Response:
        delivery = find_delivery(request)
        if delivery is None:
            return _error(404, "webhookdelivery-not-found", "The webhook delivery was not found")
        return Response(delivery.body, media_type="application/json")

    async def redeliver(request: Request) -> Response:
        delivery = find_delivery(request)
        if delivery is None:
            return _error(404, "webhookdelivery-not-found", "The webhook delivery was not found")
        return JSONResponse(emulator.redeliver(delivery).id)

    # -- control API (not BTCPay) --------------------------------------------------------

    def control_invoice(request: Request) -> SimInvoice | None:
        return emulator.invoices.get(request.path_params["invoice_id"])

    async def store_rates(request: Request) -> Response:
        pairs = request.query_params.getlist("currencyPair") or [f"BTC_{c}" for c in emulator.rates]
        rows: list[dict[str, Any]] = []
        for pair in pairs:
            base, _, quote = pair.partition("_")
            if base == "BTC" and quote in emulator.rates:
                rows.append(
                    {"currencyPair": pair, "errors": [], "rate": str(emulator.rates[quote])}
                )
            else:
                rows.append(
                    {"currencyPair": pair, "errors": ["Unsupported currency pair"], "rate": None}
                )
        return JSONResponse(rows)

    async def sim_pay(request: Request) -> Response:
        invoice = control_invoice(request)
        if invoice is None:
            return _error(404, "invoice-not-found", "The invoice was not found")
        body = await _json_body(request)
        method = str(
            body.get("method") or ("BTC-LN" if "BTC-LN" in invoice.methods else "BTC-CHAIN")
        )
        sats = body.get("amount_sats")
        if sats is not None and (isinstance(sats, bool) or not isinstance(sats, int) or sats <= 0):
            return _error(422, "invalid-amount", "amount_sats must be a positive integer")
        try:
            payment = emulator.pay(invoice, method=method, sats=sats)
        except ValueError as exc:
            return _error(422, "cannot-pay", str(exc))
        blocks = body.get("confirm_blocks")
        if isinstance(blocks, int) and blocks > 0:
            emulator.mine(blocks)
        return JSONResponse(
            {
                "payment_id": payment.id,
                "sats": payment.sats,
                "invoice": emulator.invoice_json(invoice),
            }
        )

    async def sim_mine(request: Request) -> Response:
        body = await _json_body(request)
        blocks = body.get("blocks", 1) if isinstance(body, dict) else 1
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            return _error(422, "invalid-blocks", "blocks must be a positive integer")
        emulator.mine(blocks)
        return JSONResponse({"mined": blocks})

    async def sim_expire(request: Request) -> Response:
        invoice = control_invoice(request)
        if invoice is None:
            return _error(404, "invoice-not-found", "The invoice was not found")
        emulator.expire(invoice)
        return JSONResponse(emulator.invoice_json(invoice))

    async def sim_invalidate(request: Request) -> Response:
        invoice = control_invoice(request)
        if invoice is None:
            return _error(404, "invoice-not-found", "The invoice was not found")
        for payment in invoice.payments:
            payment.invalid = True
        if invoice.status != "Invalid":
            invoice.status = "Invalid"
            invoice.additional_status = "None"
            emulator.emit(invoice, "InvoiceInvalid", manuallyMarked=False)
        return JSONResponse(emulator.invoice_json(invoice))

    async def sim_deliveries(request: Request) -> Response:
        invoice_id = request.query_params.get("invoice_id")
        event_type = request.query_params.get("type")
        items = []
        for d in emulator.deliveries:
            if invoice_id and d.event.get("invoiceId") != invoice_id:
                continue
            if event_type and d.event.get("type") != event_type:
                continue
            hook = emulator.webhooks.get(d.webhook_id)
            items.append(
                {
                    **d.as_json(),
                    "webhookId": d.webhook_id,
                    "type": d.event.get("type"),
                    "invoiceId": d.event.get("invoiceId"),
                    "body": d.body.decode(),
                    "signature": emulator.signature(hook, d.body) if hook else None,
                }
            )
        return JSONResponse(items)

    async def sim_settings(request: Request) -> Response:
        try:
            body = await settings_request(request, emulator.faults)
        except FaultSettingsError as exc:
            return _error(422, "invalid-settings", str(exc))
        if "drop_webhooks" in body:
            emulator.drop_webhooks = bool(body["drop_webhooks"])
        if "api_down" in body:
            emulator.api_down = bool(body["api_down"])
        return JSONResponse(
            {
                "drop_webhooks": emulator.drop_webhooks,
                "api_down": emulator.api_down,
                "faults": emulator.faults.as_json(),
            }
        )

    async def checkout_page(request: Request) -> Response:
        invoice = emulator.invoices.get(request.path_params["invoice_id"])
        if invoice is None:
            return HTMLResponse("<h1>Invoice not found</h1>", status_code=404)
        emulator.evaluate(invoice)
        rows = "".join(
            f"<li><b>{html.escape(m)}</b>: <code>{html.escape(d or '')}</code></li>"
            for m, d in (("Lightning", invoice.bolt11), ("On-chain", invoice.address))
            if d
        )
        page = (
            "<!doctype html><meta charset=utf-8><title>BTCPay emulator checkout</title>"
            f"<h1>Invoice {html.escape(invoice.id)}</h1>"
            f"<p>Amount: {invoice.amount_sats} sats · Status: <b>{invoice.status}</b> "
            f"({invoice.additional_status})</p><ul>{rows}</ul>"
            "<p>This is the SatShare BTCPay emulator (regtest). Nothing here moves real coins.</p>"
        )
        return HTMLResponse(page)

    g = greenfield
    creating = emulator.faults.wrap("create_invoice", create_invoice, fault_answer)
    fetching = emulator.faults.wrap("fetch_invoice", get_invoice, fault_answer)
    routes = [
        Route("/api/v1/stores/{store_id}/invoices", g(creating), methods=["POST"]),
        Route("/api/v1/stores/{store_id}/invoices", g(list_invoices), methods=["GET"]),
        Route("/api/v1/stores/{store_id}/invoices/{invoice_id}", g(fetching), methods=["GET"]),
        Route("/api/v1/invoices/{invoice_id}", g(fetching), methods=["GET"]),
        Route(
            "/api/v1/stores/{store_id}/invoices/{invoice_id}/payment-methods",
            g(payment_methods),
            methods=["GET"],
        ),
        Route("/api/v1/invoices/{invoice_id}/payment-methods", g(payment_methods), methods=["GET"]),
        Route(
            "/api/v1/stores/{store_id}/invoices/{invoice_id}/status",
            g(mark_status),
            methods=["POST"],
        ),
        Route("/api/v1/invoices/{invoice_id}/status", g(mark_status), methods=["POST"]),
        Route("/api/v1/stores/{store_id}/webhooks", g(create_webhook), methods=["POST"]),
        Route("/api/v1/stores/{store_id}/webhooks", g(list_webhooks), methods=["GET"]),
        Route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}",
            g(get_webhook),
            methods=["GET", "DELETE"],
        ),
        Route("/api/v1/webhooks/{webhook_id}", g(get_webhook), methods=["GET", "DELETE"]),
        Route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}/deliveries",
            g(list_deliveries),
            methods=["GET"],
        ),
        Route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}/deliveries/{delivery_id}",
            g(get_delivery),
            methods=["GET"],
        ),
        Route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/request",
            g(delivery_request),
            methods=["GET"],
        ),
        Route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
            g(redeliver),
            methods=["POST"],
        ),
        Route("/api/v1/stores/{store_id}/rates", g(store_rates), methods=["GET"]),
        Route("/i/{invoice_id}", checkout_page, methods=["GET"]),
        Route("/_sim/invoices/{invoice_id}/pay", sim_pay, methods=["POST"]),
        Route("/_sim/invoices/{invoice_id}/expire", sim_expire, methods=["POST"]),
        Route("/_sim/invoices/{invoice_id}/invalidate", sim_invalidate, methods=["POST"]),
        Route("/_sim/mine", sim_mine, methods=["POST"]),
        Route("/_sim/deliveries", sim_deliveries, methods=["GET"]),
        Route("/_sim/settings", sim_settings, methods=["GET", "POST"]),
        *payout_routes(emulator.payouts, greenfield, _json_body),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emulator
    return app
