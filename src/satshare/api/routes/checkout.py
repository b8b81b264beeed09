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

from satshare.api.deps import ContainerDep
from satshare.errors import InvalidRequest, NotFound, ProviderUnavailable
from satshare.payments import flows
from satshare.payments import repository as payments_repo
from satshare.payments.models import OPEN_STATUSES
from satshare.plans import service as plans
from satshare.subscriptions import repository as subscriptions_repo
from satshare.subscriptions.service import effective_status

router = APIRouter(tags=["checkout"], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parents[2] / "templates"))

#: A buyer watching the page triggers at most one processor poll per invoice this often.
REFRESH_EVERY_SECONDS = 5.0
_last_refresh: dict[str, float] = {}


def _qr(data: str) -> str:
    return segno.make(data, error="m").svg_inline(scale=4, border=2)


async def _load(container: Any, invoice_id: str) -> dict[str, Any]:
    now = container.clock.now()
    async with container.db.reading() as session:
        invoice = await payments_repo.get_invoice(session, invoice_id)
        if invoice is None:
            raise NotFound(f"invoice {invoice_id} does not exist")
        plan = await plans.get(session, invoice.plan_id)
        subscription = await subscriptions_repo.get(session, invoice.subscription_id)
    assert plan is not None and subscription is not None
    return {
        "invoice": invoice,
        "plan": plan,
        "subscription_status": effective_status(subscription, now),
        "ends_at": subscription.ends_at,
        "seconds_left": max(0, int((invoice.expires_at - now).total_seconds())),
    }


@router.get("/pay/{invoice_id}", response_class=HTMLResponse)
async def checkout_page(container: ContainerDep, request: Request, invoice_id: str) -> HTMLResponse:
    data = await _load(container, invoice_id)
    invoice = data["invoice"]
    return templates.TemplateResponse(
        request,
        "pay.html",
        {
            **data,
            "sandbox": container.sandbox is not None,
            "ln_qr": _qr(f"lightning:{invoice.payment_request.upper()}")
            if invoice.payment_request
            else None,
            "chain_qr": _qr(f"bitcoin:{invoice.address}") if invoice.address else None,
        },
    )


@router.get("/pay/{invoice_id}/status")
async def checkout_status(container: ContainerDep, invoice_id: str) -> dict[str, Any]:
    data = await _load(container, invoice_id)
    invoice = data["invoice"]
    if invoice.status in OPEN_STATUSES:
        last = _last_refresh.get(invoice_id, 0.0)
        if time.monotonic() - last >= REFRESH_EVERY_SECONDS:
            if len(_last_refresh) > 10_000:  # old pages: forget them rather than grow
                _last_refresh.clear()
            _last_refresh[invoice_id] = time.monotonic()
            # If the processor is down the page keeps polling and the reconciler keeps trying.
            with contextlib.suppress(ProviderUnavailable):
                await flows.refresh_invoice(container.payments, invoice_id)
            data = await _load(container, invoice_id)
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
async def simulate_payment(container: ContainerDep, invoice_id: str) -> dict[str, Any]:
    """Sandbox only: pay the invoice on the BTCPay emulator, which then sends its webhook."""
    if container.sandbox is None:
        raise NotFound("payment simulation exists only in sandbox mode")
    async with container.db.reading() as session:
        invoice = await payments_repo.get_invoice(session, invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    emulator = container.sandbox.btcpay
    remote = emulator.invoices.get(invoice.provider_invoice_id)
    if remote is None:
        raise NotFound("this invoice is not on the sandbox BTCPay (was the server restarted?)")
    try:
        emulator.pay(remote, method="BTC-LN" if "BTC-LN" in remote.methods else "BTC-CHAIN")
        emulator.mine(1)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    return {"status": "paid", "invoice_id": invoice_id}
