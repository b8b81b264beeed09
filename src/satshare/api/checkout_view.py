"""What the checkout page shows, computed from the invoice and its plan: one of four
states — open (how to pay), confirming (a payment was seen: no way to pay again), paid (the
result, the end date, where to go next; no QR code and no wallet link, so nobody pays twice),
closed (expired or invalid). An open invoice also shows its promo discount and, when the buyer
already has an active subscription, what paying does to it (asked before the QR codes unless
the buyer has said so already). Numbers and dates are formatted for the page's language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from satshare import qr
from satshare.api import texts as web
from satshare.i18n import format_datetime, format_number, translate
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.plans.models import Plan
from satshare.promos.service import Refusal
from satshare.rates.service import source_name
from satshare.subscriptions.service import PurchaseEffect, PurchaseOutlook

STATUS_LABELS = {
    InvoiceStatus.NEW: web.STATUS_NEW,
    InvoiceStatus.PROCESSING: web.STATUS_PROCESSING,
    InvoiceStatus.SETTLED: web.STATUS_SETTLED,
    InvoiceStatus.EXPIRED: web.STATUS_EXPIRED,
    InvoiceStatus.INVALID: web.STATUS_INVALID,
}


#: Why a promo code was refused, as the page says it (the problem's ``reason``).
PROMO_REFUSALS = {
    Refusal.UNKNOWN: web.PROMO_UNKNOWN,
    Refusal.DISABLED: web.PROMO_DISABLED,
    Refusal.NOT_YET: web.PROMO_NOT_YET,
    Refusal.EXPIRED: web.PROMO_EXPIRED,
    Refusal.USED_UP: web.PROMO_USED_UP,
    Refusal.WRONG_PLAN: web.PROMO_WRONG_PLAN,
    Refusal.ALREADY_USED: web.PROMO_ALREADY_USED,
    Refusal.FIRST_PURCHASE_ONLY: web.PROMO_FIRST_PURCHASE_ONLY,
}


@dataclass(frozen=True)
class TelegramLinks:
    #: "Back to the bot": the bot in Telegram, the sandbox chat, or nowhere (no bot running).
    back: str | None
    sandbox: bool
    #: Channel links are shared join-request links (else personal, sent only by the bot).
    join_request: bool


def clock(seconds: int) -> str:
    """A countdown as mm:ss (h:mm:ss from an hour up)."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


