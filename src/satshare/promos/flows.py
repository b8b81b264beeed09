"""Promo code use cases for the API: each opens its own unit of work. (Checking a code for a
buyer needs whether they paid before: ``payments.offers.check_code``.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from satshare.audit import service as audit
from satshare.audit.service import Actor
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
    actor: Actor | None = None,
) -> tuple[PromoCode, Stats]:
    """``actor``: the code's audit row goes in the same transaction (the panel; the admin
    API records its calls itself)."""
    async with db.transaction() as session:
        promo = await service.create(session, spec, author, now)
        if actor is not None:
            await audit.record_by(
                session, actor, "promo.create", f"promo:{promo.code}", after=facts(promo), now=now
            )
        return promo, await service.stats(session, promo.code, now)


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
    actor: Actor | None = None,
    action: str = "promo.change",
) -> tuple[PromoCode, Stats]:
    async with db.transaction() as session:
        before = facts(await service.require(session, code))
        promo = await service.change(session, code, changes, now)
        if actor is not None:
            after = facts(promo)
            await audit.record_by(
                session,
                actor,
                action,
                f"promo:{promo.code}",
                before={k: v for k, v in before.items() if after[k] != v},
                after={k: v for k, v in after.items() if before[k] != v},
                now=now,
            )
        return promo, await service.stats(session, promo.code, now)
