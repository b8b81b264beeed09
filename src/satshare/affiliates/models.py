"""Affiliate terms: custom shares set by an admin (versioned), suspensions, and acceptance of
the affiliate terms text. Rows are only ever added (a suspension is lifted by a timestamp)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, UTCDateTime


class AffiliateTerms(Base):
    """A custom share for one affiliate; the newest version applies. NULL share: back to the
    level-based terms."""

    __tablename__ = "affiliate_terms"
    __table_args__ = (UniqueConstraint("user_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    share_bps: Mapped[int | None] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AffiliateSuspension(Base):
    __tablename__ = "affiliate_suspensions"
    __table_args__ = (Index("ix_affiliate_suspensions_user_open", "user_id", "lifted_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    suspended_by: Mapped[str] = mapped_column(String(64))
    suspended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(64))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TermsAcceptance(Base):
    __tablename__ = "affiliate_terms_acceptances"
    __table_args__ = (UniqueConstraint("user_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReferralClick(Base):
    """Someone opened an affiliate's link (the bot's /start ref_<code>, or a click reported
    by another platform): the top of the affiliate's funnel."""

    __tablename__ = "referral_clicks"
    __table_args__ = (
        Index("ix_referral_clicks_affiliate_time", "affiliate_user_id", "created_at"),
        Index("ix_referral_clicks_created_at", "created_at"),  # clicks in a period
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    affiliate_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
