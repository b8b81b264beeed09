"""Promo code rules: create and change codes, reserve a use for a checkout (every limit
checked with the code's row locked), and follow the invoice: tied, used, released.
Never commits: the caller's unit of work does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.plans import service as plans
from satshare.promos import pricing, repository
from satshare.promos.models import (
    CODE_MAX_LENGTH,
    PromoCode,
    PromoKind,
    PromoRedemption,
    RedemptionStatus,
)
from satshare.promos.repository import Stats

#: Letters, digits, _ and -: what a Telegram /start parameter can carry after "promo_".
CODE_PATTERN = re.compile(rf"^[A-Z0-9_-]{{3,{CODE_MAX_LENGTH}}}$")
MAX_DAYS = 3650
#: A reserved use not tied to an invoice by then (its checkout died) stops counting.
RESERVATION = timedelta(minutes=10)


def normalise(code: str) -> str:
    return code.strip().upper()


class Refusal(StrEnum):
    """Why a code cannot be used: the bot and the checkout page word each one for the buyer."""

    UNKNOWN = "unknown"
    DISABLED = "disabled"
    NOT_YET = "not_yet"
    EXPIRED = "expired"
    USED_UP = "used_up"
    WRONG_PLAN = "wrong_plan"
    ALREADY_USED = "already_used"
    FIRST_PURCHASE_ONLY = "first_purchase_only"


class PromoRefused(InvalidRequest):
    """The code cannot be used for this purchase (422 in the API); nothing was written."""

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(detail, field="promo_code", reason=reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PromoSpec:
    code: str
    kind: PromoKind
    value: int
    plans: tuple[str, ...] | None = None
    max_uses: int | None = None
    once_per_user: bool = True
    first_purchase_only: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        if not CODE_PATTERN.match(self.code):
            raise InvalidRequest(
                f"code must be 3-{CODE_MAX_LENGTH} letters, digits, _ or - (matched without "
                "regard to case)",
                field="code",
            )
        if self.kind == PromoKind.PERCENT and not 1 <= self.value <= 100:
            raise InvalidRequest("a percent code takes 1-100 percent off", field="value")
        if self.kind == PromoKind.FIXED_SATS and not 1 <= self.value <= 21 * 10**14:
            raise InvalidRequest("a fixed code takes at least 1 sat off", field="value")
        if self.kind == PromoKind.EXTRA_DAYS and not 1 <= self.value <= MAX_DAYS:
            raise InvalidRequest(f"extra days are 1-{MAX_DAYS}", field="value")
        _check_window(self.valid_from, self.valid_until)


def _check_window(valid_from: datetime | None, valid_until: datetime | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise InvalidRequest("valid_until must be after valid_from", field="valid_until")


async def _check_plans(session: AsyncSession, plan_ids: tuple[str, ...] | None) -> None:
    for plan_id in plan_ids or ():
        if await plans.get(session, plan_id) is None:
            raise InvalidRequest(f"unknown plan {plan_id!r}", field="plans")


async def create(session: AsyncSession, spec: PromoSpec, author: str, now: datetime) -> PromoCode:
    if await repository.get(session, spec.code) is not None:
        raise Conflict(f"the promo code {spec.code} already exists; change it with PUT")
    await _check_plans(session, spec.plans)
    promo = PromoCode(
        code=spec.code,
        kind=spec.kind,
        value=spec.value,
        plans=list(spec.plans) if spec.plans is not None else None,
        max_uses=spec.max_uses,
        once_per_user=spec.once_per_user,
        first_purchase_only=spec.first_purchase_only,
        valid_from=spec.valid_from,
        valid_until=spec.valid_until,
        active=True,
        created_by=author,
        created_at=now,
        updated_at=now,
    )
    await repository.add(session, promo)
    return promo


async def require(session: AsyncSession, code: str, *, lock: bool = False) -> PromoCode:
    promo = await repository.get(session, normalise(code), lock=lock)
    if promo is None:
        raise NotFound(f"no promo code {normalise(code)}")
    return promo


async def change(
    session: AsyncSession, code: str, changes: dict[str, Any], now: datetime
) -> PromoCode:
    """Disable or re-enable a code, or change its limits (its kind and value stay: uses
    already given were given on them)."""
    promo = await require(session, code, lock=True)
    if "plans" in changes:
        plan_ids = changes["plans"]
        await _check_plans(session, tuple(plan_ids) if plan_ids is not None else None)
    valid_from = changes.get("valid_from", promo.valid_from)
    valid_until = changes.get("valid_until", promo.valid_until)
    _check_window(valid_from, valid_until)
    for name, value in changes.items():
        setattr(promo, name, list(value) if name == "plans" and value is not None else value)
    promo.updated_at = now
    await session.flush()
    return promo


async def stats(session: AsyncSession, code: str, now: datetime) -> Stats:
    return await repository.stats(session, code, now)


async def _usable(
    session: AsyncSession,
    promo: PromoCode | None,
    wanted: str,
    *,
    user_id: int,
    plan_id: str | None,
    has_paid_before: bool,
    now: datetime,
) -> PromoCode:
    """The code, if this user may use it now (for ``plan_id``, when known); else refused."""
    if promo is None:
        raise PromoRefused(Refusal.UNKNOWN, f"there is no promo code {wanted}")
    if not promo.active:
        raise PromoRefused(Refusal.DISABLED, f"the promo code {wanted} is no longer active")
    if promo.valid_from is not None and now < promo.valid_from:
        raise PromoRefused(
            Refusal.NOT_YET, f"the promo code {wanted} is valid from {promo.valid_from:%Y-%m-%d}"
        )
    if promo.valid_until is not None and now >= promo.valid_until:
        raise PromoRefused(Refusal.EXPIRED, f"the promo code {wanted} has expired")
    if plan_id is not None and promo.plans is not None and plan_id not in promo.plans:
        raise PromoRefused(
            Refusal.WRONG_PLAN,
            f"the promo code {wanted} is for {', '.join(promo.plans)}, not {plan_id}",
        )
    if promo.first_purchase_only and has_paid_before:
        raise PromoRefused(
            Refusal.FIRST_PURCHASE_ONLY, f"the promo code {wanted} is for a first purchase only"
        )
    if promo.once_per_user and await repository.uses(session, wanted, now, user_id=user_id):
        raise PromoRefused(Refusal.ALREADY_USED, f"you have already used the promo code {wanted}")
    if promo.max_uses is not None and await repository.uses(session, wanted, now) >= promo.max_uses:
        raise PromoRefused(Refusal.USED_UP, f"the promo code {wanted} has been used up")
    return promo


async def check(
    session: AsyncSession,
    code: str,
    *,
    user_id: int,
    has_paid_before: bool,
    now: datetime,
    plan_id: str | None = None,
) -> PromoCode:
    """Whether the user could use the code now (for ``plan_id``, or before a plan is chosen);
    nothing is held."""
    wanted = normalise(code)
    return await _usable(
        session,
        await repository.get(session, wanted),
        wanted,
        user_id=user_id,
        plan_id=plan_id,
        has_paid_before=has_paid_before,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class Reservation:
    redemption_id: int
    code: str
    discount: pricing.Discount


async def reserve(
    session: AsyncSession,
    code: str,
    *,
    user_id: int,
    plan_id: str,
    price_sats: int,
    has_paid_before: bool,
    now: datetime,
) -> Reservation:
    """Hold one use of the code for this purchase, or refuse it saying why. The code's row
    is locked first, so concurrent buyers count one another's uses."""
    wanted = normalise(code)
    promo = await repository.get(session, wanted, lock=True)
    promo = await _usable(
        session,
        promo,
        wanted,
        user_id=user_id,
        plan_id=plan_id,
        has_paid_before=has_paid_before,
        now=now,
    )
    discount = pricing.apply(promo.kind, promo.value, price_sats)
    redemption_id = await repository.add_redemption(
        session,
        PromoRedemption(
            code=wanted,
            user_id=user_id,
            plan_id=plan_id,
            status=RedemptionStatus.RESERVED,
            original_sats=discount.original_sats,
            discount_sats=discount.discount_sats,
            price_sats=discount.price_sats,
            bonus_days=discount.bonus_days,
            reserved_until=now + RESERVATION,
            created_at=now,
            updated_at=now,
        ),
    )
    return Reservation(redemption_id, wanted, discount)


