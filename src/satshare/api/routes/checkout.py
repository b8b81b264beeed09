"""The checkout page a buyer opens: amount, Lightning invoice and address with QR codes,
live status. Before the QR codes, a buyer who already has an active subscription is told what
paying does to it (extended, or a second plan alongside) and continues or goes back. The buyer
may change the rail or enter a promo code: either makes a new invoice for the same plan that
replaces this one (a refused code changes nothing). In sandbox mode it also offers "Simulate
payment"."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from satshare.access import flows as access
from satshare.api import texts as web
from satshare.api.checkout_view import CheckoutView, TelegramLinks
from satshare.api.deps import (
    INVOICE_ID_MAX,
    ClockDep,
    DbDep,
    InvoiceIdPath,
    PaymentsDep,
    SandboxDep,
    SettingsDep,
)
from satshare.api.pages import page_language, render, wants_html
from satshare.api.ports import SandboxPages, SandboxRefused
from satshare.api.routing import StrictJSONRoute
from satshare.clock import Clock
from satshare.config import Settings
from satshare.db import Database
from satshare.errors import InvalidRequest, NotFound, ProviderUnavailable
from satshare.i18n import translate
from satshare.payments import flows
from satshare.payments.flows import PaymentsContext
from satshare.payments.models import OPEN_STATUSES, Invoice
from satshare.plans.models import Plan
from satshare.promos.models import CODE_MAX_LENGTH
from satshare.promos.service import PromoRefused, Refusal, normalise
from satshare.schemas import StrictModel
from satshare.subscriptions import flows as subscription_flows
from satshare.subscriptions.service import effective_status
from satshare.telegram_contract import CONFIRMED_QUERY, STARS_START

router = APIRouter(route_class=StrictJSONRoute, tags=["checkout"], include_in_schema=False)

#: A buyer watching the page triggers at most one processor poll per invoice this often.
REFRESH_EVERY_SECONDS = 5.0
_last_refresh: dict[str, float] = {}


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


@router.get("/pay/{invoice_id}", response_class=HTMLResponse)
async def checkout_page(
    settings: SettingsDep,
    db: DbDep,
    clock: ClockDep,
    payments: PaymentsDep,
    sandbox_pages: SandboxDep,
    request: Request,
    invoice_id: str,  # any length: a mistyped link gets the not-found page, not a 422
) -> HTMLResponse:
    language = page_language(request)
    try:
        if len(invoice_id) > INVOICE_ID_MAX:  # longer than any invoice id
            raise NotFound(f"invoice {invoice_id[:INVOICE_ID_MAX]}… does not exist")
        data = await _load(db, clock, invoice_id)
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

    def title_of(shown: Plan) -> str:
        wording = settings.plan_text(shown.id, language)
        return wording.title if wording else shown.title

    wording = settings.plan_text(plan.id, language)
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
    telegram = _telegram_links(settings, sandbox_pages, request)
    context.update(back_link=telegram.back, sandbox_chat=telegram.sandbox)
    if view.state == "paid":
        shared = {chat_id: await access.shared_link(db, chat_id) for chat_id in plan.channels}
        context.update(view.paid(telegram, shared))
    elif view.state == "open":
        rails = payments.rails_for(plan.providers)
        outlook = await subscription_flows.purchase_outlook(
            db, invoice.user_id, plan.id, extra_days=invoice.bonus_days, now=clock.now()
        )
        confirmed = CONFIRMED_QUERY in request.url.query.split("&")
        context.update(
            view.payment(),
            rails=[(name, translate(language, RAIL_LABELS[name])) for name in rails],
            sandbox=sandbox_pages is not None,
            stars_link=_stars_link(payments, request, plan, sandbox=telegram.sandbox),
            outlook=view.outlook(outlook, ask=not confirmed, title_of=title_of),
            promo_reasons=view.promo_reasons(),
            promo_max_length=CODE_MAX_LENGTH,
            confirmed_query=CONFIRMED_QUERY,
        )
    return render(request, "pay.html", language=language, **context)


def _telegram_links(
    settings: Settings, sandbox_pages: SandboxPages | None, request: Request
) -> TelegramLinks:
    """Where "back to the bot" goes: the sandbox chat, or the bot in Telegram."""
    if sandbox_pages is not None and sandbox_pages.chat is not None:
        return TelegramLinks(back="/sandbox", sandbox=True, join_request=True)
    runtime = getattr(request.app.state, "bot", None)
    join_request = settings.telegram.access_mode == "join_request"
    if runtime is None:
        return TelegramLinks(back=None, sandbox=False, join_request=join_request)
    return TelegramLinks(
        back=f"https://t.me/{runtime.username}", sandbox=False, join_request=join_request
    )


def _stars_link(
    payments: PaymentsContext, request: Request, plan: Plan, *, sandbox: bool
) -> str | None:
    """A deep link that opens the bot and offers this plan for Telegram Stars (in the
    sandbox, the sandbox chat following that link: t.me would leave the sandbox)."""
    if not flows.stars_allowed(payments, plan.price_stars, plan.providers):
        return None
    start = f"{STARS_START}{plan.id}"
    if len(start) > 64:  # Telegram's limit for a start parameter
        return None
    if sandbox:
        return f"/sandbox?start={start}"
    runtime = getattr(request.app.state, "bot", None)
    if runtime is None:
        return None
    return f"https://t.me/{runtime.username}?start={start}"


class RailChoice(StrictModel):
    provider: str = Field(min_length=1, max_length=16)


class PromoEntry(StrictModel):
    # Bounded by the body limit only: what a buyer typed longer than any code is "no such
    # code" in their language (apply_promo), not a malformed request in English.
    code: str = Field(min_length=1)


async def _open_invoice(db: Database, invoice_id: str) -> Invoice:
    invoice = await flows.get_invoice(db, invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    if invoice.status not in OPEN_STATUSES:
        raise InvalidRequest(f"this invoice is {invoice.status}; start a new purchase instead")
    return invoice


async def _replace(
    payments: PaymentsContext, invoice: Invoice, *, provider: str, promo_code: str | None
) -> dict[str, Any]:
    """A new invoice for the same plan and buyer that replaces ``invoice`` (whose promo use,
    if any, goes back to its code); the page moves to it."""
    checkout = await flows.start_checkout(
        payments,
        user_id=invoice.user_id,
        plan_id=invoice.plan_id,
        provider_name=provider,
        promo_code=promo_code,
        replacing=invoice.id,
    )
    return {
        "invoice_id": checkout.invoice.id,
        "checkout_url": payments.checkout_url(checkout.invoice.id),
    }


@router.post("/pay/{invoice_id}/rail")
async def switch_rail(
    db: DbDep, payments: PaymentsDep, invoice_id: InvoiceIdPath, body: RailChoice
) -> dict[str, Any]:
    """The buyer prefers another rail: a new invoice for the same plan on that rail, with
    the same promo code."""
    invoice = await _open_invoice(db, invoice_id)
    if body.provider == invoice.provider:
        return {
            "invoice_id": invoice.id,
            "checkout_url": payments.checkout_url(invoice.id),
        }
    return await _replace(payments, invoice, provider=body.provider, promo_code=invoice.promo_code)


@router.post("/pay/{invoice_id}/promo")
async def apply_promo(
    db: DbDep, payments: PaymentsDep, invoice_id: InvoiceIdPath, body: PromoEntry
) -> dict[str, Any]:
    """The buyer typed a promo code: a new invoice for the same plan and rail at the price
    the code gives, by the same rules as the bot and the API. A code that does not apply is
    422 with its ``reason`` (``promos.service.Refusal``) and changes nothing."""
    invoice = await _open_invoice(db, invoice_id)
    code = normalise(body.code)
    if len(code) > CODE_MAX_LENGTH:  # no such code, without a look-up
        raise PromoRefused(Refusal.UNKNOWN, "there is no promo code that long")
    if invoice.promo_code == code:  # applied already
        return {
            "invoice_id": invoice.id,
            "checkout_url": payments.checkout_url(invoice.id),
        }
    return await _replace(payments, invoice, provider=invoice.provider, promo_code=body.code)


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
