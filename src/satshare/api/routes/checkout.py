"""The checkout page a buyer opens: amount, Lightning invoice and address with QR codes,
live status. In sandbox mode it also offers "Simulate payment"."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import Field

from satshare.api import texts as web
from satshare.api.deps import ClockDep, DbDep, InvoiceIdPath, PaymentsDep, SandboxDep
from satshare.api.ports import SandboxRefused
from satshare.clock import Clock
from satshare.db import Database
from satshare.errors import InvalidRequest, NotFound, ProviderUnavailable
from satshare.i18n import LANGUAGES, translate
from satshare.money import sats_to_btc
from satshare.payments import flows
from satshare.payments.flows import PaymentsContext
from satshare.payments.models import OPEN_STATUSES, InvoiceStatus
from satshare.plans.models import Plan
from satshare.schemas import StrictModel
from satshare.subscriptions.service import effective_status
from satshare.telegram_contract import STARS_START

router = APIRouter(tags=["checkout"], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parents[2] / "templates"))

#: A buyer watching the page triggers at most one processor poll per invoice this often.
REFRESH_EVERY_SECONDS = 5.0
_last_refresh: dict[str, float] = {}


def _qr(data: str) -> str:
    return segno.make(data, error="m").svg_inline(scale=4, border=2)


async def _load(db: Database, clock: Clock, invoice_id: str) -> dict[str, Any]:
    now = clock.now()
    view = await flows.checkout_view(db, invoice_id)
    invoice, plan, subscription = view.invoice, view.plan, view.subscription
    return {
        "invoice": invoice,
        "plan": plan,
        "subscription_status": effective_status(subscription, now),
        "ends_at": subscription.ends_at,
        "seconds_left": max(0, int((invoice.expires_at - now).total_seconds())),
    }


RAIL_LABELS = {
    "btcpay": web.RAIL_BTCPAY,
    "lnbits": web.RAIL_LNBITS,
    "onchain": web.RAIL_ONCHAIN,
    "bitpay": web.RAIL_BITPAY,
}
STATUS_LABELS = {
    InvoiceStatus.NEW: web.STATUS_NEW,
    InvoiceStatus.PROCESSING: web.STATUS_PROCESSING,
    InvoiceStatus.SETTLED: web.STATUS_SETTLED,
    InvoiceStatus.EXPIRED: web.STATUS_EXPIRED,
    InvoiceStatus.INVALID: web.STATUS_INVALID,
}


def page_language(request: Request) -> str:
    """?lang= wins, then the browser's Accept-Language, then English."""
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return "en"


@router.get("/pay/{invoice_id}", response_class=HTMLResponse)
async def checkout_page(
    db: DbDep,
    clock: ClockDep,
    payments: PaymentsDep,
    sandbox_pages: SandboxDep,
    request: Request,
    invoice_id: InvoiceIdPath,
) -> HTMLResponse:
    data = await _load(db, clock, invoice_id)
    invoice = data["invoice"]
    language = page_language(request)

    def t(message: str, **values: object) -> str:
        return translate(language, message, **values)

    rails = payments.rails_for(data["plan"].providers)
    stars_link = _stars_link(payments, request, data["plan"])
    bip21 = f"bitcoin:{invoice.address}?amount={sats_to_btc(invoice.amount_sats)}"
    lightning = invoice.payment_request
    return templates.TemplateResponse(
        request,
        "pay.html",
        {
            **data,
            "t": t,
            "web": web,
            "language": language,
            "rails": [(name, t(RAIL_LABELS[name])) for name in rails],
            "status_labels": {k: t(v) for k, v in STATUS_LABELS.items()},
            "sandbox": sandbox_pages is not None,
            "bip21": bip21,
            "stars_link": stars_link,
            "ln_qr": _qr(f"lightning:{lightning.upper()}") if lightning else None,
            "chain_qr": _qr(bip21) if invoice.address else None,
        },
    )


def _stars_link(payments: PaymentsContext, request: Request, plan: Plan) -> str | None:
    """A deep link that opens the bot and offers this plan for Telegram Stars."""
    runtime = getattr(request.app.state, "bot", None)
    if runtime is None or not flows.stars_allowed(payments, plan.price_stars, plan.providers):
        return None
    start = f"{STARS_START}{plan.id}"
    if len(start) > 64:  # Telegram's limit for a start parameter
        return None
    return f"https://t.me/{runtime.username}?start={start}"


class RailChoice(StrictModel):
    provider: str = Field(min_length=1, max_length=16)


@router.post("/pay/{invoice_id}/rail")
async def switch_rail(
    db: DbDep, payments: PaymentsDep, invoice_id: InvoiceIdPath, body: RailChoice
) -> dict[str, Any]:
    """The buyer prefers another rail: a new invoice for the same plan on that rail."""
    invoice = await flows.get_invoice(db, invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    if invoice.status not in OPEN_STATUSES:
        raise InvalidRequest(f"this invoice is {invoice.status}; start a new purchase instead")
    if body.provider == invoice.provider:
        return {
            "invoice_id": invoice.id,
            "checkout_url": payments.checkout_url(invoice.id),
        }
    checkout = await flows.start_checkout(
        payments,
        user_id=invoice.user_id,
        plan_id=invoice.plan_id,
        provider_name=body.provider,
    )
    return {
        "invoice_id": checkout.invoice.id,
        "checkout_url": payments.checkout_url(checkout.invoice.id),
    }


@router.get("/pay/{invoice_id}/status")
async def checkout_status(
    db: DbDep, clock: ClockDep, payments: PaymentsDep, invoice_id: InvoiceIdPath
) -> dict[str, Any]:
    data = await _load(db, clock, invoice_id)
    invoice = data["invoice"]
    if invoice.status in OPEN_STATUSES:
        last = _last_refresh.get(invoice_id, 0.0)
        if time.monotonic() - last >= REFRESH_EVERY_SECONDS:
            if len(_last_refresh) > 10_000:  # old pages: forget them rather than grow
                _last_refresh.clear()
            _last_refresh[invoice_id] = time.monotonic()
            # If the processor is down the page keeps polling and the reconciler keeps trying.
            with contextlib.suppress(ProviderUnavailable):
                await flows.refresh_invoice(payments, invoice_id)
            data = await _load(db, clock, invoice_id)
            invoice = data["invoice"]
    return {
        "invoice_id": invoice.id,
        "status": invoice.status,
        "amount_sats": invoice.amount_sats,
        "paid_sats": invoice.paid_sats,
        "seconds_left": data["seconds_left"],
        "subscription_status": data["subscription_status"],
        "active_until": data["ends_at"].isoformat() if data["ends_at"] else None,
    }


@router.post("/pay/{invoice_id}/simulate")
async def simulate_payment(
    db: DbDep, sandbox_pages: SandboxDep, invoice_id: InvoiceIdPath
) -> dict[str, Any]:
    """Sandbox only: pay the invoice on the BTCPay emulator, which then sends its webhook."""
    if sandbox_pages is None:
        raise NotFound("payment simulation exists only in sandbox mode")
    invoice = await flows.get_invoice(db, invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    try:
        sandbox_pages.payments.simulate_payment(invoice.provider_invoice_id)
    except LookupError:
        raise NotFound(
            "this invoice is not on the sandbox BTCPay (was the server restarted?)"
        ) from None
    except SandboxRefused as exc:
        raise InvalidRequest(str(exc)) from exc
    return {"status": "paid", "invoice_id": invoice_id}
