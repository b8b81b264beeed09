"""Plans' queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.plans.models import Plan


async def all_plans(session: AsyncSession) -> Sequence[Plan]:
    """Every plan, retired ones included."""
    return (await session.execute(select(Plan))).scalars().all()


async def list_active(session: AsyncSession) -> Sequence[Plan]:
    result = await session.execute(select(Plan).where(Plan.active.is_(True)).order_by(Plan.id))
    return result.scalars().all()
