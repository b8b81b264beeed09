"""Tables of the outgoing webhooks: endpoints, messages (the outbox), deliveries, attempts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, StrEnumText, UTCDateTime


class EventType(StrEnum):
    USER_CREATED = "user.created"
    SUBSCRIPTION_ACTIVATED = "subscription.activated"
    SUBSCRIPTION_RENEWED = "subscription.renewed"
    SUBSCRIPTION_EXPIRED = "subscription.expired"
    SUBSCRIPTION_CANCELED = "subscription.canceled"
    PAYMENT_SETTLED = "payment.settled"
    PAYMENT_REFUNDED = "payment.refunded"
    COMMISSION_EARNED = "commission.earned"
    COMMISSION_CLAWED_BACK = "commission.clawed_back"
    PAYOUT_REQUESTED = "payout.requested"
    PAYOUT_PAID = "payout.paid"
    PAYOUT_FAILED = "payout.failed"
    #: Sent only by the test button/endpoint, only to that endpoint.
    TEST = "webhook.test"


#: What an endpoint may subscribe to (``*``: all of them).
SUBSCRIBABLE = tuple(t.value for t in EventType if t is not EventType.TEST)
ALL_EVENTS = "*"


class DeliveryStatus(StrEnum):
    """pending → sending → delivered | pending (retry) | failed (24 h of retries, given up)."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    #: Event types, or ["*"] for every type.
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: whsec_<base64>: the HMAC key, kept to sign (it is shown to the owner only once).
    secret: Mapped[str] = mapped_column(String(100))
    #: After a rotation the old secret signs too until this time, so receivers can switch.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set when a delivery was given up after 24 h of retries; cleared by the next success.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookMessage(Base):
    """One event, as it will be sent: the body is stored as text so that every attempt signs
    and sends the very same bytes."""

    __tablename__ = "webhook_messages"
    __table_args__ = (Index("ix_webhook_messages_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The ``webhook-id`` header: the same on every retry and replay (receivers dedupe on it).
    msg_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    #: The writer's key: an event is recorded once even if its writer runs twice.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EndpointDelivery(Base):
    """A message to one endpoint."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "message_id"),
        Index("ix_webhook_deliveries_endpoint_status", "endpoint_id", "status", "id"),
        # A message's deliveries, for the purge (and the cascade when it deletes messages).
        Index("ix_webhook_deliveries_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("webhook_messages.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(
        StrEnumText(DeliveryStatus, 16), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When the next attempt is due; while ``sending``, when the sender's lease ends.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Retries go on for 24 h from here (the creation, or the last manual replay).
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeliveryAttempt(Base):
    """The delivery log: one row per HTTP attempt."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The HTTP status, or None when no answer came (refused, timed out, cut).
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    #: The start of the answer's body, or what went wrong.
    response_snippet: Mapped[str] = mapped_column(String(500), default="")
    error: Mapped[str | None] = mapped_column(String(500))
