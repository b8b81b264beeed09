"""All promo code SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.promos.models import PromoCode, PromoRedemption, RedemptionStatus


async def get(session: AsyncSession, code: str, *, lock: bool = False) -> PromoCode | None:
    query = select(PromoCode).where(PromoCode.code == code)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def add(session: AsyncSession, promo: PromoCode) -> None:
    session.add(promo)
    await session.flush()


async def list_codes(
    session: AsyncSession, *, limit: int, after_code: str | None = None
) -> Sequence[PromoCode]:
    query = select(PromoCode)
    if after_code is not None:
        query = query.where(PromoCode.code > after_code)
    return (await session.execute(query.order_by(PromoCode.code).limit(limit))).scalars().all()


def _holding(now: datetime) -> object:
    """A redemption that counts as a use: on an open or settled invoice, or reserved for
    one being created right now."""
    return or_(
        PromoRedemption.status.in_((RedemptionStatus.INVOICED, RedemptionStatus.USED)),
        and_(
            PromoRedemption.status == RedemptionStatus.RESERVED,
            PromoRedemption.reserved_until > now,
        ),
    )


async def uses(session: AsyncSession, code: str, now: datetime, user_id: int | None = None) -> int:
    query = select(func.count()).where(PromoRedemption.code == code, _holding(now))  # type: ignore[arg-type]
    if user_id is not None:
        query = query.where(PromoRedemption.user_id == user_id)
    return int((await session.execute(query)).scalar_one())


async def add_redemption(session: AsyncSession, redemption: PromoRedemption) -> int:
    session.add(redemption)
    await session.flush()
    return redemption.id


async def set_status(
    session: AsyncSession,
    *,
    status: RedemptionStatus,
    now: datetime,
    redemption_id: int | None = None,
    invoice_id: str | None = None,
    only_from: tuple[RedemptionStatus, ...],
    new_invoice_id: str | None = None,
) -> int:
    query = update(PromoRedemption).where(PromoRedemption.status.in_(only_from))
    if redemption_id is not None:
        query = query.where(PromoRedemption.id == redemption_id)
    if invoice_id is not None:
        query = query.where(PromoRedemption.invoice_id == invoice_id)
    values: dict[str, object] = {"status": status, "updated_at": now}
    if new_invoice_id is not None:
        values["invoice_id"] = new_invoice_id
    result = await session.execute(query.values(**values))
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Stats:
    #: Settled purchases with the code, what they paid, and the discount they were given.
    uses: int
    revenue_sats: int
    discount_sats: int
    #: Uses held by invoices not paid yet (they count against max_uses until they expire).
    pending: int


async def stats(session: AsyncSession, code: str, now: datetime) -> Stats:
    used = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(PromoRedemption.price_sats), 0),
                func.coalesce(func.sum(PromoRedemption.discount_sats), 0),
            ).where(PromoRedemption.code == code, PromoRedemption.status == RedemptionStatus.USED)
        )
    ).one()
    held = await uses(session, code, now)
    return Stats(int(used[0]), int(used[1]), int(used[2]), held - int(used[0]))
