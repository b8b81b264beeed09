from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, UTCDateTime


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("person", "plan_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: Who, across re-registrations: "<platform>:<external id>", or "user:<id>" without one.
    person: Mapped[str] = mapped_column(String(160))
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
