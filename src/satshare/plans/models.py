from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, StrEnumText, UTCDateTime


class PlanSource(StrEnum):
    """Where a plan is defined: the config file (synced at start-up, read-only in the admin
    panel) or the admin panel (editable there; start-up sync never touches it)."""

    CONFIG = "config"
    PANEL = "panel"


class Plan(Base):
    """A subscription type: synced from the ``plans:`` config section at start-up, or created
    in the admin panel."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: A sats price, or NULL when priced in fiat (converted when an invoice is made).
    price_sats: Mapped[int | None] = mapped_column(BigInteger)
    fiat_amount: Mapped[str | None] = mapped_column(String(32))
    fiat_currency: Mapped[str | None] = mapped_column(String(3))
    #: Price in Telegram Stars (sold inside the bot), if the plan has one.
    price_stars: Mapped[int | None] = mapped_column(Integer)
    duration_days: Mapped[int] = mapped_column(Integer)
    #: A free trial of this many days, once per person (0: none).
    trial_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channels: Mapped[list[int]] = mapped_column(JSON, default=list)
    #: Rails this plan may be paid with; NULL: every enabled rail.
    providers: Mapped[list[str] | None] = mapped_column(JSON)
    # Plans removed from the config stay for history but can no longer be bought.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[PlanSource] = mapped_column(
        StrEnumText(PlanSource, 8), default=PlanSource.CONFIG
    )
