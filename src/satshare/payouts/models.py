"""Payouts to affiliates and where each affiliate wants to be paid."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, StrEnumText, UTCDateTime


class PayoutStatus(StrEnum):
    """awaiting_approval → approved → sending → paid | failed | unknown; unknown → paid | failed
    (only the reconciler decides, by asking the provider, or an admin marks it failed);
    canceled before sending."""

    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    SENDING = "sending"
    UNKNOWN = "unknown"
    PAID = "paid"
    FAILED = "failed"
    CANCELED = "canceled"


#: The amount is still held for the payout.
OPEN_STATUSES = frozenset(
    {
        PayoutStatus.AWAITING_APPROVAL,
        PayoutStatus.APPROVED,
        PayoutStatus.SENDING,
        PayoutStatus.UNKNOWN,
    }
)
FINAL_STATUSES = frozenset(PayoutStatus) - OPEN_STATUSES


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (
        Index("ix_payouts_status_id", "status", "id"),
        Index("ix_payouts_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: Taken from the affiliate's balance (held from the request on).
    amount_sats: Mapped[int] = mapped_column(BigInteger)
    #: The flat fee the affiliate pays under the fee policy (0: the owner pays the fee).
    fee_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: What reaches the destination: amount_sats - fee_sats.
    send_sats: Mapped[int] = mapped_column(BigInteger)
    #: The routing or mining fee the provider actually charged (the owner's expense).
    network_fee_sats: Mapped[int | None] = mapped_column(BigInteger)
    destination_kind: Mapped[str] = mapped_column(String(24))
    destination: Mapped[str] = mapped_column(Text)
    #: The BOLT11 actually paid (for LNURL and Lightning Address: fetched before paying) and
    #: its payment hash, by which the provider is asked about it after a timeout.
    payment_request: Mapped[str | None] = mapped_column(Text)
    payment_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[PayoutStatus] = mapped_column(StrEnumText(PayoutStatus, 20))
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    #: Lightning preimage or on-chain txid.
    proof: Mapped[str | None] = mapped_column(Text)
    failure: Mapped[str | None] = mapped_column(Text)
    #: Sent at settlement time (payouts.instant_lightning), not requested by the affiliate.
    instant: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the provider is next asked about this payout (unknown ones, with backoff; failed
    #: ones an admin released are watched a while for a late "paid"). NULL: nothing to ask.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: How many times the provider has been asked (drives the backoff).
    checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: When admins were alerted that this payout has stayed unknown too long.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PayoutDestination(Base):
    """An affiliate's saved destination, used by the bot's Withdraw and instant splits."""

    __tablename__ = "payout_destinations"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
