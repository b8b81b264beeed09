"""The Greenfield API v1 routes of the BTCPay emulator, one class per area.

Owns what BTCPay answers over HTTP, following the Greenfield OpenAPI 2.4.1 spec: the guard
every Greenfield call passes (503 while ``api_down``, 401 without ``Authorization: token
<api key>``, 403 for a store the key cannot reach, 400 for a body that is not JSON), BTCPay's
error shapes (``{"code", "message"}``, and a list of ``{"path", "message"}`` for 422), and the
routes: invoices and their payment methods (:class:`InvoiceRoutes`), store webhooks and their
deliveries (:class:`WebhookRoutes`) and the store's rates (:class:`RateRoutes`). Invoice
create and fetch carry their fault knobs (``sim/faults.py``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satshare.sim.btcpay.model import CONFIRMATIONS_NEEDED, SimDelivery, SimInvoice, SimWebhook
from satshare.sim.btcpay_payouts import fault_answer

if TYPE_CHECKING:
    from satshare.sim.btcpay.emulator import BTCPayEmulator

Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Handler], Handler]


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def validation(errors: list[tuple[str, str]]) -> JSONResponse:
    return JSONResponse([{"path": p, "message": m} for p, m in errors], status_code=422)


def invoice_not_found() -> JSONResponse:
    return error(404, "invoice-not-found", "The invoice was not found")


def _delivery_not_found() -> JSONResponse:
    return error(404, "webhookdelivery-not-found", "The webhook delivery was not found")


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    return json.loads(raw)


def guard(emulator: BTCPayEmulator) -> Guard:
    """What every Greenfield call passes before its handler runs."""

    def greenfield(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            if emulator.api_down:
                return error(503, "service-unavailable", "BTCPay Server is restarting")
            emulator.ensure_watcher()
            auth = request.headers.get("authorization", "")
            if auth != f"token {emulator.api_key}":
                return error(
                    401, "unauthenticated", "Authentication is required for accessing this endpoint"
                )
            store_id = request.path_params.get("store_id")
            if store_id is not None and store_id not in emulator.stores:
                return error(403, "unauthorized", "The API key does not have access to this store")
            try:
                return await handler(request)
            except json.JSONDecodeError:
                return error(400, "invalid-json", "The request body is not valid JSON")

        return wrapped

    return greenfield


StoreItem = TypeVar("StoreItem", SimInvoice, SimWebhook)


def _in_store(request: Request, found: StoreItem | None) -> StoreItem | None:
    """What the path names, if it is there and in the path's store (when the path has one:
    ``/api/v1/invoices/{id}`` reaches any store the key can)."""
    store_id = request.path_params.get("store_id")
    if found is None or (store_id is not None and found.store_id != store_id):
        return None
    return found


def _invoice_request_errors(body: dict[str, Any]) -> list[tuple[str, str]]:
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
        errors.append(("currency", "The emulator has no rate for this currency (use BTC or SATS)"))
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
    return errors


class InvoiceRoutes:
    """Invoices under a store or alone: create, list, get, payment methods, mark status."""

    def __init__(self, emulator: BTCPayEmulator) -> None:
        self.emulator = emulator

    def find(self, request: Request) -> SimInvoice | None:
        return _in_store(request, self.emulator.invoices.get(request.path_params["invoice_id"]))

    async def create(self, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            return validation([("", "The request body must be a JSON object")])
        errors = _invoice_request_errors(body)
        if errors:
            return validation(errors)
        invoice = self.emulator.create_invoice(request.path_params["store_id"], body)
        return JSONResponse(self.emulator.invoice_json(invoice))

    async def listing(self, request: Request) -> Response:
        store_id = request.path_params["store_id"]
        invoices = [i for i in self.emulator.invoices.values() if i.store_id == store_id]
        return JSONResponse([self.emulator.invoice_json(i) for i in reversed(invoices)])

    async def get(self, request: Request) -> Response:
        invoice = self.find(request)
        if invoice is None:
            return invoice_not_found()
        return JSONResponse(self.emulator.invoice_json(invoice))

    async def payment_methods(self, request: Request) -> Response:
        invoice = self.find(request)
        if invoice is None:
            return invoice_not_found()
        return JSONResponse(self.emulator.payment_methods_json(invoice))

    async def mark_status(self, request: Request) -> Response:
        invoice = self.find(request)
        if invoice is None:
            return invoice_not_found()
        body = await json_body(request)
        status = body.get("status") if isinstance(body, dict) else None
        if status not in ("Settled", "Invalid"):
            return validation([("status", "Status can only be marked to Settled or Invalid")])
        self.emulator.mark(invoice, status)
        return JSONResponse(self.emulator.invoice_json(invoice))

    def routes(self, g: Guard) -> list[Route]:
        faults = self.emulator.faults
        creating = faults.wrap("create_invoice", self.create, fault_answer)
        fetching = faults.wrap("fetch_invoice", self.get, fault_answer)
        store_one = "/api/v1/stores/{store_id}/invoices/{invoice_id}"
        return [
            Route("/api/v1/stores/{store_id}/invoices", g(creating), methods=["POST"]),
            Route("/api/v1/stores/{store_id}/invoices", g(self.listing), methods=["GET"]),
            Route(store_one, g(fetching), methods=["GET"]),
            Route("/api/v1/invoices/{invoice_id}", g(fetching), methods=["GET"]),
            Route(f"{store_one}/payment-methods", g(self.payment_methods), methods=["GET"]),
            Route(
                "/api/v1/invoices/{invoice_id}/payment-methods",
                g(self.payment_methods),
                methods=["GET"],
            ),
            Route(f"{store_one}/status", g(self.mark_status), methods=["POST"]),
            Route("/api/v1/invoices/{invoice_id}/status", g(self.mark_status), methods=["POST"]),
        ]


class WebhookRoutes:
    """Store webhooks (create, list, get, delete) and their deliveries (list, get, the
    request body sent, redeliver)."""

    def __init__(self, emulator: BTCPayEmulator) -> None:
        self.emulator = emulator

    def find(self, request: Request) -> SimWebhook | None:
        return _in_store(request, self.emulator.webhooks.get(request.path_params["webhook_id"]))

    def find_delivery(self, request: Request) -> SimDelivery | None:
        hook = self.find(request)
        if hook is None:
            return None
        wanted = request.path_params["delivery_id"]
        return next(
            (d for d in self.emulator.deliveries if d.id == wanted and d.webhook_id == hook.id),
            None,
        )

    async def create(self, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return validation([("url", "url is required")])
        if not body["url"].startswith(("http://", "https://")):
            return validation([("url", "url should be an absolute URL")])
        hook = self.emulator.add_webhook(
            request.path_params["store_id"], body["url"], body.get("secret")
        )
        hook.enabled = bool(body.get("enabled", True))
        hook.automatic_redelivery = bool(body.get("automaticRedelivery", True))
        events = body.get("authorizedEvents") or {}
        hook.everything = bool(events.get("everything", True))
        hook.specific_events = list(events.get("specificEvents") or [])
        return JSONResponse(hook.as_json(with_secret=True))

    async def listing(self, request: Request) -> Response:
        store_id = request.path_params["store_id"]
        return JSONResponse(
            [h.as_json() for h in self.emulator.webhooks.values() if h.store_id == store_id]
        )

    async def one(self, request: Request) -> Response:
        hook = self.find(request)
        if hook is None:
            return error(404, "webhook-not-found", "The webhook was not found")
        if request.method == "DELETE":
            del self.emulator.webhooks[hook.id]
            return Response(status_code=200)
        return JSONResponse(hook.as_json())

    async def deliveries(self, request: Request) -> Response:
        hook = self.find(request)
        if hook is None:
            return error(404, "webhook-not-found", "The webhook was not found")
        items = [d.as_json() for d in self.emulator.deliveries if d.webhook_id == hook.id]
        return JSONResponse(list(reversed(items)))

    async def delivery(self, request: Request) -> Response:
        delivery = self.find_delivery(request)
        if delivery is None:
            return _delivery_not_found()
        return JSONResponse(delivery.as_json())

    async def delivery_request(self, request: Request) -> Response:
        delivery = self.find_delivery(request)
        if delivery is None:
            return _delivery_not_found()
        return Response(delivery.body, media_type="application/json")

    async def redeliver(self, request: Request) -> Response:
        delivery = self.find_delivery(request)
        if delivery is None:
            return _delivery_not_found()
        return JSONResponse(self.emulator.redeliver(delivery).id)

    def routes(self, g: Guard) -> list[Route]:
        hook = "/api/v1/stores/{store_id}/webhooks/{webhook_id}"
        delivery = f"{hook}/deliveries/{{delivery_id}}"
        return [
            Route("/api/v1/stores/{store_id}/webhooks", g(self.create), methods=["POST"]),
            Route("/api/v1/stores/{store_id}/webhooks", g(self.listing), methods=["GET"]),
            Route(hook, g(self.one), methods=["GET", "DELETE"]),
            Route("/api/v1/webhooks/{webhook_id}", g(self.one), methods=["GET", "DELETE"]),
            Route(f"{hook}/deliveries", g(self.deliveries), methods=["GET"]),
            Route(delivery, g(self.delivery), methods=["GET"]),
            Route(f"{delivery}/request", g(self.delivery_request), methods=["GET"]),
            Route(f"{delivery}/redeliver", g(self.redeliver), methods=["POST"]),
        ]


class RateRoutes:
    """The store's rate table: ``GET /api/v1/stores/{store_id}/rates?currencyPair=BTC_USD``."""

    def __init__(self, emulator: BTCPayEmulator) -> None:
        self.emulator = emulator

    async def rates(self, request: Request) -> Response:
        table = self.emulator.rates
        pairs = request.query_params.getlist("currencyPair") or [f"BTC_{c}" for c in table]
        rows: list[dict[str, Any]] = []
        for pair in pairs:
            base, _, quote = pair.partition("_")
            if base == "BTC" and quote in table:
                rows.append({"currencyPair": pair, "errors": [], "rate": str(table[quote])})
            else:
                rows.append(
                    {"currencyPair": pair, "errors": ["Unsupported currency pair"], "rate": None}
                )
        return JSONResponse(rows)

    def routes(self, g: Guard) -> list[Route]:
        return [Route("/api/v1/stores/{store_id}/rates", g(self.rates), methods=["GET"])]
