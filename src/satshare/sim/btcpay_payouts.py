"""Store payouts for the BTCPay emulator (Greenfield "Stores (Payouts)").

``POST /api/v1/stores/{storeId}/payouts`` creates a payout (``destination``, ``amount`` in BTC,
``payoutMethodId`` BTC-CHAIN or BTC-LN, ``approved``, ``metadata``); it is then read, approved
or cancelled at ``/api/v1/stores/{storeId}/payouts/{payoutId}`` (the 2.4.1 spec file also
lists ``/api/v1/payouts/{payoutId}``: both are served). States: AwaitingApproval →
AwaitingPayment → InProgress → Completed, or Cancelled.

Who pays an approved payout is BTCPay's "payout processor". Here ``processor`` is "instant"
(paid at once: Completed with a proof) or "manual" (waits for the control API:
``/_sim/payouts/{id}/complete`` or ``/cancel``).

Fault knobs (``sim/faults.py``) on two operations: ``create_payout`` (POST a payout) and
``fetch_payout`` (GET one payout or the store's list), set as ``book.faults.create_payout.delay``
or through ``/_sim/payouts/settings`` (``{"faults": {"create_payout": {...}}}``). The older
names still work: ``create_delay`` is ``create_payout.delay``, ``fail_next_creates`` is
``create_payout.fail_next`` and ``fail_after_create`` is ``create_payout.accept_then_fail``.
"""

from __future__ import annotations

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

from satshare.sim.faults import Faults, FaultSettingsError, settings_request

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
    payouts: dict[str, SimPayout] = field(default_factory=dict)
    faults: Faults = field(default_factory=lambda: Faults("create_payout", "fetch_payout"))

    # The first knobs, kept under their old names.
    @property
    def fail_after_create(self) -> bool:
        """The next create makes the payout, then answers 500."""
        return self.faults.create_payout.accept_then_fail

    @fail_after_create.setter
    def fail_after_create(self, value: bool) -> None:
        self.faults.create_payout.accept_then_fail = value

    @property
    def fail_next_creates(self) -> int:
        """The next N creates are refused with 503 before anything is made."""
        return self.faults.create_payout.fail_next

    @fail_next_creates.setter
    def fail_next_creates(self, value: int) -> None:
        self.faults.create_payout.fail_next = value

    @property
    def create_delay(self) -> float:
        """Every create takes this long before the payout exists and the answer goes out; a
        client that gives up meanwhile does not stop it (as a slow BTCPay would not)."""
        return self.faults.create_payout.delay

    @create_delay.setter
    def create_delay(self, value: float) -> None:
        self.faults.create_payout.delay = value

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


def fault_answer(status: int, message: str) -> Response:
    """How BTCPay answers an emulated fault (sim/faults.py)."""
    return _error(status, "service-unavailable" if status == 503 else "internal", message)


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
        old_names = {
            "fail_after_create": "accept_then_fail",
            "fail_next_creates": "fail_next",
            "create_delay": "delay",
        }
        try:
            body = await settings_request(request, book.faults)
            book.faults.update(
                {"create_payout": {new: body[old] for old, new in old_names.items() if old in body}}
            )
        except FaultSettingsError as exc:
            return _error(422, "invalid-settings", str(exc))
        if body.get("processor") in ("instant", "manual"):
            book.processor = body["processor"]
        return JSONResponse(
            {
                "processor": book.processor,
                "fail_after_create": book.fail_after_create,
                "fail_next_creates": book.fail_next_creates,
                "create_delay": book.create_delay,
                "faults": book.faults.as_json(),
            }
        )

    g = greenfield
    faulty = book.faults.wrap
    creating = faulty("create_payout", create, fault_answer)
    fetching_list, fetching_one = (
        faulty("fetch_payout", listing, fault_answer),
        faulty("fetch_payout", one, fault_answer),
    )

    async def one_payout(request: Request) -> Response:
        # Reading a payout is a fetch; approving or cancelling it is not.
        return await (fetching_one if request.method == "GET" else one)(request)

    store_one = "/api/v1/stores/{store_id}/payouts/{payout_id}"
    return [
        Route("/api/v1/stores/{store_id}/payouts", g(creating), methods=["POST"]),
        Route("/api/v1/stores/{store_id}/payouts", g(fetching_list), methods=["GET"]),
        Route(store_one, g(one_payout), methods=["GET", "POST", "DELETE"]),
        Route("/api/v1/payouts/{payout_id}", g(one_payout), methods=["GET", "POST", "DELETE"]),
        Route("/_sim/payouts/{payout_id}/complete", sim_complete, methods=["POST"]),
        Route("/_sim/payouts/{payout_id}/cancel", sim_cancel, methods=["POST"]),
        Route("/_sim/payouts/settings", sim_settings, methods=["GET", "POST"]),
    ]
