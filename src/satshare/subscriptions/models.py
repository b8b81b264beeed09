from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, StrEnumText, UTCDateTime


class SubscriptionStatus(StrEnum):
    PENDING = "pending"  # created, never paid
    ACTIVE = "active"
    EXPIRED = "expired"
    CANCELED = "canceled"


class Subscription(Base):
    """One row per (user, plan): renewals extend it, they never create a second one."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("user_id", "plan_id"),
        Index("ix_subscriptions_status_ends_at", "status", "ends_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"))
    status: Mapped[SubscriptionStatus] = mapped_column(
        StrEnumText(SubscriptionStatus, 16), default=SubscriptionStatus.PENDING
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Payments settled for it (refunded ones too): a payment is a renewal when this was
    #: not 0 before it (the dashboard's new vs renewals).
    payments: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: What its last bitcoin payment billed (the dashboard's MRR); NULL: none yet.
    last_paid_sats: Mapped[int | None] = mapped_column(BigInteger)


# Paid time running out in a period (the dashboard's churn): counted from the index alone.
Index(
    "ix_subscriptions_ends_at",
    Subscription.ends_at,
    postgresql_where=Subscription.started_at.is_not(None),
    sqlite_where=Subscription.started_at.is_not(None),
)
