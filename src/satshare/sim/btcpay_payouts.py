"""Store payouts for the BTCPay emulator (Greenfield "Stores (Payouts)").

``POST /api/v1/stores/{storeId}/payouts`` creates a payout (``destination``, ``amount`` in BTC,
``payoutMethodId`` BTC-CHAIN or BTC-LN, ``approved``, ``metadata``); it is then read, approved
or cancelled at ``/api/v1/stores/{storeId}/payouts/{payoutId}`` (the 2.4.1 spec file also
lists ``/api/v1/payouts/{payoutId}``: both are served). States: AwaitingApproval →
AwaitingPayment → InProgress → Completed, or Cancelled.

Who pays an approved payout is BTCPay's "payout processor". Here ``processor`` is "instant"
(paid at once: Completed with a proof) or "manual" (waits for the control API:
``/_sim/payouts/{id}/complete`` or ``/cancel``). ``fail_after_create`` makes the next create
succeed and then answer 504, as a proxy would after a timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SATS_PER_BTC = 100_000_000
METHODS = ("BTC-CHAIN", "BTC-LN")
STATES = ("AwaitingApproval", "AwaitingPayment", "InProgress", "Completed", "Cancelled")
Handler = Callable[[Request], Awaitable[Response]]


def _looks_lightning(destination: str) -> bool:
    lowered = destination.lower().removeprefix("lightning:")
    return lowered.startswith(("lnbc", "lntb", "lnbcrt", "lntbs", "lnurl")) or (
        "@" in lowered and "." in lowered.split("@")[-1]
    )


@dataclass
class SimPayout:
    id: str
    store_id: str
    destination: str
    amount_sats: int
    method: str
    metadata: dict[str, Any]
    created: int
    state: str = "AwaitingPayment"
    revision: int = 0
    proof: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        whole, frac = divmod(self.amount_sats, SATS_PER_BTC)
        amount = f"{whole}.{frac:08d}"
        return {
            "id": self.id,
            "revision": self.revision,
            "pullPaymentId": None,
            "date": self.created,
            "destination": self.destination,
            "originalCurrency": "BTC",
            "originalAmount": amount,
            "payoutCurrency": "BTC",
            "payoutAmount": amount if self.state != "AwaitingApproval" else None,
            "payoutMethodId": self.method,
            "state": self.state,
            "paymentProof": self.proof,
            "metadata": self.metadata,
        }


@dataclass
class PayoutBook:
    processor: str = "instant"  # instant | manual
    #: Fault knobs. fail_after_create: the next create makes the payout, then answers 504.
    fail_after_create: bool = False
    #: The next N creates are refused with 503 before anything is made.
    fail_next_creates: int = 0
    #: Every create takes this long before the payout exists and the answer goes out; a
    #: client that gives up meanwhile does not stop it (as a slow BTCPay would not).
    create_delay: float = 0.0
    payouts: dict[str, SimPayout] = field(default_factory=dict)
    _slow_creates: set[asyncio.Task[Any]] = field(default_factory=set)

    def complete(self, payout: SimPayout) -> None:
        if payout.method == "BTC-CHAIN":
            payout.proof = {
                "proofType": "PayoutTransactionOnChainBlob",
                "id": secrets.token_hex(32),
            }
        else:
            preimage = secrets.token_bytes(32)
            payout.proof = {
                "proofType": "PayoutLightningBlob",
                "preimage": preimage.hex(),
                "paymentHash": hashlib.sha256(preimage).hexdigest(),
            }
        payout.state = "Completed"

    def approved(self, payout: SimPayout) -> None:
        payout.state = "AwaitingPayment"
        if self.processor == "instant":
            payout.state = "InProgress"
            self.complete(payout)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _validation(errors: list[tuple[str, str]]) -> JSONResponse:
    return JSONResponse([{"path": p, "message": m} for p, m in errors], status_code=422)


def payout_routes(
    book: PayoutBook, greenfield: Callable[[Handler], Handler], read_json: Any
) -> list[Route]:
    def find(request: Request) -> SimPayout | None:
        payout = book.payouts.get(request.path_params["payout_id"])
        store_id = request.path_params.get("store_id")
        if payout is None or (store_id is not None and payout.store_id != store_id):
            return None
        return payout

    async def create(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            return _validation([("", "The request body must be a JSON object")])
        errors: list[tuple[str, str]] = []
        destination = body.get("destination")
        if not isinstance(destination, str) or not destination.strip():
            errors.append(("destination", "destination is required"))
        method = body.get("payoutMethodId")
        if method not in METHODS:
            errors.append(("payoutMethodId", "payoutMethodId must be BTC-CHAIN or BTC-LN"))
        sats = 0
        try:
            btc = Decimal(str(body.get("amount")))
            sats = int(btc * SATS_PER_BTC)
            if not btc.is_finite() or btc <= 0 or Decimal(sats) != btc * SATS_PER_BTC:
                errors.append(("amount", "amount must be a positive number of whole sats in BTC"))
        except InvalidOperation:
            errors.append(("amount", "amount must be a decimal number"))
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            errors.append(("metadata", "metadata must be an object"))
        if errors:
            return _validation(errors)
        assert isinstance(destination, str)
        if (method == "BTC-LN") != _looks_lightning(destination):
            return _error(
                400,
                "payment-method-not-supported",
                f"The destination is not a valid {method} destination",
            )
        if sats < 546 and method == "BTC-CHAIN":
            return _error(400, "amount-too-low", "The amount is below the dust limit")
        if book.fail_next_creates > 0:
            book.fail_next_creates -= 1
            return _error(503, "service-unavailable", "BTCPay Server is restarting")
        if book.create_delay > 0:
            # The payout is made after the delay even if our caller has gone (shielded).
            slow = asyncio.ensure_future(asyncio.sleep(book.create_delay))
            book._slow_creates.add(slow)
            slow.add_done_callback(book._slow_creates.discard)
            try:
                await asyncio.shield(slow)
            except asyncio.CancelledError:
                finishing = asyncio.ensure_future(_create_later(slow, request, body))
                book._slow_creates.add(finishing)
                finishing.add_done_callback(book._slow_creates.discard)
                raise
        return _make(request, body)

    async def _create_later(slow: asyncio.Future[Any], request: Request, body: Any) -> None:
        await slow
        _make(request, body)

    def _make(request: Request, body: dict[str, Any]) -> Response:
        destination, method = str(body["destination"]), str(body["payoutMethodId"])
        sats = int(Decimal(str(body.get("amount"))) * SATS_PER_BTC)
        metadata = body.get("metadata") or {}
        payout = SimPayout(
            id=secrets.token_urlsafe(16),
            store_id=request.path_params["store_id"],
            destination=destination.strip(),
            amount_sats=sats,
            method=str(method),
            metadata=metadata,
            created=int(time.time()),
            state="AwaitingApproval",
        )
        book.payouts[payout.id] = payout
        if body.get("approved") is True:
            book.approved(payout)
        if book.fail_after_create:
            book.fail_after_create = False
            return _error(504, "gateway-timeout", "The upstream server did not answer in time")
        return JSONResponse(payout.as_json())

    async def listing(request: Request) -> Response:
        include_cancelled = request.query_params.get("includeCancelled", "false") == "true"
        store_id = request.path_params["store_id"]
        return JSONResponse(
            [
                p.as_json()
                for p in book.payouts.values()
                if p.store_id == store_id and (include_cancelled or p.state != "Cancelled")
            ]
        )

    async def one(request: Request) -> Response:
        payout = find(request)
        if payout is None:
            return _error(404, "payout-not-found", "The payout is not found")
        if request.method == "GET":
            return JSONResponse(payout.as_json())
        if request.method == "DELETE":
            if payout.state in ("Completed", "InProgress"):
                return _error(400, "invalid-state", "The payout can no longer be cancelled")
            payout.state = "Cancelled"
            return JSONResponse({})
        if payout.state != "AwaitingApproval":  # POST: approve
            return _error(400, "invalid-state", "The payout is not awaiting approval")
        payout.revision += 1
        book.approved(payout)
        return JSONResponse(payout.as_json())

    async def sim_complete(request: Request) -> Response:
        payout = book.payouts.get(request.path_params["payout_id"])
        if payout is None or payout.state not in ("AwaitingPayment", "InProgress"):
            return _error(400, "invalid-state", "Only payouts awaiting payment can complete")
        book.complete(payout)
        return JSONResponse(payout.as_json())

    async def sim_cancel(request: Request) -> Response:
        payout = book.payouts.get(request.path_params["payout_id"])
        if payout is None or payout.state == "Completed":
            return _error(400, "invalid-state", "Only open payouts can be cancelled")
        payout.state = "Cancelled"
        return JSONResponse(payout.as_json())

    async def sim_settings(request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, dict):
            if body.get("processor") in ("instant", "manual"):
                book.processor = body["processor"]
            if "fail_after_create" in body:
                book.fail_after_create = bool(body["fail_after_create"])
            if isinstance(body.get("fail_next_creates"), int):
                book.fail_next_creates = max(0, body["fail_next_creates"])
            if isinstance(body.get("create_delay"), int | float):
                book.create_delay = max(0.0, float(body["create_delay"]))
        return JSONResponse(
            {
                "processor": book.processor,
                "fail_after_create": book.fail_after_create,
                "fail_next_creates": book.fail_next_creates,
                "create_delay": book.create_delay,
            }
        )

    g = greenfield
    store_one = "/api/v1/stores/{store_id}/payouts/{payout_id}"
    return [
        Route("/api/v1/stores/{store_id}/payouts", g(create), methods=["POST"]),
        Route("/api/v1/stores/{store_id}/payouts", g(listing), methods=["GET"]),
        Route(store_one, g(one), methods=["GET", "POST", "DELETE"]),
        Route("/api/v1/payouts/{payout_id}", g(one), methods=["GET", "POST", "DELETE"]),
        Route("/_sim/payouts/{payout_id}/complete", sim_complete, methods=["POST"]),
        Route("/_sim/payouts/{payout_id}/cancel", sim_cancel, methods=["POST"]),
        Route("/_sim/payouts/settings", sim_settings, methods=["GET", "POST"]),
    ]
