from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satshare.money import (
    MAX_SATS,
    SATS_PER_BTC,
    MoneyError,
    btc_to_sats,
    parse_decimal,
    sats_to_btc,
    split,
    whole_sats,
)


@given(gross=st.integers(min_value=1, max_value=2**53), share=st.integers(0, 10_000))
def test_split_parts_sum_to_gross_and_are_never_negative(gross: int, share: int) -> None:
    if gross > MAX_SATS:
        with pytest.raises(MoneyError):
            split(gross, share)
        return
    result = split(gross, share)
    assert result.affiliate_sats + result.owner_sats == gross
    assert result.affiliate_sats >= 0 and result.owner_sats >= 0
    # Affiliate share is rounded down; the remainder sat goes to the owner.
    assert result.affiliate_sats == (gross * share) // 10_000
    assert result.affiliate_sats * 10_000 <= gross * share < (result.affiliate_sats + 1) * 10_000


@given(gross=st.integers(min_value=1, max_value=MAX_SATS), share=st.integers(0, 10_000))
def test_split_within_supply_never_raises(gross: int, share: int) -> None:
    assert split(gross, share).gross_sats == gross


def test_split_examples() -> None:
    assert (split(50_000, 5000).affiliate_sats, split(50_000, 5000).owner_sats) == (25_000, 25_000)
    assert (split(1, 5000).affiliate_sats, split(1, 5000).owner_sats) == (0, 1)
    assert (split(3, 5000).affiliate_sats, split(3, 5000).owner_sats) == (1, 2)
    assert split(999, 0).owner_sats == 999
    assert split(999, 10_000).affiliate_sats == 999


@pytest.mark.parametrize("bad", [1.5, "100", True, None, Decimal("1")])
def test_split_refuses_non_integers(bad: object) -> None:
    with pytest.raises(MoneyError):
        split(bad, 5000)  # type: ignore[arg-type]


@pytest.mark.parametrize("share", [-1, 10_001, 50.0])
def test_split_refuses_bad_shares(share: object) -> None:
    with pytest.raises(MoneyError):
        split(100, share)  # type: ignore[arg-type]


def test_negative_gross_refused() -> None:
    with pytest.raises(MoneyError):
        split(-5, 5000)


@pytest.mark.parametrize("text", ["NaN", "nan", "Infinity", "-inf", "sNaN", "abc", "", "1e"])
def test_decimal_parsing_refuses_nan_infinity_and_junk(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_decimal(text)


def test_btc_conversions() -> None:
    assert btc_to_sats("0.00050000") == 50_000
    assert btc_to_sats("1") == 100_000_000
    assert btc_to_sats("0.000000015") == 1
    assert btc_to_sats("0.000000015", round_up=True) == 2
    assert sats_to_btc(50_000) == "0.00050000"
    assert sats_to_btc(-1) == "-0.00000001"
    assert whole_sats("50000") == 50_000
    with pytest.raises(MoneyError):
        whole_sats("1.5")
    with pytest.raises(MoneyError):
        btc_to_sats("21000001")


@given(st.integers(min_value=-MAX_SATS, max_value=MAX_SATS))
def test_btc_round_trip(sats: int) -> None:
    assert btc_to_sats(sats_to_btc(sats)) == sats


@given(
    cents=st.integers(min_value=1, max_value=10**9),
    price_cents=st.integers(min_value=100, max_value=10**12),
)
def test_fiat_conversion_never_undercharges_and_is_at_most_one_sat_over(
    cents: int, price_cents: int
) -> None:
    from satshare.money import fiat_to_sats

    amount = Decimal(cents) / 100
    btc_price = Decimal(price_cents) / 100
    try:
        sats = fiat_to_sats(amount, btc_price)
    except MoneyError:
        assert amount * SATS_PER_BTC / btc_price > MAX_SATS  # only beyond the supply
        return
    paid = Decimal(sats) * btc_price / SATS_PER_BTC
    assert paid >= amount  # never undercharge
    assert Decimal(sats - 1) * btc_price / SATS_PER_BTC < amount  # at most one sat over


def test_fiat_parsing() -> None:
    from satshare.money import parse_fiat

    assert parse_fiat("9.99", "usd") == (Decimal("9.99"), "USD")
    for amount, currency in (
        ("0", "USD"),
        ("-1", "USD"),
        ("1.001", "USD"),
        ("NaN", "USD"),
        ("5", "US"),
        ("5", "U$D"),
        ("5", 840),
    ):
        with pytest.raises(MoneyError):
            parse_fiat(amount, currency)
