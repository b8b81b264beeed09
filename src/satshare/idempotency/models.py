from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, UTCDateTime


class IdempotencyRecord(Base):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed for repeats."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)  # NULL while in flight
    content_type: Mapped[str | None] = mapped_column(String(100))
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When the request now running under this key started (a retry takes over a claim
    #: older than the request timeout: its holder died).
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set in the same transaction as any write the request committed: a retry after a crash
    #: runs again only when this is NULL (nothing was committed).
    effect_committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
