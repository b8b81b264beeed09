from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, StrEnumText, UTCDateTime
from satshare.schemas import PROMO_CODE_MAX_LENGTH

#: The longest promo code: the column's width, and the one limit CODE_PATTERN, the API and
#: the checkout page's field take (a longer entry can never match a code).
CODE_MAX_LENGTH = PROMO_CODE_MAX_LENGTH


class PromoKind(StrEnum):
    PERCENT = "percent"  # value: percent off, 1-100
    FIXED_SATS = "fixed_sats"  # value: sats off
    EXTRA_DAYS = "extra_days"  # value: days added to the period bought


class RedemptionStatus(StrEnum):
    #: Counted against max_uses while the invoice is being created (until reserved_until).
    RESERVED = "reserved"
    INVOICED = "invoiced"  # on an invoice that can still be paid
    USED = "used"  # the invoice settled
    RELEASED = "released"  # the invoice expired unpaid (or was never made): the use is free


class PromoCode(Base):
    __tablename__ = "promo_codes"

    #: Upper case: codes are matched case-insensitively.
    code: Mapped[str] = mapped_column(String(CODE_MAX_LENGTH), primary_key=True)
    kind: Mapped[PromoKind] = mapped_column(StrEnumText(PromoKind, 16))
    value: Mapped[int] = mapped_column(BigInteger)
    #: Plan ids it applies to; NULL: every plan.
    plans: Mapped[list[str] | None] = mapped_column(JSON)
    #: NULL: no limit.
    max_uses: Mapped[int | None] = mapped_column(Integer)
    once_per_user: Mapped[bool] = mapped_column(Boolean, default=True)
    first_purchase_only: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PromoRedemption(Base):
    __tablename__ = "promo_redemptions"
    __table_args__ = (
        Index("ix_promo_redemptions_code_status", "code", "status"),
        Index("ix_promo_redemptions_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(ForeignKey("promo_codes.code"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    plan_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    status: Mapped[RedemptionStatus] = mapped_column(
        StrEnumText(RedemptionStatus, 16), default=RedemptionStatus.RESERVED
    )
    #: The plan's price, the discount, and what the invoice bills (the difference).
    original_sats: Mapped[int] = mapped_column(BigInteger)
    discount_sats: Mapped[int] = mapped_column(BigInteger)
    price_sats: Mapped[int] = mapped_column(BigInteger)
    bonus_days: Mapped[int] = mapped_column(Integer)
    reserved_until: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