@dataclass
class CheckoutView:
    language: str
    invoice: Invoice
    plan: Plan
    ends_at: datetime | None
    seconds_left: int
    #: The plan's title and description in the page's language (plans[].translations).
    title: str
    description: str

    @property
    def state(self) -> Literal["open", "confirming", "paid", "closed"]:
        if self.invoice.status == InvoiceStatus.SETTLED:
            return "paid"
        if self.invoice.status == InvoiceStatus.PROCESSING:
            return "confirming"
        if self.invoice.status in (InvoiceStatus.EXPIRED, InvoiceStatus.INVALID):
            return "closed"
        return "open"

    def t(self, message: str, **values: object) -> str:
        return translate(self.language, message, **values)

    def summary(self) -> dict[str, Any]:
        """What every state shows: amount, price (with a promo code's discount and extra
        days), status, time left."""
        invoice = self.invoice
        discount = None
        if invoice.promo_code and invoice.discount_sats:
            discount = self.t(
                web.PROMO_DISCOUNT,
                original=format_number(self.language, invoice.original_sats or invoice.amount_sats),
                code=invoice.promo_code,
                discount=format_number(self.language, invoice.discount_sats),
            )
        return {
            "state": self.state,
            "title": self.title,
            "description": self.description,
            "discount": discount,
            "bonus_days": translate(self.language, web.PROMO_BONUS_DAYS, count=invoice.bonus_days)
            if invoice.bonus_days
            else None,
            "amount": format_number(self.language, self.invoice.amount_sats),
            "rate_source": self.rate_source(),
            "status_labels": {k: self.t(v) for k, v in STATUS_LABELS.items()},
            "seconds_left": self.seconds_left,
            "clock": clock(self.seconds_left),
            "expires_at": format_datetime(self.language, self.invoice.expires_at),
        }

    def rate_source(self) -> str | None:
        """The rate's real source; in the sandbox, that it came from an emulator."""
        if not self.invoice.rate_source:
            return None
        name, emulated = source_name(self.invoice.rate_source)
        return self.t(web.RATE_SANDBOX, source=name) if emulated else name

    def outlook(
        self, outlook: PurchaseOutlook, *, ask: bool, title_of: Callable[[Plan], str]
    ) -> dict[str, Any] | None:
        """What paying does to the buyer's active subscriptions (None: they have none).
        ``ask``: the QR codes wait for "Continue to payment"."""
        if outlook.effect == PurchaseEffect.NEW:
            return None

        def channels(count: int) -> str:
            if not count:
                return self.t(web.OUTLOOK_NO_CHANNELS)
            return translate(self.language, web.OUTLOOK_CHANNELS, count=count)

        def when(moment: datetime) -> str:
            return format_datetime(self.language, moment)

        shown: dict[str, Any] = {"effect": outlook.effect.value, "ask": ask, "held": []}
        if outlook.effect == PurchaseEffect.EXTEND:
            shown["text"] = translate(
                self.language,
                web.OUTLOOK_EXTEND,
                plan=title_of(outlook.plan),
                until=when(outlook.held[0].ends_at),
                count=outlook.days,
                new_until=when(outlook.ends_at),
            )
            return shown
        shown["held"] = [
            self.t(
                web.OUTLOOK_HELD_LINE,
                plan=title_of(held.plan),
                until=when(held.ends_at),
                channels=channels(len(held.plan.channels)),
            )
            for held in outlook.held
        ]
        shown["text"] = translate(
            self.language,
            web.OUTLOOK_ALONGSIDE,
            plan=title_of(outlook.plan),
            count=outlook.days,
            until=when(outlook.ends_at),
            channels=channels(len(outlook.plan.channels)),
        )
        if outlook.shared_channels:
            shown["shared"] = translate(
                self.language, web.OUTLOOK_SHARED, count=len(outlook.shared_channels)
            )
        return shown

    def promo_reasons(self) -> dict[str, str]:
        """Each refusal's words, for the page's script."""
        return {reason.value: self.t(text) for reason, text in PROMO_REFUSALS.items()}

    def payment(self) -> dict[str, Any]:
        """The open invoice: QR codes and wallet links for each way to pay."""
        invoice = self.invoice
        bip21 = qr.bip21(invoice.address, invoice.amount_sats) if invoice.address else None
        bolt11 = invoice.payment_request
        return {
            "bip21": bip21,
            "ln_qr": qr.svg(qr.lightning_uri(bolt11), self.t(web.LIGHTNING)) if bolt11 else None,
            "chain_qr": qr.svg(bip21, self.t(web.ON_CHAIN)) if bip21 else None,
        }

    def paid(self, telegram: TelegramLinks, shared: dict[int, str | None]) -> dict[str, Any]:
        """The result: until when, what was paid, the way back and into the channels.

        ``shared`` holds each channel's join-request link, if the bot has made one."""
        channels = self.plan.channels
        named = [
            self.title
            if len(channels) == 1
            else self.t(web.CHANNEL_NUMBERED, plan=self.title, number=number)
            for number in range(1, len(channels) + 1)
        ]
        links: list[tuple[str, str | None]] = []
        note: str | None = None
        if not channels:
            note = web.NO_CHANNELS
        elif telegram.sandbox:
            note = web.CHANNELS_IN_SANDBOX  # t.me links would leave the sandbox
        elif telegram.join_request and all(shared.get(chat) for chat in channels):
            links = [(label, shared[chat]) for label, chat in zip(named, channels, strict=True)]
        else:
            note = web.CHANNELS_IN_BOT  # personal links: only the bot hands them out
        return {
            "ends_at": format_datetime(self.language, self.ends_at) if self.ends_at else None,
            "paid_amount": format_number(self.language, self.invoice.paid_sats or 0),
            "channels": links,
            "channels_note": note,
        }
