"""Money in integer satoshis. No floats anywhere near money."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

SATS_PER_BTC = 100_000_000
#: Every bitcoin that will ever exist, in sats: the largest amount a single record may carry.
MAX_SATS = 21_000_000 * SATS_PER_BTC
BPS_DENOMINATOR = 10_000


class MoneyError(ValueError):
    """An amount or share that cannot be money."""


def require_sats(value: object, *, allow_zero: bool = True, allow_negative: bool = False) -> int:
    """Return ``value`` if it is a whole number of sats inside the supply, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyError(f"amount must be a whole number of sats, got {value!r}")
    if not allow_negative and value < 0:
        raise MoneyError(f"amount must not be negative, got {value}")
    if not allow_zero and value == 0:
        raise MoneyError("amount must not be zero")
    if abs(value) > MAX_SATS:
        raise MoneyError(f"amount {value} exceeds the bitcoin supply ({MAX_SATS} sats)")
    return value


def require_bps(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyError(f"share must be whole basis points, got {value!r}")
    if not 0 <= value <= BPS_DENOMINATOR:
        raise MoneyError(f"share must be between 0 and {BPS_DENOMINATOR} bps, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Split:
    gross_sats: int
    affiliate_sats: int
    owner_sats: int
    share_bps: int


def split(gross_sats: int, share_bps: int) -> Split:
    """Split a sale: the affiliate gets ``share_bps`` of the gross rounded down, the owner the rest.

    The parts always sum exactly to the gross; the remainder sat goes to the owner.
    """
    require_sats(gross_sats)
    require_bps(share_bps)
    affiliate = gross_sats * share_bps // BPS_DENOMINATOR
    return Split(
        gross_sats=gross_sats,
        affiliate_sats=affiliate,
        owner_sats=gross_sats - affiliate,
        share_bps=share_bps,
    )


def parse_decimal(text: object) -> Decimal:
    """Parse a decimal amount as sent by payment processors; refuse NaN, infinity and junk."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise MoneyError(f"amount must be a decimal string, got {text!r}")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite():
        raise MoneyError(f"amount must be finite, got {text!r}")
    return value


def btc_to_sats(text: object, *, round_up: bool = False) -> int:
    """Convert a BTC decimal string to sats; amounts finer than a sat round down unless asked."""
    value = parse_decimal(text) * SATS_PER_BTC
    rounding = ROUND_CEILING if round_up else ROUND_FLOOR
    sats = int(value.to_integral_value(rounding=rounding))
    return require_sats(sats, allow_negative=True)


def sats_to_btc(sats: int) -> str:
    """Render sats as a BTC decimal string with exactly 8 decimals."""
    require_sats(sats, allow_negative=True)
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), SATS_PER_BTC)
    return f"{sign}{whole}.{frac:08d}"


def whole_sats(text: object) -> int:
    """Parse an amount already denominated in sats (e.g. a BTCPay invoice in ``SATS``)."""
    value = parse_decimal(text)
    if value != value.to_integral_value():
        raise MoneyError(f"sats amount must be whole, got {text!r}")
    return require_sats(int(value), allow_negative=True)


FIAT_CODE_LENGTH = 3


def parse_fiat(amount: object, currency: object) -> tuple[Decimal, str]:
    """A positive fiat price with at most 2 decimals (8 for crypto-ish units is not fiat)."""
    value = parse_decimal(amount)
    if value <= 0:
        raise MoneyError(f"price must be positive, got {amount!r}")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise MoneyError(f"a fiat price has at most 2 decimals, got {amount!r}")
    if not isinstance(currency, str) or len(currency) != FIAT_CODE_LENGTH or not currency.isalpha():
        raise MoneyError(f"currency must be a 3-letter code such as USD, got {currency!r}")
    return value, currency.upper()


def fiat_to_sats(amount: Decimal, btc_price: Decimal) -> int:
    """Sats for a fiat amount at ``btc_price`` (fiat per BTC), rounded UP to a whole sat:
    the buyer is never undercharged, and never charged a whole sat too much."""
    if not amount.is_finite() or not btc_price.is_finite() or amount <= 0 or btc_price <= 0:
        raise MoneyError("amount and rate must be positive and finite")
    sats = (amount * SATS_PER_BTC / btc_price).to_integral_value(rounding=ROUND_CEILING)
    return require_sats(int(sats), allow_zero=False)