async def attach(
    session: AsyncSession, reservation: Reservation, invoice_id: str, now: datetime
) -> None:
    """The invoice exists: the use is held by it from now on."""
    await repository.set_status(
        session,
        status=RedemptionStatus.INVOICED,
        now=now,
        redemption_id=reservation.redemption_id,
        only_from=(RedemptionStatus.RESERVED,),
        new_invoice_id=invoice_id,
    )


async def cancel_reservation(
    session: AsyncSession, reservation: Reservation, now: datetime
) -> None:
    """The invoice could not be created: the use is free again."""
    await repository.set_status(
        session,
        status=RedemptionStatus.RELEASED,
        now=now,
        redemption_id=reservation.redemption_id,
        only_from=(RedemptionStatus.RESERVED,),
    )


async def invoice_settled(session: AsyncSession, invoice_id: str, now: datetime) -> None:
    """Paid, even late after it had expired (the buyer paid the discounted price)."""
    await repository.set_status(
        session,
        status=RedemptionStatus.USED,
        now=now,
        invoice_id=invoice_id,
        only_from=(RedemptionStatus.INVOICED, RedemptionStatus.RELEASED),
    )


async def invoice_replaced(session: AsyncSession, invoice_id: str, now: datetime) -> None:
    """The buyer asked for another invoice instead (another rail or code on the checkout
    page): the use goes back to the code, so the new invoice may take it. The old invoice
    can still be paid; if it is, ``invoice_settled`` counts the use again."""
    await _release(session, invoice_id, now)


async def invoice_kept(session: AsyncSession, invoice_id: str, now: datetime) -> None:
    """The new invoice could not be made after all: the old one holds its use again."""
    await repository.set_status(
        session,
        status=RedemptionStatus.INVOICED,
        now=now,
        invoice_id=invoice_id,
        only_from=(RedemptionStatus.RELEASED,),
    )


async def invoice_lapsed(session: AsyncSession, invoice_id: str, now: datetime) -> None:
    """Expired or invalid unpaid: the use goes back to the code."""
    await _release(session, invoice_id, now)


async def _release(session: AsyncSession, invoice_id: str, now: datetime) -> None:
    """The use held by an unpaid invoice goes back to the code."""
    await repository.set_status(
        session,
        status=RedemptionStatus.RELEASED,
        now=now,
        invoice_id=invoice_id,
        only_from=(RedemptionStatus.INVOICED,),
    )
