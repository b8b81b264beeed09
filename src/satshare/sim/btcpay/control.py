"""What the BTCPay emulator serves beside the Greenfield API: the ``/_sim`` control API and
the checkout page.

Owns the control API (not part of BTCPay) that tests, benchmarks and the sandbox checkout use:
pay an invoice (in full, in part or over, by Lightning or on-chain, optionally mined), mine
blocks, expire or invalidate an invoice, read the webhook deliveries with their bodies and
signatures, and read or set the fault settings (``drop_webhooks``, ``api_down`` and the
invoice operations' knobs); and ``/i/{invoice_id}``, the checkout page an invoice's
``checkoutLink`` points to, in the look of the other sandbox pages.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from satshare.sim.btcpay.greenfield import error, invoice_not_found, json_body
from satshare.sim.btcpay.model import SimInvoice
from satshare.sim.faults import FaultSettingsError, settings_request

if TYPE_CHECKING:
    from satshare.sim.btcpay.emulator import BTCPayEmulator


class ControlRoutes:
    """``/_sim/...``: act on the emulated store as the world outside BTCPay would."""

    def __init__(self, emulator: BTCPayEmulator) -> None:
        self.emulator = emulator

    def find(self, request: Request) -> SimInvoice | None:
        return self.emulator.invoices.get(request.path_params["invoice_id"])

    async def pay(self, request: Request) -> Response:
        invoice = self.find(request)
        if invoice is None:
            return invoice_not_found()
        body = await json_body(request)
        method = str(
            body.get("method") or ("BTC-LN" if "BTC-LN" in invoice.methods else "BTC-CHAIN")
        )
        sats = body.get("amount_sats")
        if sats is not None and (isinstance(sats, bool) or not isinstance(sats, int) or sats <= 0):
            return error(422, "invalid-amount", "amount_sats must be a positive integer")
        try:
            payment = self.emulator.pay(invoice, method=method, sats=sats)
        except ValueError as exc:
            return error(422, "cannot-pay", str(exc))
        blocks = body.get("confirm_blocks")
        if isinstance(blocks, int) and blocks > 0:
            self.emulator.mine(blocks)
        return JSONResponse(
            {
                "payment_id": payment.id,
                "sats": payment.sats,
                "invoice": self.emulator.invoice_json(invoice),
            }
        )

    async def mine(self, request: Request) -> Response:
        body = await json_body(request)
        blocks = body.get("blocks", 1) if isinstance(body, dict) else 1
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            return error(422, "invalid-blocks", "blocks must be a positive integer")
        self.emulator.mine(blocks)
        return JSONResponse({"mined": blocks})

    async def expire(self, request: Request) -> Response:
        invoice = self.find(request)
        if invoice is None:
            return invoice_not_found()
        self.emulator.expire(invoice)
        return JSONResponse(self.emulator.invoice_json(invoice))

    async def invalidate(self, request: Request) -> Response:
        invoice = self.find(request)
        if invoice is None:
            return invoice_not_found()
        for payment in invoice.payments:
            payment.invalid = True
        if invoice.status != "Invalid":
            invoice.status = "Invalid"
            invoice.additional_status = "None"
            self.emulator.emit(invoice, "InvoiceInvalid", manuallyMarked=False)
        return JSONResponse(self.emulator.invoice_json(invoice))

    async def deliveries(self, request: Request) -> Response:
        invoice_id = request.query_params.get("invoice_id")
        event_type = request.query_params.get("type")
        items: list[dict[str, Any]] = []
        for d in self.emulator.deliveries:
            if invoice_id and d.event.get("invoiceId") != invoice_id:
                continue
            if event_type and d.event.get("type") != event_type:
                continue
            hook = self.emulator.webhooks.get(d.webhook_id)
            items.append(
                {
                    **d.as_json(),
                    "webhookId": d.webhook_id,
                    "type": d.event.get("type"),
                    "invoiceId": d.event.get("invoiceId"),
                    "body": d.body.decode(),
                    "signature": self.emulator.signature(hook, d.body) if hook else None,
                }
            )
        return JSONResponse(items)

    async def settings(self, request: Request) -> Response:
        emulator = self.emulator
        try:
            body = await settings_request(request, emulator.faults)
        except FaultSettingsError as exc:
            return error(422, "invalid-settings", str(exc))
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

    def routes(self) -> list[Route]:
        invoice = "/_sim/invoices/{invoice_id}"
        return [
            Route(f"{invoice}/pay", self.pay, methods=["POST"]),
            Route(f"{invoice}/expire", self.expire, methods=["POST"]),
            Route(f"{invoice}/invalidate", self.invalidate, methods=["POST"]),
            Route("/_sim/mine", self.mine, methods=["POST"]),
            Route("/_sim/deliveries", self.deliveries, methods=["GET"]),
            Route("/_sim/settings", self.settings, methods=["GET", "POST"]),
        ]


#: The sandbox pages' shared look (the join-link page includes the same file).
STYLE_FILE = Path(__file__).parents[2] / "templates" / "sandbox_style.html"
#: What a status is shown as: paid in green, dead in red, the rest grey.
STATUS_TAGS = {"Settled": "ok", "Expired": "refused", "Invalid": "refused"}


@functools.cache
def _style() -> str:
    text = STYLE_FILE.read_text(encoding="utf-8")
    return text[text.index("<style>") :]  # without the template comment above it


def _page(title: str, body: str, *, wide: bool = False, status: int = 200) -> HTMLResponse:
    """A whole page in the sandbox's look, styled inline: nothing to fetch, offline or not,
    mounted under /sim/btcpay or run alone."""
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>{_style()}</head><body>"
        f'<main{" class=wide" if wide else ""}><div class="card">'
        '<p class="kicker">BTCPay Server · sandbox</p>'
        f"{body}</div></main></body></html>",
        status_code=status,
    )


def home_route(emulator: BTCPayEmulator) -> Route:
    """``/``: what this is and the invoices so far, newest first (the sandbox banner links
    here), each linked to its checkout page."""

    async def home(request: Request) -> Response:
        invoices = sorted(emulator.invoices.values(), key=lambda i: i.created, reverse=True)
        rows = "".join(
            f'<li><a href="i/{html.escape(i.id)}"><code>{html.escape(i.id)}</code></a>: '
            f"{i.amount_sats:,} sats, <b>{html.escape(i.status)}</b></li>"
            for i in invoices[:100]
        )
        stores = html.escape(", ".join(sorted(emulator.stores)))
        body = (
            "<h1>BTCPay Server emulator</h1>"
            '<p class="muted">SatShare\'s sandbox processor, on regtest: nothing here moves real '
            "coins. SatShare reaches it over HTTP exactly like a real BTCPay Server (Greenfield "
            f"API under <code>api/v1/</code>, store <code>{stores}</code>); "
            "the checkout page's <b>Simulate payment</b> pays an invoice.</p>"
            f"<h2>Invoices ({len(invoices)})</h2>"
            + (
                f'<ul class="rows" id="invoices">{rows}</ul>'
                if rows
                else '<p class="muted">None yet: buy a plan to create one.</p>'
            )
        )
        return _page("BTCPay emulator", body, wide=True)

    return Route("/", home, methods=["GET"])


def checkout_route(emulator: BTCPayEmulator) -> Route:
    """``/i/{invoice_id}``: the invoice's amount, status and where to pay it."""

    async def checkout_page(request: Request) -> Response:
        invoice = emulator.invoices.get(request.path_params["invoice_id"])
        if invoice is None:
            body = '<h1>Invoice not found</h1><p class="back"><a href="../">All invoices</a></p>'
            return _page("Invoice not found · BTCPay emulator", body, status=404)
        emulator.evaluate(invoice)
        status = html.escape(invoice.status)
        if invoice.additional_status != "None":
            status += f" ({html.escape(invoice.additional_status)})"
        ways = "".join(
            f'<h2>{m}</h2><code class="block" id="{key}">{html.escape(d)}</code>'
            for m, key, d in (
                ("Lightning", "bolt11", invoice.bolt11),
                ("On-chain", "address", invoice.address),
            )
            if d
        )
        body = (
            f'<h1 id="amount">{invoice.amount_sats:,} sats</h1>'
            f'<p class="muted">Invoice <code>{html.escape(invoice.id)}</code></p>'
            f'<p><span class="tag {STATUS_TAGS.get(invoice.status, "")}" id="status">'
            f"{status}</span></p>{ways}"
            '<p class="muted">This is the SatShare BTCPay emulator (regtest). Nothing here '
            "moves real coins.</p>"
            '<p class="back"><a href="../">All invoices</a></p>'
        )
        return _page(f"Invoice {invoice.id} · BTCPay emulator", body)

    return Route("/i/{invoice_id}", checkout_page, methods=["GET"])
