"""Exchange-rate emulator: Kraken's public ticker and Yadio's exrates, over real HTTP.

Tests and the sandbox set prices, make Yadio's data stale or take either API down.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: Kraken's result keys for classic fiat pairs.
KRAKEN_KEYS = {
    "USD": "XXBTZUSD",
    "EUR": "XXBTZEUR",
    "GBP": "XXBTZGBP",
    "CAD": "XXBTZCAD",
    "JPY": "XXBTZJPY",
}


class RatesEmulator:
    def __init__(self) -> None:
        self.prices: dict[str, Decimal] = {
            "USD": Decimal("97000.10"),
            "EUR": Decimal("89500.00"),
            "RUB": Decimal("9100000"),
            "ARS": Decimal("98000000"),
        }
        self.yadio_age_seconds = 0.0
        self.down = False


def build_app(emulator: RatesEmulator) -> Starlette:
    async def kraken(request: Request) -> Response:
        if emulator.down:
            return Response("Service Unavailable", status_code=503)
        pair = request.query_params.get("pair", "")
        currency = pair[3:] if pair.startswith("XBT") else ""
        if currency not in KRAKEN_KEYS or currency not in emulator.prices:
            return JSONResponse({"error": ["EQuery:Unknown asset pair"], "result": {}})
        price = emulator.prices[currency]
        bid, ask = price - Decimal("0.10"), price + Decimal("0.10")
        ticker: dict[str, Any] = {
            "a": [str(ask), "1", "1.000"],
            "b": [str(bid), "1", "1.000"],
            "c": [str(price), "0.001"],
        }
        return JSONResponse({"error": [], "result": {KRAKEN_KEYS[currency]: ticker}})

    async def yadio(request: Request) -> Response:
        if emulator.down:
            return Response("Service Unavailable", status_code=503)
        stamp = int((time.time() - emulator.yadio_age_seconds) * 1000)
        table = {k: float(v) for k, v in emulator.prices.items()}
        return JSONResponse({"BTC": table, "base": "BTC", "timestamp": stamp})

    async def control(request: Request) -> Response:
        body = await request.json()
        for currency, price in (body.get("prices") or {}).items():
            emulator.prices[currency.upper()] = Decimal(str(price))
        if "yadio_age_seconds" in body:
            emulator.yadio_age_seconds = float(body["yadio_age_seconds"])
        if "down" in body:
            emulator.down = bool(body["down"])
        return JSONResponse({k: str(v) for k, v in emulator.prices.items()})

    app = Starlette(
        routes=[
            Route("/0/public/Ticker", kraken),
            Route("/exrates/BTC", yadio),
            Route("/_sim/rates", control, methods=["POST"]),
        ]
    )
    app.state.emulator = emulator
    return app
