"""What a buyer is offered on an invoice besides the plan: a promo code's discount or extra
days, and the referee bonus (extra days on a referred buyer's first paid subscription).

Kept out of ``flows.start_checkout`` so the checkout only asks for an ``Offer`` before it
calls the processor and ties the promo use to the invoice after. Commission is untouched by
either: the split is taken from what the invoice bills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from satshare.db import Database
from satshare.payments import repository
from satshare.payments.models import Invoice
from satshare.promos import pricing
from satshare.promos import service as promos
from satshare.promos.models import PromoCode


@dataclass(frozen=True, slots=True)
class Offer:
    price_sats: int
    bonus_days: int = 0
    reservation: promos.Reservation | None = None
    #: The invoice this one replaces (the checkout page's rail or code change), whose promo
    #: use was given back for this offer.
    replacing: str | None = None

    def stamp(self, invoice: Invoice) -> None:
        """Write the offer onto the invoice: the original price, discount and code."""
        invoice.bonus_days = self.bonus_days
        if self.reservation is not None:
            invoice.original_sats = self.reservation.discount.original_sats
            invoice.discount_sats = self.reservation.discount.discount_sats
            invoice.promo_code = self.reservation.code


async def make_offer(
    db: Database,
    *,
    user_id: int,
    referred: bool,
    plan_id: str,
    price_sats: int,
    promo_code: str | None,
    referee_bonus_days: int,
    now: datetime,
    replacing: str | None = None,
) -> Offer:
    """The price and extra days for this purchase; with a promo code, one use of it is
    reserved (committed) so concurrent buyers cannot exceed its limit. ``replacing``: the
    open invoice this purchase replaces, whose promo use (if any) is given back in the same
    transaction. Raises ``promos.PromoRefused`` (nothing written) when the code does not
    apply."""
    if promo_code is None and replacing is None and not (referred and referee_bonus_days):
        return Offer(price_sats)
    # Committed at once, even under an Idempotency-Key (whose middleware would otherwise hold
    # this commit, and the code's row lock with it, across the processor call). A request
    # that dies after this leaves a reservation that stops counting after 10 minutes.
    async with db.transaction(effect=False) as session:
        if replacing is not None:
            await promos.invoice_replaced(session, replacing, now)
        first_purchase = not await repository.has_paid(session, user_id)
        bonus = referee_bonus_days if referred and first_purchase else 0
        if promo_code is None:
            return Offer(price_sats, bonus, replacing=replacing)
        reservation = await promos.reserve(
            session,
            promo_code,
            user_id=user_id,
            plan_id=plan_id,
            price_sats=price_sats,
            has_paid_before=not first_purchase,
            now=now,
        )
    return Offer(
        reservation.discount.price_sats,
        bonus + reservation.discount.bonus_days,
        reservation,
        replacing,
    )


async def extra_days(
    db: Database,
    *,
    user_id: int,
    referred: bool,
    plan_id: str,
    promo_code: str | None,
    referee_bonus_days: int,
    now: datetime,
) -> int:
    """The extra days a bitcoin purchase of the plan would carry if made now, as
    ``make_offer`` would give them (nothing reserved): the referee bonus on a first paid
    purchase and a promo code's days. A code that would be refused adds none (the purchase
    itself then says why)."""
    async with db.reading() as session:
        first_purchase = not await repository.has_paid(session, user_id)
        days = referee_bonus_days if referred and first_purchase else 0
        if promo_code is None:
            return days
        try:
            promo = await promos.check(
                session,
                promo_code,
                user_id=user_id,
                plan_id=plan_id,
                has_paid_before=not first_purchase,
                now=now,
            )
        except promos.PromoRefused:
            return days
    return days + pricing.bonus_days(promo.kind, promo.value)


async def withdraw(db: Database, offer: Offer, now: datetime) -> None:
    """The invoice was not created: free the promo use at once, and the invoice it was to
    replace holds its own use again."""
    if offer.reservation is None and offer.replacing is None:
        return
    async with db.transaction(effect=False) as session:
        if offer.reservation is not None:
            await promos.cancel_reservation(session, offer.reservation, now)
        if offer.replacing is not None:
            await promos.invoice_kept(session, offer.replacing, now)


async def check_code(db: Database, code: str, *, user_id: int, now: datetime) -> PromoCode:
    """Whether the user could use the code now, before a plan is chosen (nothing held);
    ``promos.PromoRefused`` says why not."""
    async with db.reading() as session:
        has_paid = await repository.has_paid(session, user_id)
        return await promos.check(session, code, user_id=user_id, has_paid_before=has_paid, now=now)
