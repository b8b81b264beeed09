from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, StrEnumText, UTCDateTime


class Channel(StrEnum):
    """Where an action came from."""

    PANEL = "panel"
    API = "api"
    CLI = "cli"


class AuditEvent(Base):
    """One state-changing action. Never updated or deleted (triggers refuse it)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_created_at", "created_at"),
        Index("ix_audit_events_action", "action"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[Channel] = mapped_column(StrEnumText(Channel, 8))
    #: Who: an admin user name, ``api-key:<id>:<name>`` or ``cli:<os user>``.
    actor: Mapped[str] = mapped_column(String(128))
    #: The admin role (owner, manager, support); the scope for API keys; empty for the CLI.
    role: Mapped[str] = mapped_column(String(16), default="")
    #: What, as ``<object>.<verb>`` (``payout.approve``, ``plan.create``...).
    action: Mapped[str] = mapped_column(String(64))
    #: Which object: ``payout:12``, ``plan:gold``, ``api-key:3``...
    target: Mapped[str] = mapped_column(String(128), default="")
    before: Mapped[dict[str, object] | None] = mapped_column(JSON)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
