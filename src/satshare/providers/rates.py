"""Rate sources over HTTP: Kraken (bid), Yadio (RUB and other local currencies), BTCPay
Server's store rates, or fixed prices from the configuration."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from satshare.clock import Clock
from satshare.money import MoneyError, parse_decimal
from satshare.providers.http import HttpAdapter, describe
from satshare.rates.ports import Quote, RateUnreachable

#: Kraken names BTC "XBT" and wraps classic fiat in X/Z prefixes in its result keys.
KRAKEN_BTC = "XBT"


def _price(value: Any, what: str) -> Decimal:
    try:
        price = parse_decimal(str(value))
    except MoneyError as exc:
        raise RateUnreachable(f"{what} is not a price: {value!r}") from exc
    if price <= 0:
        raise RateUnreachable(f"{what} is not positive: {value!r}")
    return price


class _HttpSource(HttpAdapter):
    """A rate API; its errors are RateUnreachable and name it by its URL."""

    name = "http"
    service = "the rate source"
    connect_limit = None  # connecting may take the whole timeout

    def __init__(
        self,
        base_url: str,
        clock: Clock,
        timeout: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, timeout_seconds=timeout, headers=headers)
        self.clock = clock

    async def _get(self, path: str, **kwargs: Any) -> Any:
        response = await self._request("GET", path, **kwargs)
        if response.status_code >= 400:
            raise RateUnreachable(f"{self.shown_url} answered {response.status_code}")
        return self._json(response)

    def _no_answer(self, exc: httpx.HTTPError) -> Exception:
        return RateUnreachable(f"{self.shown_url} did not answer ({describe(exc)})")

    def _not_json(self, exc: ValueError) -> Exception:
        return RateUnreachable(f"{self.shown_url} sent a body that is not JSON")


class KrakenRates(_HttpSource):
    name = "kraken"

    async def quote(self, currency: str) -> Quote:
        data = await self._get("/0/public/Ticker", params={"pair": f"{KRAKEN_BTC}{currency}"})
        if not isinstance(data, dict):
            raise RateUnreachable("Kraken's answer is not an object")
        if data.get("error"):
            raise RateUnreachable(f"Kraken refused the pair XBT{currency}: {data['error']}")
        result = data.get("result")
        if not isinstance(result, dict) or not result:
            raise RateUnreachable(f"Kraken has no ticker for XBT{currency}")
        ticker = next(iter(result.values()))
        try:
            bid = ticker["b"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise RateUnreachable("Kraken's ticker has no bid") from exc
        # The ticker carries no time: it is as fresh as the request.
        return Quote(currency, _price(bid, "Kraken's bid"), self.name, self.clock.now())


class YadioRates(_HttpSource):
    name = "yadio"

    async def quote(self, currency: str) -> Quote:
        data = await self._get("/exrates/BTC")
        if not isinstance(data, dict) or not isinstance(data.get("BTC"), dict):
            raise RateUnreachable("Yadio's answer has no BTC table")
        if currency not in data["BTC"]:
            raise RateUnreachable(f"Yadio has no {currency} rate")
        stamp = data.get("timestamp")
        if not isinstance(stamp, int | float):
            raise RateUnreachable("Yadio's answer has no timestamp")
        at = datetime.fromtimestamp(stamp / 1000, UTC)
        return Quote(
            currency, _price(data["BTC"][currency], f"Yadio's {currency} rate"), self.name, at
        )


class BTCPayRates(_HttpSource):
    name = "btcpay"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        store_id: str,
        clock: Clock,
        timeout: float,
    ) -> None:
        super().__init__(base_url, clock, timeout, headers={"Authorization": f"token {api_key}"})
        self.store_id = store_id

    async def quote(self, currency: str) -> Quote:
        data = await self._get(
            f"/api/v1/stores/{self.store_id}/rates",
            params={"currencyPair": f"BTC_{currency}"},
        )
        if not isinstance(data, list):
            raise RateUnreachable("BTCPay's rates answer is not a list")
        for row in data:
            if isinstance(row, dict) and row.get("currencyPair") == f"BTC_{currency}":
                if row.get("errors"):
                    raise RateUnreachable(f"BTCPay cannot rate BTC_{currency}: {row['errors']}")
                return Quote(
                    currency, _price(row.get("rate"), "BTCPay's rate"), self.name, self.clock.now()
                )
        raise RateUnreachable(f"BTCPay has no BTC_{currency} rate")


class FixedRates:
    """Prices set by the operator in rates.fixed (BTC price per currency)."""

    name = "fixed"

    def __init__(self, prices: Mapping[str, str], clock: Clock) -> None:
        self._prices = {k.upper(): _price(v, f"rates.fixed.{k}") for k, v in prices.items()}
        self.clock = clock

    async def quote(self, currency: str) -> Quote:
        if currency not in self._prices:
            raise RateUnreachable(f"rates.fixed has no {currency} price")
        return Quote(currency, self._prices[currency], self.name, self.clock.now())

    async def aclose(self) -> None:
        return None
