"""All trial SQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.trials.models import Trial


async def taken(session: AsyncSession, person: str, plan_id: str) -> bool:
    result = await session.execute(
        select(Trial.id).where(Trial.person == person, Trial.plan_id == plan_id)
    )
    return result.first() is not None


async def add(session: AsyncSession, trial: Trial) -> None:
    session.add(trial)
    await session.flush()
