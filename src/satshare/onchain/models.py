from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, UTCDateTime


class OnchainAddress(Base):
    """One derived receive address per on-chain invoice; an index is never handed out twice."""

    __tablename__ = "onchain_addresses"
    __table_args__ = (UniqueConstraint("wallet_id", "address_index"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    wallet_id: Mapped[str] = mapped_column(String(32))
    address_index: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(100), unique=True)
    invoice_ref: Mapped[str] = mapped_column(String(40), unique=True)
    amount_sats: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When money to it was first seen: it then counts as used for the gap limit.
    funded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
