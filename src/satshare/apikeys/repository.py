"""API keys' queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.apikeys.models import ApiKey


async def live_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    result = await session.execute(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )
    return result.scalar_one_or_none()


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    return (await session.execute(select(ApiKey).order_by(ApiKey.id))).scalars().all()


async def by_id_or_prefix(session: AsyncSession, reference: str) -> Sequence[ApiKey]:
    """Keys whose displayed prefix is ``reference``, or whose id it is (when all digits)."""
    condition = ApiKey.display_prefix == reference
    if reference.isdigit():
        condition = or_(condition, ApiKey.id == int(reference))
    return (await session.execute(select(ApiKey).where(condition))).scalars().all()


async def live_named(session: AsyncSession, name: str) -> Sequence[ApiKey]:
    result = await session.execute(
        select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
    )
    return result.scalars().all()
