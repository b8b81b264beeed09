"""Payout SQL for the figures operators watch (the sender's own queries stay in service.py
until issue #9 moves them here)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.payouts.models import Payout, PayoutStatus


@dataclass(frozen=True, slots=True)
class StateTotal:
    count: int
    sats: int


async def totals_by_state(session: AsyncSession) -> dict[PayoutStatus, StateTotal]:
    """How many payouts are in each state and their amounts, every state present."""
    rows = await session.execute(
        select(
            Payout.status, func.count(), func.coalesce(func.sum(Payout.amount_sats), 0)
        ).group_by(Payout.status)
    )
    totals = {state: StateTotal(0, 0) for state in PayoutStatus}
    for status, count, sats in rows.all():
        totals[PayoutStatus(status)] = StateTotal(int(count), int(sats))
    return totals
