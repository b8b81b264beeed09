from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, StrEnumText, UTCDateTime


class Role(StrEnum):
    """owner: everything; manager: everything but admin users and API keys; support: reads
    everything, resends access links, extends a subscription by up to 7 days."""

    OWNER = "owner"
    MANAGER = "manager"
    SUPPORT = "support"


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(StrEnumText(Role, 16))
    #: argon2id, in the PHC string format (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Failed logins since the last success; the fifth locks the account until locked_until.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set to sandbox-only accounts created at start-up in sandbox mode.
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
