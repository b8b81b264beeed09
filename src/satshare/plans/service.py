"""Plans: synced from configuration at start-up; removed plans are retired, never deleted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import InvalidRequest
from satshare.plans import repository
from satshare.plans.models import Plan


@dataclass(frozen=True, slots=True)
class PlanSpec:
    id: str
    title: str
    description: str
    price_sats: int | None
    duration_days: int
    channels: tuple[int, ...]
    providers: tuple[str, ...] | None = None
    fiat_amount: str | None = None
    fiat_currency: str | None = None
    price_stars: int | None = None
    trial_days: int = 0


async def sync(session: AsyncSession, specs: Sequence[PlanSpec], now: datetime) -> None:
    existing = {p.id: p for p in await repository.all_plans(session)}
    wanted = {spec.id for spec in specs}
    for spec in specs:
        plan = existing.get(spec.id)
        if plan is None:
            plan = Plan(id=spec.id)
            session.add(plan)
        plan.title = spec.title
        plan.description = spec.description
        plan.price_sats = spec.price_sats
        plan.fiat_amount = spec.fiat_amount
        plan.fiat_currency = spec.fiat_currency
        plan.price_stars = spec.price_stars
        plan.duration_days = spec.duration_days
        plan.trial_days = spec.trial_days
        plan.channels = list(spec.channels)
        plan.providers = list(spec.providers) if spec.providers else None
        plan.active = True
        plan.updated_at = now
    for plan_id, plan in existing.items():
        if plan_id not in wanted and plan.active:
            plan.active = False
            plan.updated_at = now
    await session.flush()


async def list_active(session: AsyncSession) -> Sequence[Plan]:
    return await repository.list_active(session)


async def get(session: AsyncSession, plan_id: str) -> Plan | None:
    return await session.get(Plan, plan_id)


async def require_purchasable(session: AsyncSession, plan_id: str) -> Plan:
    plan = await session.get(Plan, plan_id)
    if plan is None or not plan.active:
        available = ", ".join(p.id for p in await list_active(session)) or "none configured"
        raise InvalidRequest(
            f"unknown subscription_type {plan_id!r}; available: {available}",
            field="subscription_type",
        )
    return plan
