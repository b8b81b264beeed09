from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, UTCDateTime

PLATFORMS = ("telegram", "discord", "website", "api")
LANGUAGES = ("en", "ru")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        CheckConstraint("referrer_id IS NULL OR referrer_id <> id", name="not_self_referred"),
        Index("ix_users_referrer_id", "referrer_id"),
        Index("ix_users_created_at", "created_at"),  # registrations in a period
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(128))
    username: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    # Set once at registration, never changed, never oneself (enforced by the check above).
    referrer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Set when Telegram answered 403 (the user blocked the bot): nothing more is sent.
    unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The name shown on the affiliate leaderboard; NULL: anonymous (showing it is opt-in).
    leaderboard_name: Mapped[str | None] = mapped_column(String(32))


class ReferralCount(Base):
    """How many users a user referred and how often their link was opened: counted as each
    happens, so an affiliate's funnel reads one row however big it grows."""

    __tablename__ = "referral_counts"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    registered: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
