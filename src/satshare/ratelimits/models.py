from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base


class RateLimitCounter(Base):
    """One window's counter of the ``limits`` library (its key names the limit, the client
    and the window). Rows past ``expires_at`` count as absent and are purged by the
    housekeeping job."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    #: Unix time (seconds), as the library reckons expiry.
    expires_at: Mapped[float] = mapped_column(Float, index=True)
