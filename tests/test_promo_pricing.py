"""Promo arithmetic (#13), for every kind, value and price: whole sats, the discounted price
at least 1 sat, original = price + discount, and the split of what is paid sums to it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satshare.errors import InvalidRequest
from satshare.money import split
from satshare.promos import pricing
from satshare.promos.models import PromoKind
from satshare.promos.service import PromoSpec

PRICES = st.integers(min_value=1, max_value=21 * 10**14)
SHARES = st.integers(min_value=0, max_value=10_000)


@given(
    kind=st.sampled_from(list(PromoKind)),
    value=st.integers(min_value=1, max_value=21 * 10**14),
    price=PRICES,
    share=SHARES,
)
def test_a_discounted_price_is_at_least_one_sat_and_its_split_sums_to_it(
    kind: PromoKind, value: int, price: int, share: int
) -> None:
    if kind == PromoKind.PERCENT:
        value = value % 100 + 1
    discount = pricing.apply(kind, value, price)
    assert isinstance(discount.price_sats, int) and isinstance(discount.discount_sats, int)
    assert discount.price_sats >= 1
    assert discount.price_sats + discount.discount_sats == discount.original_sats == price
    assert 0 <= discount.discount_sats < price or price == 1
    sale = split(discount.price_sats, share)
    assert sale.owner_sats + sale.affiliate_sats == discount.price_sats
    if kind == PromoKind.EXTRA_DAYS:
        assert discount.discount_sats == 0 and discount.bonus_days == value
    else:
        assert discount.bonus_days == 0


@given(percent=st.integers(min_value=1, max_value=100), price=PRICES)
def test_a_percent_takes_off_at_most_that_percent(percent: int, price: int) -> None:
    discount = pricing.apply(PromoKind.PERCENT, percent, price)
    assert discount.discount_sats * 100 <= price * percent
    if discount.price_sats > 1:
        # Rounded to the buyer's disadvantage by less than a sat, never more.
        assert (discount.discount_sats + 1) * 100 > price * percent


def test_examples() -> None:
    assert pricing.apply(PromoKind.PERCENT, 20, 50_000).price_sats == 40_000
    assert pricing.apply(PromoKind.PERCENT, 100, 50_000).price_sats == 1
    assert pricing.apply(PromoKind.PERCENT, 33, 10).price_sats == 7  # 3.3 off: 3
    assert pricing.apply(PromoKind.FIXED_SATS, 60_000, 50_000).price_sats == 1
    assert pricing.apply(PromoKind.EXTRA_DAYS, 7, 50_000).bonus_days == 7


@pytest.mark.parametrize(
    ("kind", "value"),
    [(PromoKind.PERCENT, 0), (PromoKind.PERCENT, 101), (PromoKind.EXTRA_DAYS, 3651)],
)
def test_a_spec_out_of_range_is_refused(kind: PromoKind, value: int) -> None:
    with pytest.raises(InvalidRequest):
        PromoSpec(code="CODE", kind=kind, value=value)
