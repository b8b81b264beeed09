from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, StrEnumText, UTCDateTime


class BroadcastStatus(StrEnum):
    DRAFT = "draft"  # composed; the recipient count is known, nothing sent
    SCHEDULED = "scheduled"  # send requested for send_at
    SENDING = "sending"  # recipients chosen, delivery under way (or resuming)
    DONE = "done"  # every recipient was tried
    CANCELED = "canceled"  # stopped: the recipients still pending get nothing


class RecipientStatus(StrEnum):
    PENDING = "pending"
    #: Claimed by a sender that is about to hand it to Telegram. A sender that dies here
    #: leaves it so; the next sender marks it failed rather than risk sending it twice.
    SENDING = "sending"
    SENT = "sent"
    BLOCKED = "blocked"  # 403: the user blocked the bot (now marked unreachable)
    FAILED = "failed"


class Broadcast(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status_send_at", "status", "send_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: Telegram HTML; ``text_ru`` (optional) goes to users whose language is Russian.
    text: Mapped[str] = mapped_column(Text)
    text_ru: Mapped[str | None] = mapped_column(Text)
    #: A photo (an https URL or a Telegram file_id) sent with the text as its caption.
    photo: Mapped[str | None] = mapped_column(Text)
    #: URL buttons: [{"text": ..., "url": ..., "text_ru": ...}], one per row.
    buttons: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    #: {"kind": ..., "plan_id"?: ..., "days"?: ..., "language"?: ...} (see ``segments``).
    segment: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[BroadcastStatus] = mapped_column(
        StrEnumText(BroadcastStatus, 16), default=BroadcastStatus.DRAFT
    )
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The recipient count when composed, then the number of recipient rows once sending.
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: One sender at a time per broadcast: who holds it and until when (renewed as it sends).
    sender: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BroadcastRecipient(Base):
    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "user_id"),
        Index("ix_broadcast_recipients_status", "broadcast_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[RecipientStatus] = mapped_column(
        StrEnumText(RecipientStatus, 16), default=RecipientStatus.PENDING
    )
    #: Not before this moment (after a 429 or a network error).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
