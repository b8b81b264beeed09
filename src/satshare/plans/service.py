"""Plans: synced from configuration at start-up (``source = config``) or made in the admin
panel (``source = panel``); the sync touches only config plans. Plans are retired (archived),
never deleted, so every subscription keeps its plan."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.plans import repository
from satshare.plans.models import Plan, PlanSource

#: Ids of plans made in the panel (they appear in API calls as subscription_type).
_PLAN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


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
    """Make the config plans match ``specs``; plans made in the admin panel are left alone
    (a config plan may not take a panel plan's id)."""
    every = {p.id: p for p in await repository.all_plans(session)}
    taken = sorted(
        spec.id for spec in specs if spec.id in every and every[spec.id].source != PlanSource.CONFIG
    )
    if taken:
        raise Conflict(
            f"plan {taken[0]!r} in the configuration has the id of a plan made in the admin "
            "panel; give the config plan another id"
        )
    existing = {k: p for k, p in every.items() if p.source == PlanSource.CONFIG}
    wanted = {spec.id for spec in specs}
    for spec in specs:
        plan = existing.get(spec.id)
        if plan is None:
            plan = Plan(id=spec.id, source=PlanSource.CONFIG)
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


async def list_all(session: AsyncSession) -> Sequence[Plan]:
    """Every plan, on sale or archived, config and panel alike."""
    return await repository.list_all(session)


def _panel_fields(plan: Plan, spec: PlanSpec, now: datetime) -> None:
    if not spec.title.strip() or len(spec.title) > 200:
        raise InvalidRequest("the title must be 1 to 200 characters", field="title")
    if spec.price_sats is None or not 1 <= spec.price_sats <= 2_100_000_000_000_000:
        raise InvalidRequest("the price must be a whole number of sats, at least 1", field="price")
    if not 1 <= spec.duration_days <= 3650:
        raise InvalidRequest("the duration must be 1 to 3650 days", field="duration_days")
    plan.title = spec.title.strip()
    plan.description = spec.description
    plan.price_sats = spec.price_sats
    plan.duration_days = spec.duration_days
    plan.channels = list(spec.channels)
    plan.updated_at = now


async def create_panel_plan(session: AsyncSession, spec: PlanSpec, now: datetime) -> Plan:
    """A plan made in the admin panel, on sale at once (priced in sats)."""
    if not _PLAN_ID.fullmatch(spec.id):
        raise InvalidRequest(
            "the plan id must be 1 to 64 characters: lower-case letters, digits and '-'",
            field="id",
        )
    if await session.get(Plan, spec.id) is not None:
        raise Conflict(f"a plan with the id {spec.id!r} exists; choose another id", field="id")
    plan = Plan(
        id=spec.id,
        source=PlanSource.PANEL,
        active=True,
        fiat_amount=None,
        fiat_currency=None,
        price_stars=None,
        providers=None,
    )
    _panel_fields(plan, spec, now)
    session.add(plan)
    await session.flush()
    return plan


async def require_panel_plan(session: AsyncSession, plan_id: str) -> Plan:
    plan = await session.get(Plan, plan_id, with_for_update=True)
    if plan is None:
        raise NotFound(f"plan {plan_id!r} does not exist")
    if plan.source != PlanSource.PANEL:
        raise Conflict(
            f"plan {plan_id!r} comes from satshare.yaml: change it there (it is read-only here)"
        )
    return plan


async def update_panel_plan(session: AsyncSession, spec: PlanSpec, now: datetime) -> Plan:
    plan = await require_panel_plan(session, spec.id)
    _panel_fields(plan, spec, now)
    await session.flush()
    return plan


async def set_panel_plan_on_sale(
    session: AsyncSession, plan_id: str, on_sale: bool, now: datetime
) -> Plan:
    """Archive (take off sale) or restore a panel plan; it is never deleted."""
    plan = await require_panel_plan(session, plan_id)
    plan.active = on_sale
    plan.updated_at = now
    await session.flush()
    return plan
