"""BitPay rail: the adapter against the BitPay emulator; IPNs are triggers, fulfilment only
on confirmed/complete."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from satshare.payments import flows
from satshare.sim.bitpay import BitPayEmulator, build_app
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, create_user, invoice_status, wait_until
from tests.servers import RunningServer, start_server

TOKEN = "bitpay-pos-token-0123456789"


@pytest.fixture
async def bitpay() -> AsyncIterator[tuple[BitPayEmulator, RunningServer]]:
    emulator = BitPayEmulator(token=TOKEN)
    server = await start_server(build_app(emulator))
    emulator.base_url = server.url
    yield emulator, server
    await server.stop()
    await emulator.aclose()


@pytest.fixture
async def stack(
    database_url: str, btcpay: BTCPaySim, bitpay: tuple[BitPayEmulator, RunningServer]
) -> AsyncIterator[Stack]:
    running = await open_stack(
        database_url,
        btcpay,
        bitpay={"url": bitpay[1].url, "token": TOKEN},
        payments={"default_provider": "bitpay"},
    )
    yield running
    await close_stack(running)


async def control(server: RunningServer, invoice_id: str, action: str, **body: Any) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=server.url) as client:
        response = await client.post(f"/_sim/invoices/{invoice_id}/{action}", json=body)
        response.raise_for_status()


async def _buy(stack: Stack) -> dict[str, Any]:
    user = await create_user(stack.client, "buyer")
    response = await stack.client.post(
        "/api/v1/subscriptions", json={"user_id": user["user_id"], "subscription_type": "monthly"}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _status(stack: Stack, order: dict[str, Any]) -> str:
    return await invoice_status(stack.client, order["subscription_id"])


async def test_fulfilled_only_when_confirmed(
    stack: Stack, bitpay: tuple[BitPayEmulator, RunningServer]
) -> None:
    emulator, server = bitpay
    order = await _buy(stack)
    invoice = order["invoice"]
    assert invoice["provider"] == "bitpay"
    assert invoice["provider_checkout_url"].startswith(server.url)
    remote = emulator.invoices[invoice["provider_invoice_id"]]
    assert remote.sats == 50_000 and remote.order_id == invoice["id"]
    await control(server, remote.id, "pay")
    await emulator.wait_idle()
    await wait_until(lambda: _is(stack, order, "processing"))
    assert (await stack.client.get("/api/v1/transactions")).json()[
        "items"
    ] == []  # paid ≠ confirmed
    await control(server, remote.id, "confirmed")
    await emulator.wait_idle()
    await wait_until(lambda: _is(stack, order, "settled"))
    (_, _, status), *_ = emulator.ipns
    assert status == 200
    await control(server, remote.id, "complete")  # a later IPN: nothing more happens
    await emulator.wait_idle()
    assert len((await stack.client.get("/api/v1/transactions")).json()["items"]) == 1


async def _is(stack: Stack, order: dict[str, Any], status: str) -> bool:
    return await _status(stack, order) == status


async def test_unsigned_ipn_is_refused_and_partial_never_settles(
    stack: Stack, bitpay: tuple[BitPayEmulator, RunningServer]
) -> None:
    emulator, server = bitpay
    order = await _buy(stack)
    remote_id = order["invoice"]["provider_invoice_id"]
    forged = json.dumps(
        {
            "event": {"code": 1005, "name": "invoice_confirmed"},
            "data": {"id": remote_id, "status": "confirmed"},
        }
    )
    before = await stack.counts()
    async with stack.anonymous() as anon:
        response = await anon.post("/api/v1/webhooks/bitpay", content=forged)
    assert_problem(response, 401)
    assert await stack.counts() == before
    await control(server, remote_id, "pay", sats=10_000)
    await emulator.wait_idle()
    await flows.reconcile(stack.container.payments)
    assert await _status(stack, order) == "new"
    await control(server, remote_id, "expire")
    await emulator.wait_idle()
    await flows.reconcile(stack.container.payments)
    assert await _status(stack, order) == "expired"
    assert (await stack.client.get("/api/v1/transactions")).json()["items"] == []


async def test_bitpay_down(stack: Stack, bitpay: tuple[BitPayEmulator, RunningServer]) -> None:
    bitpay[0].api_down = True
    user = await create_user(stack.client, "buyer")
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/subscriptions", json={"user_id": user["user_id"], "subscription_type": "monthly"}
    )
    assert "BitPay" in assert_problem(response, 502)["detail"]
    assert await stack.counts() == before


async def test_overpaid_and_reordered_ipns_settle_once(
    stack: Stack, bitpay: tuple[BitPayEmulator, RunningServer]
) -> None:
    emulator, server = bitpay
    order = await _buy(stack)
    remote_id = order["invoice"]["provider_invoice_id"]
    emulator.invoices[remote_id].notification_url = None  # hold the IPNs back
    await control(server, remote_id, "pay", sats=60_000)
    await control(server, remote_id, "confirmed")
    await control(server, remote_id, "complete")
    provider = stack.container.payments.providers["bitpay"]
    signed = provider._webhook_secret  # type: ignore[attr-defined]
    from satshare.security import signed_callback_url

    url = signed_callback_url("/api/v1/webhooks/bitpay", signed, order["invoice"]["id"])
    async with stack.anonymous() as anon:
        # The later event first, then the earlier ones, then a repeat.
        for name in (
            "invoice_completed",
            "invoice_confirmed",
            "invoice_paidInFull",
            "invoice_completed",
        ):
            body = json.dumps({"event": {"name": name}, "data": {"id": remote_id}})
            response = await anon.post(url, content=body)
            assert response.status_code == 200 and response.content == b""
    entries = (await stack.client.get("/api/v1/transactions")).json()["items"]
    assert len(entries) == 1
    postings = {p["account"]: p["amount_sats"] for p in entries[0]["postings"]}
    assert postings["clearing:bitpay"] == 60_000
    assert postings[f"payable:customer:{order['user_id']}"] == -10_000
