"""An LNbits emulator (API v1) over real HTTP.

Invoices are real BOLT11 strings (regtest, signed with the emulator node's key). As in LNbits:
``X-Api-Key`` authenticates (the invoice key may create and check, paying needs the admin
key), ``out`` defaults to true, amounts in responses are msat, and the payment webhook is sent
once, unsigned and never retried, its body a JSON *string* that itself contains JSON.

Control API under ``/_sim``: pay an invoice (optionally losing the webhook), expire it, take
the API down.

Faults (``sim/faults.py``), from Python or ``POST /_sim/settings``: ``api_down`` (503 to
everything), ``drop_webhooks`` (payment webhooks are recorded in ``webhooks_dropped``, never
sent), ``fail_payments`` (every outgoing payment fails: no route), ``pay_delay_seconds`` (pay,
then answer that late), and the uniform knobs (``delay``, ``fail_next``,
``accept_then_fail``, ``die_mid_call``) on three operations: ``create_invoice`` (POST with
``out: false``), ``pay`` (POST with ``out: true``) and ``fetch_payment`` (GET a payment,
incoming or outgoing), e.g. ``emulator.faults.pay.accept_then_fail = True`` or
``{"faults": {"pay": {"accept_then_fail": true}}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from bolt11 import decode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satshare.sim.faults import Faults, FaultSettingsError, settings_request
from satshare.sim.lightning import LightningNetwork, PaymentFailed, RegtestNode


@dataclass
class SimLnPayment:
    payment_hash: str
    bolt11: str
    amount_msat: int  # positive incoming, negative outgoing
    memo: str
    created: int
    expiry: int
    out: bool
    preimage: str
    webhook: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"  # pending | success | failed
    fee_msat: int = 0
    expired: bool = False  # forced by the control API

    def as_json(self, now: int) -> dict[str, Any]:
        return {
            "checking_id": self.payment_hash,
            "payment_hash": self.payment_hash,
            "wallet_id": "sandbox-wallet",
            "amount": self.amount_msat,
            "fee": self.fee_msat,
            "memo": self.memo,
            "time": self.created,
            "bolt11": self.bolt11,
            "preimage": self.preimage if self.status == "success" else "0" * 64,
            "expiry": self.created + self.expiry,
            "extra": self.extra,
            "webhook": self.webhook,
            "status": self.current_status(now),
            "pending": self.current_status(now) == "pending",
        }

    def current_status(self, now: int) -> str:
        if (
            self.status == "pending"
            and not self.out
            and (self.expired or now > self.created + self.expiry)
        ):
            return "failed"  # an unpaid invoice past its expiry can never be paid
        return self.status


class LNbitsEmulator:
    def __init__(
        self,
        *,
        invoice_key: str,
        admin_key: str,
        balance_sats: int = 10_000_000,
        clock: Callable[[], float] = time.time,
        network: LightningNetwork | None = None,
        routing_fee_msat: int = 1_000,
    ) -> None:
        self.invoice_key = invoice_key
        self.admin_key = admin_key
        self.balance_msat = balance_sats * 1000
        self.clock = clock
        self.node = RegtestNode()
        self.payments: dict[str, SimLnPayment] = {}
        self.webhooks_sent: list[tuple[str, bytes, int | None]] = []
        #: Payment hashes whose webhook drop_webhooks swallowed.
        self.webhooks_dropped: list[str] = []
        self.api_down = False
        self.drop_webhooks = False
        self.faults = Faults("create_invoice", "pay", "fetch_payment")
        #: Misbehave: issue invoices for one sat more than asked (adapter checks must catch it).
        self.tamper_amount = False
        #: Outgoing payments by payment hash (the payouts side).
        self.outgoing: dict[str, SimLnPayment] = {}
        self.sent_payments = 0
        #: Other emulated nodes reachable from this wallet (Lightning Address servers...).
        self.network = network
        if network is not None:
            network.join(self.node)
        self.routing_fee_msat = routing_fee_msat
        #: Every payment attempt fails (no route).
        self.fail_payments = False
        #: Pay, then answer this many seconds late (a client timeout after a real payment).
        self.pay_delay_seconds = 0.0
        self._client = httpx.AsyncClient(timeout=10)
        self._tasks: set[asyncio.Task[Any]] = set()

    def now(self) -> int:
        return int(self.clock())

    def create_invoice(
        self, amount_sats: int, memo: str, expiry: int, webhook: str | None, extra: dict[str, Any]
    ) -> SimLnPayment:
        billed = amount_sats + 1 if self.tamper_amount else amount_sats
        bolt11, payment_hash, preimage = self.node.invoice(billed * 1000, memo, expiry)
        payment = SimLnPayment(
            payment_hash=payment_hash,
            bolt11=bolt11,
            amount_msat=amount_sats * 1000,
            memo=memo,
            created=self.now(),
            expiry=expiry,
            out=False,
            preimage=preimage,
            webhook=webhook,
            extra=extra,
        )
        self.payments[payment_hash] = payment
        return payment

    def settle(self, payment_hash: str, *, send_webhook: bool = True) -> SimLnPayment:
        """A payer paid this invoice (what a real node would report)."""
        payment = self.payments[payment_hash]
        status = payment.current_status(self.now())
        if status != "pending":
            raise ValueError(f"invoice is {status}, it cannot be paid")
        payment.status = "success"
        self.balance_msat += payment.amount_msat
        if send_webhook and payment.webhook:
            if self.drop_webhooks:
                self.webhooks_dropped.append(payment.payment_hash)
            else:
                self._spawn(self.send_webhook(payment))
        return payment

    def pay_out(self, bolt11: str) -> SimLnPayment:
        """Pay an invoice from the wallet (admin key).

        Raises ValueError when LNbits refuses before trying (HTTP 400), PaymentFailed when
        the payment was tried and failed (recorded as failed, HTTP 520)."""
        try:
            decoded = decode(bolt11)
        except Exception as exc:
            raise ValueError("Invalid bolt11 invoice.") from exc
        amount = int(decoded.amount_msat or 0)
        if amount <= 0:
            raise ValueError("amountless invoices need an amount")
        previous = self.outgoing.get(decoded.payment_hash)
        if previous is not None and previous.status != "failed":
            raise ValueError("Payment already paid or in flight.")
        internal = self.payments.get(decoded.payment_hash)
        fee = 0 if internal is not None else self.routing_fee_msat
        if amount + fee > self.balance_msat:
            raise ValueError("Insufficient balance.")
        payment = SimLnPayment(
            payment_hash=decoded.payment_hash,
            bolt11=bolt11,
            amount_msat=-amount,
            memo=decoded.description or "",
            created=self.now(),
            expiry=int(decoded.expiry or 3600),
            out=True,
            preimage="0" * 64,
            status="pending",
            fee_msat=-fee,
        )
        self.outgoing[payment.payment_hash] = payment
        try:
            if self.fail_payments:
                raise PaymentFailed("no route found")
            if internal is not None and not internal.out:
                self.settle(internal.payment_hash)
                preimage = internal.preimage
            elif self.network is not None:
                preimage = self.network.pay(bolt11)
            else:
                preimage = os.urandom(32).hex()
        except (PaymentFailed, ValueError) as exc:
            payment.status = "failed"
            raise PaymentFailed(str(exc)) from exc
        payment.preimage, payment.status = preimage, "success"
        self.balance_msat -= amount + fee
        self.sent_payments += 1
        return payment

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send_webhook(self, payment: SimLnPayment) -> int | None:
        """POST the payment's webhook as LNbits does when it is paid; returns the status the
        receiver answered (None: no answer). LNbits itself never sends one twice: tests call
        this to play a delivery again."""
        # LNbits v1.1+: the body is a JSON string containing the payment's JSON.
        body = json.dumps(json.dumps(payment.as_json(self.now()))).encode()
        status: int | None = None
        try:
            assert payment.webhook is not None
            response = await self._client.post(
                payment.webhook, content=body, headers={"Content-Type": "application/json"}
            )
            status = response.status_code
        except httpx.HTTPError:
            status = None
        self.webhooks_sent.append((payment.payment_hash, body, status))
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


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def build_app(emulator: LNbitsEmulator) -> Starlette:
    def key_of(request: Request) -> str | None:
        key = request.headers.get("x-api-key")
        if key in (emulator.invoice_key, emulator.admin_key):
            return "admin" if key == emulator.admin_key else "invoice"
        return None

    async def body_of(request: Request) -> dict[str, Any]:
        body = json.loads(await request.body() or b"{}")  # checked by payments() first
        assert isinstance(body, dict)
        return body

    async def payments(request: Request) -> Response:
        if emulator.api_down:
            return _error(503, "Service Unavailable")
        kind = key_of(request)
        if kind is None:
            return _error(401, "Invalid key or wallet.")
        try:
            body = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "Invalid JSON.")
        if not isinstance(body, dict):
            return _error(422, "Body must be an object.")
        if body.get("out", True):
            if kind != "admin":
                return _error(403, "Invalid adminkey.")
            return await paying(request)
        return await creating(request)

    async def pay(request: Request) -> Response:
        bolt11 = (await body_of(request)).get("bolt11")
        if not isinstance(bolt11, str):
            return _error(400, "bolt11 is required to pay.")
        try:
            paid = emulator.pay_out(bolt11)
        except PaymentFailed as exc:
            return _error(520, f"Payment failed: {exc}")
        except ValueError as exc:
            return _error(400, str(exc))
        if emulator.pay_delay_seconds:
            await asyncio.sleep(emulator.pay_delay_seconds)
        data = paid.as_json(emulator.now())
        return JSONResponse({**data, "payment_request": paid.bolt11}, status_code=201)

    async def create(request: Request) -> Response:
        body = await body_of(request)
        amount = body.get("amount")
        unit = body.get("unit", "sat")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return _error(400, "Amount must be a positive integer.")
        if unit != "sat":
            return _error(400, "The emulator supports unit 'sat' only.")
        expiry = body.get("expiry", 3600)
        if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry <= 0:
            return _error(400, "Expiry must be positive seconds.")
        created = emulator.create_invoice(
            amount,
            str(body.get("memo") or ""),
            expiry,
            body.get("webhook"),
            body.get("extra") or {},
        )
        data = created.as_json(emulator.now())
        return JSONResponse({**data, "payment_request": created.bolt11}, status_code=201)

    async def payment(request: Request) -> Response:
        if emulator.api_down:
            return _error(503, "Service Unavailable")
        if key_of(request) is None:
            return _error(401, "Invalid key or wallet.")
        return await fetching(request)

    async def fetch(request: Request) -> Response:
        payment_hash = request.path_params["payment_hash"]
        found = emulator.outgoing.get(payment_hash) or emulator.payments.get(payment_hash)
        if found is None:
            return _error(404, "Payment does not exist.")
        now = emulator.now()
        status = found.current_status(now)
        return JSONResponse(
            {
                "paid": status == "success",
                "status": status,
                "preimage": found.preimage if status == "success" else None,
                "details": found.as_json(now),
            }
        )

    async def control_pay(request: Request) -> Response:
        payment_hash = request.path_params["payment_hash"]
        if payment_hash not in emulator.payments:
            return _error(404, "Payment does not exist.")
        send = request.query_params.get("webhook", "true") != "false"
        try:
            paid = emulator.settle(payment_hash, send_webhook=send)
        except ValueError as exc:
            return _error(422, str(exc))
        return JSONResponse(paid.as_json(emulator.now()))

    async def control_expire(request: Request) -> Response:
        found = emulator.payments.get(request.path_params["payment_hash"])
        if found is None:
            return _error(404, "Payment does not exist.")
        found.expired = True
        return JSONResponse(found.as_json(emulator.now()))

    async def control_settings(request: Request) -> Response:
        try:
            body = await settings_request(request, emulator.faults)
        except FaultSettingsError as exc:
            return _error(422, str(exc))
        for name in ("drop_webhooks", "api_down", "tamper_amount", "fail_payments"):
            if name in body:
                setattr(emulator, name, bool(body[name]))
        if isinstance(body.get("pay_delay_seconds"), int | float):
            emulator.pay_delay_seconds = max(0.0, float(body["pay_delay_seconds"]))
        return JSONResponse(
            {
                "api_down": emulator.api_down,
                "drop_webhooks": emulator.drop_webhooks,
                "balance_msat": emulator.balance_msat,
                "sent_payments": emulator.sent_payments,
                "faults": emulator.faults.as_json(),
            }
        )

    creating = emulator.faults.wrap("create_invoice", create, _error)
    paying = emulator.faults.wrap("pay", pay, _error)
    fetching = emulator.faults.wrap("fetch_payment", fetch, _error)

    app = Starlette(
        routes=[
            Route("/api/v1/payments", payments, methods=["POST"]),
            Route("/api/v1/payments/{payment_hash}", payment, methods=["GET"]),
            Route("/_sim/payments/{payment_hash}/pay", control_pay, methods=["POST"]),
            Route("/_sim/payments/{payment_hash}/expire", control_expire, methods=["POST"]),
            Route("/_sim/settings", control_settings, methods=["GET", "POST"]),
        ]
    )
    app.state.emulator = emulator
    return app
