"""Exchange rates for fiat-priced plans: what the domain needs from a rate source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Quote:
    currency: str
    btc_price: Decimal  # fiat per BTC; the bid where the source gives one
    source: str
    at: datetime  # when the source says the price is from


class RateUnreachable(Exception):
    """The source could not be asked or gave no usable price; the message says which."""


class RateSource(Protocol):
    name: str

    async def quote(self, currency: str) -> Quote: ...
