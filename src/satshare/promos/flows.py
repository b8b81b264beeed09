"""Promo code use cases for the API: each opens its own unit of work. (Checking a code for a
buyer needs whether they paid before: ``payments.offers.check_code``.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from satshare.db import Database
from satshare.promos import repository, service
from satshare.promos.models import PromoCode
from satshare.promos.repository import Stats


async def create(
    db: Database, spec: service.PromoSpec, author: str, now: datetime
) -> tuple[PromoCode, Stats]:
    async with db.transaction() as session:
        promo = await service.create(session, spec, author, now)
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
    db: Database, code: str, changes: dict[str, Any], now: datetime
) -> tuple[PromoCode, Stats]:
    async with db.transaction() as session:
        promo = await service.change(session, code, changes, now)
        return promo, await service.stats(session, promo.code, now)
