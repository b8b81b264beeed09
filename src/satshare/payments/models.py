from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, StrEnumText, UTCDateTime
from satshare.schemas import PROMO_CODE_MAX_LENGTH


class InvoiceStatus(StrEnum):
    """Our invoice's state (the processor's own status is kept beside it).

    Not ``payments.ports.InvoiceState``: that is what a processor can report, and a processor
    never reports the refund states, which only we reach. The shared states have the same
    values, so an observed state is stored as ``InvoiceStatus(observed.state)``.
    """

    NEW = "new"
    PROCESSING = "processing"  # paid in full, not yet confirmed
    SETTLED = "settled"
    EXPIRED = "expired"
    INVALID = "invalid"
    REFUNDING = "refunding"  # a Stars refund is under way
    REFUNDED = "refunded"


#: Invoices that can still be paid.
OPEN_STATUSES = frozenset({InvoiceStatus.NEW, InvoiceStatus.PROCESSING})


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("provider", "provider_invoice_id"),
        Index("ix_invoices_status_expires_at", "status", "expires_at"),
        Index("ix_invoices_subscription_id", "subscription_id"),
        Index("ix_invoices_user_id", "user_id"),
        Index("ix_invoices_next_check_at", "next_check_at"),
    )

    # A random public id: it appears in checkout URLs, so it must not be guessable.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_invoice_id: Mapped[str] = mapped_column(String(128))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    amount_sats: Mapped[int] = mapped_column(BigInteger)
    paid_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: SAT for the bitcoin rails; XTR for Telegram Stars (then amount_stars holds the price).
    currency: Mapped[str] = mapped_column(String(3), default="SAT", server_default="SAT")
    amount_stars: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[InvoiceStatus] = mapped_column(
        StrEnumText(InvoiceStatus, 16), default=InvoiceStatus.NEW
    )
    provider_status: Mapped[str] = mapped_column(String(32), default="New")
    provider_additional_status: Mapped[str] = mapped_column(String(32), default="None")
    checkout_link: Mapped[str | None] = mapped_column(Text)
    #: For fiat-priced plans: the price and the rate it was converted at, locked on the invoice.
    fiat_amount: Mapped[str | None] = mapped_column(String(32))
    fiat_currency: Mapped[str | None] = mapped_column(String(3))
    rate: Mapped[str | None] = mapped_column(String(40))
    rate_source: Mapped[str | None] = mapped_column(String(16))
    rate_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payment_request: Mapped[str | None] = mapped_column(Text)  # BOLT11
    address: Mapped[str | None] = mapped_column(String(128))  # on-chain
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the reconciler next re-fetches this invoice (NULL: at its next run). It walks
    #: every open invoice by this, so none is starved however large the backlog.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: With a promo code: the plan's price before it, the discount and the code
    #: (``amount_sats`` is what is billed, and what the split and reports use).
    original_sats: Mapped[int | None] = mapped_column(BigInteger)
    discount_sats: Mapped[int | None] = mapped_column(BigInteger)
    promo_code: Mapped[str | None] = mapped_column(String(PROMO_CODE_MAX_LENGTH))
    #: Days added to the plan's period when it settles (a promo code's, a referee bonus).
    bonus_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Payment(Base):
    """The proof that an invoice was paid; at most one per invoice."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    amount_sats: Mapped[int] = mapped_column(BigInteger)  # the sale (invoice amount)
    received_sats: Mapped[int] = mapped_column(BigInteger)  # what actually arrived
    overpaid_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_late: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Lightning preimage or on-chain txid, as the processor reported it.
    proof: Mapped[str | None] = mapped_column(Text)
    ledger_entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    settled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """Inbox of processor notifications, unique per (provider, invoice, event type).

    BTCPay gives every redelivery a new deliveryId, so deduplicating on that alone would
    let a redelivered event act twice.
    """

    __tablename__ = "webhook_inbox"
    __table_args__ = (UniqueConstraint("provider", "provider_invoice_id", "event_type"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_invoice_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(32))
