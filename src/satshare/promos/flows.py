"""Promo code use cases for the API: each opens its own unit of work. (Checking a code for a
buyer needs whether they paid before: ``payments.offers.check_code``.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from satshare.audit.flows import Actor, audited
from satshare.db import Database
from satshare.promos import repository, service
from satshare.promos.models import PromoCode
from satshare.promos.repository import Stats


def facts(promo: PromoCode) -> dict[str, object]:
    """What the audit log keeps of a code."""
    return {
        "kind": promo.kind.value,
        "value": promo.value,
        "plans": promo.plans,
        "max_uses": promo.max_uses,
        "once_per_user": promo.once_per_user,
        "first_purchase_only": promo.first_purchase_only,
        "valid_from": promo.valid_from,
        "valid_until": promo.valid_until,
        "active": promo.active,
    }


async def create(
    db: Database,
    spec: service.PromoSpec,
    author: str,
    now: datetime,
    *,
    by: Actor | None = None,
) -> tuple[PromoCode, Stats]:
    """``by``: the code's audit row commits with it (the panel; the admin API's middleware
    records its own calls)."""
    async with audited(db, by, "promo.create", f"promo:{spec.code}", now=now) as work:
        promo = await service.create(work.session, spec, author, now)
        work.after = facts(promo)
        return promo, await service.stats(work.session, promo.code, now)


async def listing(
    db: Database, *, limit: int, after_code: str | None, now: datetime
) -> list[tuple[PromoCode, Stats]]:
    """Codes in order, each with its usage."""
    async with db.reading() as session:
        rows = await repository.list_codes(session, limit=limit, after_code=after_code)
        return [(p, await service.stats(session, p.code, now)) for p in rows]


async def show(db: Database, code: str, now: datetime) -> tuple[PromoCode, Stats]:
    async with db.reading() as session:
        promo = await service.require(session, code)
        return promo, await service.stats(session, promo.code, now)


async def change(
    db: Database,
    code: str,
    changes: dict[str, Any],
    now: datetime,
    *,
    by: Actor | None = None,
    action: str = "promo.change",
) -> tuple[PromoCode, Stats]:
    """Only the fields that changed go to the audit row, before and after."""
    target = f"promo:{service.normalise(code)}"
    async with audited(db, by, action, target, now=now) as work:
        before = facts(await service.require(work.session, code))
        promo = await service.change(work.session, code, changes, now)
        after = facts(promo)
        work.before = {k: v for k, v in before.items() if after[k] != v}
        work.after = {k: v for k, v in after.items() if before[k] != v}
        return promo, await service.stats(work.session, promo.code, now)
