"""Plan reads, the start-up sync and the panel's plan changes (each with its audit row),
each in its own unit of work (for the adapters)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from satshare.audit.flows import Actor, audited
from satshare.db import Database
from satshare.plans import repository, service
from satshare.plans.models import Plan


async def get(db: Database, plan_id: str) -> Plan | None:
    async with db.reading() as session:
        return await service.get(session, plan_id)


async def list_active(db: Database) -> Sequence[Plan]:
    async with db.reading() as session:
        return await repository.list_active(session)


async def list_all(db: Database) -> Sequence[Plan]:
    """Every plan, on sale or archived, config and panel alike."""
    async with db.reading() as session:
        return await service.list_all(session)


async def sync(db: Database, specs: Sequence[service.PlanSpec], now: datetime) -> None:
    """Make the config plans match ``specs``. Several ``serve`` processes starting at once
    (one database) each sync: one that loses the race to insert a new plan (a unique key
    violation) syncs again, and then finds the plan and updates it."""
    for attempt in (1, 2):
        try:
            async with db.transaction() as session:
                await service.sync(session, specs, now)
            return
        except IntegrityError:
            if attempt == 2:
                raise


def _facts(plan: Plan) -> dict[str, object]:
    return {
        "title": plan.title,
        "price_sats": plan.price_sats,
        "duration_days": plan.duration_days,
        "channels": list(plan.channels),
        "active": plan.active,
    }


async def create_panel_plan(
    db: Database, spec: service.PlanSpec, *, by: Actor, now: datetime
) -> Plan:
    """A plan made in the panel, on sale at once (config plans come from satshare.yaml)."""
    async with audited(db, by, "plan.create", f"plan:{spec.id}", now=now) as work:
        plan = await service.create_panel_plan(work.session, spec, now)
        work.after = _facts(plan)
        return plan


async def update_panel_plan(
    db: Database, spec: service.PlanSpec, *, by: Actor, reason: str, now: datetime
) -> Plan:
    async with audited(db, by, "plan.edit", f"plan:{spec.id}", now=now, reason=reason) as work:
        work.before = _facts(await service.require_panel_plan(work.session, spec.id))
        plan = await service.update_panel_plan(work.session, spec, now)
        work.after = _facts(plan)
        return plan


async def set_panel_plan_on_sale(
    db: Database, plan_id: str, on_sale: bool, *, by: Actor, reason: str, now: datetime
) -> Plan:
    """Archive a panel plan (off sale; never deleted once sold) or put it back on sale."""
    action = "plan.restore" if on_sale else "plan.archive"
    async with audited(db, by, action, f"plan:{plan_id}", now=now, reason=reason) as work:
        work.before = _facts(await service.require_panel_plan(work.session, plan_id))
        plan = await service.set_panel_plan_on_sale(work.session, plan_id, on_sale, now)
        work.after = _facts(plan)
        return plan
