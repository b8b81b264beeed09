"""Who was let into which private channel or group, so access can be withdrawn on expiry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, UTCDateTime

#: granted: a one-use link was issued; member: approved or known to have joined;
#: removed: taken out after the subscription ended (they may come back after renewing).
ACCESS_STATUSES = ("granted", "member", "removed")


class ChannelAccess(Base):
    __tablename__ = "channel_access"
    __table_args__ = (
        UniqueConstraint("user_id", "chat_id"),
        Index("ix_channel_access_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    invite_link: Mapped[str | None] = mapped_column(Text)
    link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChannelLink(Base):
    """The shared join-request link of a channel (join_request mode)."""

    __tablename__ = "channel_links"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    invite_link: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
