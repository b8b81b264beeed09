"""The emulators' fault knobs themselves (sim/faults.py): what each does on the wire, and the
settings route of every emulator that shows and sets them. The rails and payout providers
under these knobs: test_fault_knobs_rails.py and test_fault_knobs_payouts.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from satshare.sim import bitpay, btcpay, esplora, lnbits
from satshare.sim.faults import Faults
from tests.servers import RunningServer, start_server

KEY, STORE = "knob-api-key", "knob-store"
INVOICE = {"amount": "1000", "currency": "SATS"}


@pytest.fixture
async def server() -> AsyncIterator[tuple[btcpay.BTCPayEmulator, httpx.AsyncClient]]:
    emulator = btcpay.BTCPayEmulator(api_key=KEY, store_id=STORE)
    running = await start_server(btcpay.build_app(emulator))
    async with httpx.AsyncClient(
        base_url=running.url, headers={"Authorization": f"token {KEY}"}, timeout=1
    ) as client:
        yield emulator, client
    await emulator.faults.wait_idle()
    await running.stop()
    await emulator.aclose()


async def _create(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(f"/api/v1/stores/{STORE}/invoices", json=INVOICE)


async def test_fail_next_refuses_n_calls_and_does_nothing(
    server: tuple[btcpay.BTCPayEmulator, httpx.AsyncClient],
) -> None:
    emulator, client = server
    emulator.faults.create_invoice.fail_next = 2
    assert [(await _create(client)).status_code for _ in range(3)] == [503, 503, 200]
    assert len(emulator.invoices) == 1


async def test_accept_then_fail_does_the_work_then_answers_500(
    server: tuple[btcpay.BTCPayEmulator, httpx.AsyncClient],
) -> None:
    emulator, client = server
    emulator.faults.create_invoice.accept_then_fail = True
    refused = await client.post(f"/api/v1/stores/{STORE}/invoices", json={"amount": "-1"})
    assert refused.status_code == 422  # a refused call did nothing: the knob waits
    failed = await _create(client)
    assert failed.status_code == 500 and len(emulator.invoices) == 1
    assert (await _create(client)).status_code == 200  # once only


@pytest.mark.parametrize("before_effect", [False, True])
async def test_die_mid_call_cuts_the_answer_short(
    server: tuple[btcpay.BTCPayEmulator, httpx.AsyncClient], before_effect: bool
) -> None:
    emulator, client = server
    emulator.faults.create_invoice.die_mid_call = True
    emulator.faults.create_invoice.die_before_effect = before_effect
    with pytest.raises(httpx.RemoteProtocolError, match="without sending complete message body"):
        await _create(client)
    assert len(emulator.invoices) == (0 if before_effect else 1)
    assert (await _create(client)).status_code == 200  # once only


async def test_a_delayed_call_finishes_after_the_client_gave_up(
    server: tuple[btcpay.BTCPayEmulator, httpx.AsyncClient],
) -> None:
    emulator, client = server
    emulator.faults.create_invoice.delay = 1.25  # past the client's 1 s
    with pytest.raises(httpx.ReadTimeout):
        await _create(client)
    assert emulator.invoices == {}
    await emulator.faults.wait_idle()
    assert len(emulator.invoices) == 1


def _emulators() -> list[tuple[str, Callable[[], tuple[Starlette, Faults]], str]]:
    def btcpay_app() -> tuple[Starlette, Faults]:
        emulator = btcpay.BTCPayEmulator(api_key=KEY, store_id=STORE)
        return btcpay.build_app(emulator), emulator.faults

    def payouts_app() -> tuple[Starlette, Faults]:
        emulator = btcpay.BTCPayEmulator(api_key=KEY, store_id=STORE)
        return btcpay.build_app(emulator), emulator.payouts.faults

    def lnbits_app() -> tuple[Starlette, Faults]:
        emulator = lnbits.LNbitsEmulator(invoice_key="invoice-key", admin_key="admin-key")
        return lnbits.build_app(emulator), emulator.faults

    def bitpay_app() -> tuple[Starlette, Faults]:
        emulator = bitpay.BitPayEmulator(token="token")
        return bitpay.build_app(emulator), emulator.faults

    def esplora_app() -> tuple[Starlette, Faults]:
        emulator = esplora.EsploraEmulator()
        return esplora.build_app(emulator), emulator.faults

    return [
        ("btcpay", btcpay_app, "/_sim/settings"),
        ("btcpay payouts", payouts_app, "/_sim/payouts/settings"),
        ("lnbits", lnbits_app, "/_sim/settings"),
        ("bitpay", bitpay_app, "/_sim/settings"),
        ("esplora", esplora_app, "/_sim/settings"),
    ]


@pytest.mark.parametrize(("name", "build", "path"), _emulators(), ids=[e[0] for e in _emulators()])
async def test_every_settings_route_shows_and_sets_the_knobs(
    name: str, build: Callable[[], tuple[Starlette, Faults]], path: str
) -> None:
    app, faults = build()
    running: RunningServer = await start_server(app)
    try:
        async with httpx.AsyncClient(timeout=30, base_url=running.url) as client:
            shown = (await client.get(path)).json()["faults"]
            assert shown == faults.as_json()
            operation = next(iter(shown))
            assert shown[operation] == {
                "delay": 0.0,
                "fail_next": 0,
                "accept_then_fail": False,
                "die_mid_call": False,
                "die_before_effect": False,
            }
            knobs: dict[str, Any] = {"delay": 0.25, "fail_next": 3, "die_mid_call": True}
            response = await client.post(path, json={"faults": {operation: knobs}})
            assert response.status_code == 200, response.text
            assert faults[operation].fail_next == 3 and faults[operation].delay == 0.25
            before = faults.as_json()
            for wrong in (
                {"faults": {"no_such_operation": {"fail_next": 1}}},
                {"faults": {operation: {"fail_next": -1}}},
                {"faults": {operation: {"fail_next": 0, "delay": "soon"}}},
                {"faults": {operation: {"accept_then_fail": "yes"}}},
                {"faults": {operation: {"explode": True}}},
                {"faults": [operation]},
                [1, 2],
            ):
                refused = await client.post(path, json=wrong)
                assert refused.status_code == 422, (name, wrong, refused.text)
                assert faults.as_json() == before, (name, wrong)  # all or nothing
    finally:
        await running.stop()
        closing = getattr(app.state.emulator, "aclose", None)
        if closing is not None:
            await closing()
