"""Fiat-priced plans: converted at the bid, rounded up, the rate locked on the invoice;
a stale or unreachable rate refuses the invoice and writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest

from satshare.sim.rates import RatesEmulator, build_app
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, create_user
from tests.servers import RunningServer, start_server

PLANS: list[dict[str, Any]] = [
    {
        "id": "usd",
        "title": "Dollar plan",
        "price": {"amount": "9.99", "currency": "USD"},
        "duration_days": 30,
    },
    {
        "id": "rub",
        "title": "Rouble plan",
        "price": {"amount": "990", "currency": "RUB"},
        "duration_days": 30,
    },
    {"id": "sats", "title": "Sats plan", "price_sats": 21_000, "duration_days": 30},
]


@pytest.fixture
async def rates() -> AsyncIterator[tuple[RatesEmulator, RunningServer]]:
    emulator = RatesEmulator()
    server = await start_server(build_app(emulator))
    yield emulator, server
    await server.stop()


async def _stack(database_url: str, btcpay: BTCPaySim, **rates: Any) -> Stack:
    return await open_stack(database_url, btcpay, plans=PLANS, rates=rates)


def expected_sats(amount: str, price: Decimal) -> int:
    return int((Decimal(amount) * 100_000_000 / price).to_integral_value(rounding=ROUND_CEILING))


async def _buy(stack: Stack, plan: str) -> Any:
    user = await create_user(stack.client, "buyer")
    return await stack.client.post(
        "/api/v1/subscriptions", json={"user_id": user["user_id"], "subscription_type": plan}
    )


async def test_kraken_bid_rounded_up_and_locked(
    database_url: str, btcpay: BTCPaySim, rates: tuple[RatesEmulator, RunningServer]
) -> None:
    emulator, server = rates
    stack = await _stack(database_url, btcpay, source="kraken", url=server.url)
    try:
        types = {
            t["subscription_type"]: t
            for t in (await stack.client.get("/api/v1/subscriptions/types")).json()
        }
        assert types["usd"]["price_sats"] is None
        assert types["usd"]["price"] == {"amount": "9.99", "currency": "USD"}
        response = await _buy(stack, "usd")
        assert response.status_code == 201, response.text
        invoice = response.json()["invoice"]
        bid = emulator.prices["USD"] - Decimal("0.10")
        assert invoice["amount_sats"] == expected_sats("9.99", bid)
        assert (invoice["fiat_amount"], invoice["fiat_currency"]) == ("9.99", "USD")
        assert Decimal(invoice["rate"]) == bid
        assert invoice["rate_source"] == "kraken"
        # The price moves; the invoice keeps its rate and amount.
        emulator.prices["USD"] = Decimal("50000")
        again = (
            await stack.client.get(f"/api/v1/subscriptions/{response.json()['subscription_id']}")
        ).json()
        assert again["latest_invoice"]["amount_sats"] == invoice["amount_sats"]
        # Sats plans are untouched by rates.
        assert (await _buy(stack, "sats")).json()["invoice"]["rate"] is None
        # Kraken has no RUB market: a clear refusal, nothing written.
        before = await stack.counts()
        refused = await _buy(stack, "rub")
        assert "RUB" in assert_problem(refused, 503)["detail"]
        assert (await stack.counts())["invoices"] == before["invoices"]
    finally:
        await close_stack(stack)


async def test_yadio_stale_rate_is_refused(
    database_url: str, btcpay: BTCPaySim, rates: tuple[RatesEmulator, RunningServer]
) -> None:
    emulator, server = rates
    stack = await _stack(database_url, btcpay, source="yadio", url=server.url, max_age_seconds=300)
    try:
        ok = await _buy(stack, "rub")
        assert ok.status_code == 201, ok.text
        assert ok.json()["invoice"]["amount_sats"] == expected_sats("990", emulator.prices["RUB"])
        emulator.yadio_age_seconds = 1800
        before = await stack.counts()
        stale = await _buy(stack, "rub")
        detail = assert_problem(stale, 503)["detail"]
        assert "old" in detail and "max_age_seconds" in detail
        assert (await stack.counts())["invoices"] == before["invoices"]
        invoices_at_processor = len(btcpay.emulator.invoices)
        emulator.down = True
        down = await _buy(stack, "rub")
        assert assert_problem(down, 503)["type"] == "/problems/rate-unavailable"
        assert len(btcpay.emulator.invoices) == invoices_at_processor  # never reached BTCPay
    finally:
        await close_stack(stack)


async def test_fixed_and_btcpay_sources(database_url: str, btcpay: BTCPaySim) -> None:
    stack = await _stack(
        database_url, btcpay, source="fixed", fixed={"USD": "100000", "RUB": "10000000"}
    )
    try:
        invoice = (await _buy(stack, "usd")).json()["invoice"]
        assert invoice["amount_sats"] == 9_990  # 9.99 / 100,000 BTC
        assert invoice["rate_source"] == "fixed"
    finally:
        await close_stack(stack)
    stack = await _stack(database_url, btcpay, source="btcpay")
    try:
        invoice = (await _buy(stack, "usd")).json()["invoice"]
        assert invoice["rate_source"] == "btcpay"
        assert invoice["amount_sats"] == expected_sats("9.99", btcpay.emulator.rates["USD"])
    finally:
        await close_stack(stack)


def test_plan_needs_exactly_one_price() -> None:
    from pydantic import ValidationError

    from satshare.config import PlanSettings

    with pytest.raises(ValidationError, match="exactly one"):
        PlanSettings(id="x", title="X", duration_days=1)
    with pytest.raises(ValidationError, match="exactly one"):
        PlanSettings(
            id="x",
            title="X",
            duration_days=1,
            price_sats=5,
            price={"amount": "1", "currency": "USD"},
        )
    with pytest.raises(ValidationError, match="2 decimals"):
        PlanSettings(
            id="x", title="X", duration_days=1, price={"amount": "1.234", "currency": "USD"}
        )
