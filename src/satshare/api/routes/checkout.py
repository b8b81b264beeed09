"""The checkout page a buyer opens: amount, Lightning invoice and address with QR codes,
live status. In sandbox mode it also offers "Simulate payment"."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from satshare.access import service as access
from satshare.api import texts as web
from satshare.api.checkout_view import CheckoutView, TelegramLinks
from satshare.api.deps import ContainerDep, InvoiceIdPath
from satshare.api.pages import page_language, render, wants_html
from satshare.container import Container
from satshare.errors import InvalidRequest, NotFound, ProviderUnavailable
from satshare.i18n import translate
from satshare.payments import flows
from satshare.payments import repository as payments_repo
from satshare.payments.models import OPEN_STATUSES
from satshare.plans import service as plans
from satshare.plans.models import Plan
from satshare.schemas import StrictModel
from satshare.subscriptions import repository as subscriptions_repo
from satshare.subscriptions.service import effective_status
from satshare.telegram_contract import STARS_START

router = APIRouter(tags=["checkout"], include_in_schema=False)

#: A buyer watching the page triggers at most one processor poll per invoice this often.
REFRESH_EVERY_SECONDS = 5.0
_last_refresh: dict[str, float] = {}


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


RAIL_LABELS = {
    "btcpay": web.RAIL_BTCPAY,
    "lnbits": web.RAIL_LNBITS,
    "onchain": web.RAIL_ONCHAIN,
    "bitpay": web.RAIL_BITPAY,
}


@router.get("/pay/{invoice_id}", response_class=HTMLResponse)
async def checkout_page(
    container: ContainerDep, request: Request, invoice_id: InvoiceIdPath
) -> HTMLResponse:
    language = page_language(request)
    try:
        data = await _load(container, invoice_id)
    except NotFound:
        if not wants_html(request):
            raise
        return render(
            request,
            "not_found.html",
            status_code=404,
            language=language,
            message=translate(language, web.NOT_FOUND_INVOICE),
        )
    invoice, plan = data["invoice"], data["plan"]
    wording = container.settings.plan_text(plan.id, language)
    view = CheckoutView(
        language,
        invoice,
        plan,
        data["ends_at"],
        data["seconds_left"],
        title=wording.title if wording else plan.title,
        description=(wording.description if wording else "") or plan.description,
    )
    context: dict[str, Any] = {**view.summary(), "plan": plan, "invoice": invoice}
    telegram = _telegram_links(container, request)
    context.update(back_link=telegram.back, sandbox_chat=telegram.sandbox)
    if view.state == "paid":
        async with container.db.reading() as session:
            shared = {
                chat_id: await access.shared_link(session, chat_id) for chat_id in plan.channels
            }
        context.update(view.paid(telegram, shared))
    elif view.state == "open":
        rails = container.payments.rails_for(plan.providers)
        context.update(
            view.payment(),
            rails=[(name, translate(language, RAIL_LABELS[name])) for name in rails],
            sandbox=container.sandbox is not None,
            stars_link=_stars_link(container, request, plan),
        )
    return render(request, "pay.html", language=language, **context)


def _telegram_links(container: Container, request: Request) -> TelegramLinks:
    """Where "back to the bot" goes: the sandbox chat, or the bot in Telegram."""
    if container.telegram_sandbox is not None:
        return TelegramLinks(back="/sandbox", sandbox=True, join_request=True)
    runtime = getattr(request.app.state, "bot", None)
    join_request = container.settings.telegram.access_mode == "join_request"
    if runtime is None:
        return TelegramLinks(back=None, sandbox=False, join_request=join_request)
    return TelegramLinks(
        back=f"https://t.me/{runtime.username}", sandbox=False, join_request=join_request
    )


def _stars_link(container: Container, request: Request, plan: Plan) -> str | None:
    """A deep link that opens the bot and offers this plan for Telegram Stars."""
    runtime = getattr(request.app.state, "bot", None)
    if runtime is None or not flows.stars_allowed(
        container.payments, plan.price_stars, plan.providers
    ):
        return None
    start = f"{STARS_START}{plan.id}"
    if len(start) > 64:  # Telegram's limit for a start parameter
        return None
    return f"https://t.me/{runtime.username}?start={start}"


class RailChoice(StrictModel):
    provider: str = Field(min_length=1, max_length=16)


@router.post("/pay/{invoice_id}/rail")
async def switch_rail(
    container: ContainerDep, invoice_id: InvoiceIdPath, body: RailChoice
) -> dict[str, Any]:
    """The buyer prefers another rail: a new invoice for the same plan on that rail."""
    async with container.db.reading() as session:
        invoice = await payments_repo.get_invoice(session, invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    if invoice.status not in OPEN_STATUSES:
        raise InvalidRequest(f"this invoice is {invoice.status}; start a new purchase instead")
    if body.provider == invoice.provider:
        return {
            "invoice_id": invoice.id,
            "checkout_url": container.payments.checkout_url(invoice.id),
        }
    checkout = await flows.start_checkout(
        container.payments,
        user_id=invoice.user_id,
        plan_id=invoice.plan_id,
        provider_name=body.provider,
    )
    return {
        "invoice_id": checkout.invoice.id,
        "checkout_url": container.payments.checkout_url(checkout.invoice.id),
    }


@router.get("/pay/{invoice_id}/status")
async def checkout_status(container: ContainerDep, invoice_id: InvoiceIdPath) -> dict[str, Any]:
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
async def simulate_payment(container: ContainerDep, invoice_id: InvoiceIdPath) -> dict[str, Any]:
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
