"""Tables of the Telegram adapter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, UTCDateTime


class ProcessedUpdate(Base):
    """Telegram update ids already handled: an update delivered twice has one effect."""

    __tablename__ = "telegram_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
