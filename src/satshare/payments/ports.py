"""What the payments domain needs from a payment processor (adapters live in ``providers/``)
and from Telegram to return Stars (the bot implements ``StarsRefunds``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class InvoiceState(StrEnum):
    NEW = "new"
    PROCESSING = "processing"  # paid in full, not yet confirmed
    SETTLED = "settled"
    EXPIRED = "expired"
    INVALID = "invalid"


class InvoiceFlag(StrEnum):
    NONE = "none"
    PAID_PARTIAL = "paid_partial"
    PAID_OVER = "paid_over"
    PAID_LATE = "paid_late"
    MARKED = "marked"  # settled by hand at the processor


@dataclass(frozen=True, slots=True)
class InvoiceOrder:
    """What we ask a processor to bill."""

    reference: str  # our invoice id, sent as orderId
    amount_sats: int
    description: str
    expiration_minutes: int
    metadata: Mapping[str, str | int] = field(default_factory=dict)
    #: Where to notify us, for processors that take a webhook URL per invoice (LNbits).
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderInvoice:
    """The processor's view of an invoice, normalised. Amounts in sats."""

    provider: str
    provider_invoice_id: str
    state: InvoiceState
    flag: InvoiceFlag
    amount_sats: int
    paid_sats: int
    confirmed_paid_sats: int
    expires_at: datetime
    raw_status: str
    raw_additional_status: str
    checkout_link: str | None = None
    payment_request: str | None = None
    address: str | None = None
    #: Proof of payment kept with the payment: a Lightning preimage or an on-chain txid.
    proof: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookNotice:
    """A verified notification: only a trigger to re-fetch the invoice, never the truth."""

    provider_invoice_id: str
    event_type: str
    delivery_id: str | None
    #: The event says the invoice is settled (BTCPay InvoiceSettled, an LNbits payment, a
    #: BitPay confirmed IPN). If the re-fetch does not show it yet, the delivery is not
    #: acknowledged: the processor sends it again and we look again.
    claims_settlement: bool = False


class ProviderError(Exception):
    """The processor failed or could not be reached; nothing has been written."""


class InvoiceGone(ProviderError):
    """The processor no longer knows the invoice (deleted, or a restarted sandbox)."""


class PaymentProvider(Protocol):
    name: str

    async def create_invoice(self, order: InvoiceOrder) -> ProviderInvoice: ...

    async def fetch_invoice(self, provider_invoice_id: str) -> ProviderInvoice: ...

    def verify_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> bool:
        """Authenticate a notification on its raw bytes, before anything is parsed or written."""
        ...

    def parse_webhook(self, raw_body: bytes) -> WebhookNotice | None:
        """None for events that are not about an invoice we track (ignored with 200)."""
        ...


class StarsRefunds(Protocol):
    """Returns a Telegram Stars payment to the buyer (the Bot API's ``refundStarPayment``).
    The running bot implements it; the API and the admin panel reach it through the same
    refund flow (``payments.flows.refund``)."""

    async def refund_star_payment(self, telegram_user_id: int, charge_id: str) -> None:
        """Done, also when Telegram says the charge was refunded already (a retry after a
        crash). Raises ``errors.Conflict`` when Telegram refuses, ``errors.ServiceUnavailable``
        when it does not answer."""
        ...
