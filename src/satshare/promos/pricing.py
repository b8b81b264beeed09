"""What a promo code does to a price: integer sats only, never below 1 sat."""

from __future__ import annotations

from dataclasses import dataclass

from satshare.promos.models import PromoKind

#: An invoice bills at least this much: a code never makes a plan free (trials do that).
MIN_PRICE_SATS = 1


@dataclass(frozen=True, slots=True)
class Discount:
    original_sats: int
    discount_sats: int
    #: What the buyer pays: original_sats - discount_sats.
    price_sats: int
    bonus_days: int


def bonus_days(kind: PromoKind, value: int) -> int:
    """The extra days a code adds to the period bought (only an extra-days code adds any)."""
    return value if kind == PromoKind.EXTRA_DAYS else 0


def apply(kind: PromoKind, value: int, price_sats: int) -> Discount:
    """The price after the code. A percent's discount is rounded down to whole sats, so the
    buyer pays the rounded-up rest; no code takes a price below 1 sat."""
    if price_sats < MIN_PRICE_SATS:
        raise ValueError(f"a price is at least {MIN_PRICE_SATS} sat")
    if kind == PromoKind.PERCENT:
        off = price_sats * value // 100
    elif kind == PromoKind.FIXED_SATS:
        off = value
    else:
        off = 0
    price = max(MIN_PRICE_SATS, price_sats - off)
    return Discount(price_sats, price_sats - price, price, bonus_days(kind, value))
