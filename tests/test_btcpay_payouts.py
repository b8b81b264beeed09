"""Payouts through BTCPay Server's store payouts (payouts.provider: btcpay), against the
emulator over HTTP: on-chain and Lightning Address, a processor that pays later, a payout
canceled in BTCPay, a create that times out (found again by our key, never created twice),
and BTCPay down (the money goes back to the affiliate)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from satshare.payouts import flows
from satshare.sim.lightning import RegtestWallet
from tests.conftest import BTCPaySim, Stack, close_stack
from tests.lightningkit import Lightning
from tests.payoutkit import (
    COMMISSION,
    affiliate,
    balance,
    earn,
    open_payout_stack,
    payout,
    settle_payouts,
)


@pytest.fixture
async def stack(database_url: str, btcpay: BTCPaySim, lightning: Lightning) -> AsyncIterator[Stack]:
    running = await open_payout_stack(
        database_url, btcpay, lightning, payouts={"provider": "btcpay"}
    )
    yield running
    await close_stack(running)


async def _request(stack: Stack, user_id: int, amount: int, destination: str) -> dict[str, Any]:
    response = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": user_id, "amount_sats": amount, "destination": destination},
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _sim_payouts(btcpay: BTCPaySim) -> list[Any]:
    return list(btcpay.emulator.payouts.payouts.values())


async def test_onchain_and_lightning_address_payouts(
    stack: Stack, btcpay: BTCPaySim, lightning: Lightning
) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    address = RegtestWallet().next_address()
    onchain = await _request(stack, alice, 12_000, address)
    ln = await _request(stack, alice, 8_000, lightning.address("alice"))
    await settle_payouts(stack)
    paid_onchain = await payout(stack.client, onchain["payout_id"])
    paid_ln = await payout(stack.client, ln["payout_id"])
    assert paid_onchain["status"] == paid_ln["status"] == "paid"
    assert len(paid_onchain["proof"]) == 64  # the txid BTCPay reported
    first, second = _sim_payouts(btcpay)
    assert (first.method, first.destination, first.amount_sats) == ("BTC-CHAIN", address, 12_000)
    assert first.as_json()["originalAmount"] == "0.00012000"
    assert first.metadata["satshareIdempotencyKey"] == f"satshare-payout-{onchain['payout_id']}"
    assert (second.method, second.destination) == ("BTC-LN", lightning.address("alice"))
    assert paid_ln["proof"] == second.proof["preimage"]
    money = await balance(stack.client, alice)
    assert (money["paid_out_sats"], money["balance_sats"]) == (20_000, COMMISSION - 20_000)


async def test_a_processor_that_pays_later_and_a_payout_canceled_in_btcpay(
    stack: Stack, btcpay: BTCPaySim
) -> None:
    btcpay.emulator.payouts.processor = "manual"
    stack.container.payouts.stale_after = timedelta(0)  # ask at every run
    alice = await affiliate(stack)
    await earn(stack, alice)
    wallet = RegtestWallet()
    later = await _request(stack, alice, 10_000, wallet.next_address())
    canceled = await _request(stack, alice, 5_000, wallet.next_address())
    await settle_payouts(stack)
    assert (await payout(stack.client, later["payout_id"]))["status"] == "sending"
    sim_later, sim_canceled = _sim_payouts(btcpay)
    assert sim_later.state == "AwaitingPayment"
    await btcpay.control("POST", f"/_sim/payouts/{sim_later.id}/complete")
    await btcpay.control("POST", f"/_sim/payouts/{sim_canceled.id}/cancel")
    assert await flows.reconcile(stack.container.payouts) == 2
    done = await payout(stack.client, later["payout_id"])
    assert done["status"] == "paid" and done["proof"] == sim_later.proof["id"]
    failed = await payout(stack.client, canceled["payout_id"])
    assert failed["status"] == "failed" and "canceled in BTCPay" in failed["failure"]
    money = await balance(stack.client, alice)
    assert money["available_sats"] == COMMISSION - 10_000  # the canceled 5,000 came back


async def test_a_create_that_times_out_is_found_again_never_made_twice(
    stack: Stack, btcpay: BTCPaySim
) -> None:
    btcpay.emulator.payouts.fail_after_create = True  # created, then a 504
    alice = await affiliate(stack)
    await earn(stack, alice)
    created = await _request(stack, alice, 10_000, RegtestWallet().next_address())
    await settle_payouts(stack)
    done = await payout(stack.client, created["payout_id"])
    assert done["status"] == "paid", done
    assert len(_sim_payouts(btcpay)) == 1
    assert await flows.send_due(stack.container.payouts) == 0


async def test_btcpay_down_leaves_it_unknown_then_returns_the_money(
    stack: Stack, btcpay: BTCPaySim
) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    btcpay.emulator.api_down = True
    created = await _request(stack, alice, 10_000, RegtestWallet().next_address())
    await settle_payouts(stack)
    assert (await payout(stack.client, created["payout_id"]))["status"] == "unknown"
    assert (await balance(stack.client, alice))["available_sats"] == COMMISSION - 10_000
    assert await flows.reconcile(stack.container.payouts) == 0  # still no answer: still held
    btcpay.emulator.api_down = False
    assert await flows.reconcile(stack.container.payouts) == 1
    failed = await payout(stack.client, created["payout_id"])
    assert failed["status"] == "failed" and "never reached" in failed["failure"]
    assert _sim_payouts(btcpay) == []
    assert (await balance(stack.client, alice))["available_sats"] == COMMISSION
