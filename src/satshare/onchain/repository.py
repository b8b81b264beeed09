"""The watch-only wallet's address rows: queries."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.onchain.models import OnchainAddress


async def last_index(session: AsyncSession, wallet_id: str, *, funded: bool = False) -> int | None:
    """The highest address index handed out for the wallet (only funded ones: ``funded``)."""
    query = select(func.max(OnchainAddress.address_index)).where(
        OnchainAddress.wallet_id == wallet_id
    )
    if funded:
        query = query.where(OnchainAddress.funded_at.is_not(None))
    return (await session.execute(query)).scalar_one()


async def by_address(session: AsyncSession, address: str) -> OnchainAddress | None:
    result = await session.execute(select(OnchainAddress).where(OnchainAddress.address == address))
    return result.scalar_one_or_none()
