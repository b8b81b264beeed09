"""Pricing in sats: a fresh quote or a refusal, never a guess."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from satshare.errors import RateUnavailable
from satshare.money import fiat_to_sats
from satshare.rates.ports import Quote, RateSource, RateUnreachable

#: A rate source standing in for the real one in sandbox mode is named ``<source>-sandbox``.
SANDBOX_SUFFIX = "-sandbox"
_PROPER_NAMES = {"kraken": "Kraken", "yadio": "Yadio", "btcpay": "BTCPay Server"}


def source_name(source: str) -> tuple[str, bool]:
    """How to name a stored ``rate_source`` to a buyer, and whether it was an emulator."""
    emulated = source.endswith(SANDBOX_SUFFIX)
    plain = source.removesuffix(SANDBOX_SUFFIX)
    return _PROPER_NAMES.get(plain, plain), emulated


@dataclass(frozen=True, slots=True)
class Priced:
    sats: int
    quote: Quote


async def price_in_sats(
    source: RateSource, amount: Decimal, currency: str, *, now: datetime, max_age: timedelta
) -> Priced:
    try:
        quote = await source.quote(currency)
    except RateUnreachable as exc:
        raise RateUnavailable(
            f"no {currency} rate from {source.name}: {exc}; the invoice was not created"
        ) from exc
    age = now - quote.at
    if age > max_age:
        raise RateUnavailable(
            f"the {currency} rate from {source.name} is {int(age.total_seconds())} s old "
            f"(rates.max_age_seconds is {int(max_age.total_seconds())}); refusing to price the "
            "invoice on it"
        )
    if quote.btc_price <= 0:
        raise RateUnavailable(f"{source.name} gave a non-positive {currency} rate")
    return Priced(sats=fiat_to_sats(amount, quote.btc_price), quote=quote)
