"""Payouts through BTCPay Server's store payouts (payouts.provider: btcpay), against the
emulator over HTTP: on-chain and Lightning Address, a processor that pays later, a payout
canceled in BTCPay, a create that times out (found again by our key, never created twice),
a create slower than our timeout (unknown until BTCPay lists it paid: never released on
silence, never paid twice), and BTCPay down (unknown, escalated, released only by an admin)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from satshare.notifications.models import OutboxMessage as Outbox
from satshare.payouts import flows
from satshare.payouts.service import Recheck
from satshare.sim.lightning import RegtestWallet
from tests.conftest import BTCPAY_KEY, STORE_ID, BTCPaySim, Stack, close_stack
from tests.helpers import wait_until
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
    stack.container.payouts.send_grace = timedelta(0)  # ask at every run
    stack.container.payouts.recheck = Recheck(first=timedelta(0), longest=timedelta(0))
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
    stack.container.payouts.recheck = Recheck(first=timedelta(0), longest=timedelta(0))
    alice = await affiliate(stack)
    await earn(stack, alice)
    created = await _request(stack, alice, 10_000, RegtestWallet().next_address())
    await settle_payouts(stack)
    done = await payout(stack.client, created["payout_id"])
    assert done["status"] == "paid", done
    assert len(_sim_payouts(btcpay)) == 1
    assert await flows.send_due(stack.container.payouts) == 0


async def test_btcpay_down_leaves_it_unknown_until_an_admin_releases_it(
    stack: Stack, btcpay: BTCPaySim
) -> None:
    stack.container.payouts.recheck = Recheck(first=timedelta(0), longest=timedelta(0))
    alice = await affiliate(stack)
    await earn(stack, alice)
    btcpay.emulator.api_down = True
    created = await _request(stack, alice, 10_000, RegtestWallet().next_address())
    await settle_payouts(stack)
    assert (await payout(stack.client, created["payout_id"]))["status"] == "unknown"
    assert (await balance(stack.client, alice))["available_sats"] == COMMISSION - 10_000
    assert await flows.reconcile(stack.container.payouts) == 0  # still no answer: still held
    btcpay.emulator.api_down = False
    # BTCPay answers again and lists no such payout: silence, not proof. Still held.
    assert await flows.reconcile(stack.container.payouts) == 0
    still = await payout(stack.client, created["payout_id"])
    assert still["status"] == "unknown" and "does not list" in still["failure"]
    assert (await balance(stack.client, alice))["available_sats"] == COMMISSION - 10_000
    # After payouts.unknown_alert_minutes the admins are told, once.
    stack.container.payouts.alert_after = timedelta(0)
    await flows.reconcile(stack.container.payouts)
    await flows.reconcile(stack.container.payouts)
    assert await _outbox_kinds(stack, "admin.payout_unknown") == 1
    # An admin who checked BTCPay releases it; only then does the money come back.
    wrong = await stack.client.post(
        f"/api/v1/payouts/{created['payout_id']}/mark-failed", json={"reason": ""}
    )
    assert wrong.status_code == 422
    released = await stack.client.post(
        f"/api/v1/payouts/{created['payout_id']}/mark-failed",
        json={"reason": "BTCPay lists no payout with our key"},
    )
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "failed"
    assert _sim_payouts(btcpay) == []
    assert (await balance(stack.client, alice))["available_sats"] == COMMISSION
    again = await stack.client.post(
        f"/api/v1/payouts/{created['payout_id']}/mark-failed", json={"reason": "twice"}
    )
    assert again.status_code == 409


async def test_a_create_slower_than_the_timeout_is_paid_once_never_released(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning
) -> None:
    """The issue's scenario: BTCPay takes longer than payouts.timeout_seconds to create the
    payout, then pays it. SatShare must not call it failed meanwhile (the affiliate would
    withdraw the same money again), and must record it paid exactly once."""
    stack = await open_payout_stack(
        database_url, btcpay, lightning, payouts={"provider": "btcpay", "timeout_seconds": 1}
    )
    try:
        ctx = stack.container.payouts
        ctx.send_grace = timedelta(0)  # ask as early as possible: the worst case
        ctx.recheck = Recheck(first=timedelta(0), longest=timedelta(0))
        alice = await affiliate(stack)
        await earn(stack, alice)
        btcpay.emulator.payouts.create_delay = 2.5  # accepts, answers after our timeout
        created = await _request(stack, alice, 10_000, RegtestWallet().next_address())
        await settle_payouts(stack)
        first = await payout(stack.client, created["payout_id"])
        assert first["status"] == "unknown", first
        # The reconciler runs at once: BTCPay does not list it yet. Silence is not proof.
        assert await flows.reconcile(ctx) == 0
        assert (await payout(stack.client, created["payout_id"]))["status"] == "unknown"
        money = await balance(stack.client, alice)
        assert money["available_sats"] == COMMISSION - 10_000
        # The same money cannot be withdrawn again while the first payout is unknown.
        refused = await stack.client.post(
            "/api/v1/payouts",
            json={
                "user_id": alice,
                "amount_sats": COMMISSION,
                "destination": RegtestWallet().next_address(),
            },
        )
        assert refused.status_code == 422
        assert refused.json()["type"] == "/problems/insufficient-balance"

        # BTCPay finishes the slow create and pays it; the next check records it paid.
        async def made() -> bool:
            return len(_sim_payouts(btcpay)) == 1

        await wait_until(made, timeout=10)
        btcpay.emulator.payouts.create_delay = 0
        assert await flows.reconcile(ctx) == 1
        done = await payout(stack.client, created["payout_id"])
        assert done["status"] == "paid", done
        assert done["proof"] == _sim_payouts(btcpay)[0].proof["id"]
        assert len(_sim_payouts(btcpay)) == 1
        assert await flows.send_due(ctx) == 0
        assert await flows.reconcile(ctx) == 0
        money = await balance(stack.client, alice)
        assert (money["paid_out_sats"], money["balance_sats"]) == (10_000, COMMISSION - 10_000)
    finally:
        await close_stack(stack)


async def test_a_paid_answer_after_an_admin_released_it_takes_the_money_back(
    stack: Stack, btcpay: BTCPaySim
) -> None:
    ctx = stack.container.payouts
    ctx.send_grace = timedelta(0)
    ctx.recheck = Recheck(first=timedelta(0), longest=timedelta(0))
    alice = await affiliate(stack)
    await earn(stack, alice)
    btcpay.emulator.payouts.fail_next_creates = 1  # a 503: may or may not have been made
    created = await _request(stack, alice, 10_000, RegtestWallet().next_address())
    await settle_payouts(stack)
    assert (await payout(stack.client, created["payout_id"]))["status"] == "unknown"
    released = await stack.client.post(
        f"/api/v1/payouts/{created['payout_id']}/mark-failed",
        json={"reason": "not in BTCPay"},
    )
    assert released.json()["status"] == "failed"
    assert (await balance(stack.client, alice))["available_sats"] == COMMISSION
    # It turns out BTCPay had it after all (made by hand with our key, here), and paid it.
    order = flows.service.order_of(await _load(stack, created["payout_id"]))
    sim = await btcpay.control(
        "POST",
        f"/api/v1/stores/{STORE_ID}/payouts",
        headers={"Authorization": f"token {BTCPAY_KEY}"},
        json={
            "destination": order.destination,
            "amount": "0.0001",
            "payoutMethodId": "BTC-CHAIN",
            "approved": True,
            "metadata": {"satshareIdempotencyKey": order.idempotency_key},
        },
    )
    assert sim["state"] == "Completed"
    assert await flows.reconcile(ctx) == 1
    late = await payout(stack.client, created["payout_id"])
    assert late["status"] == "paid"
    money = await balance(stack.client, alice)
    assert (money["paid_out_sats"], money["available_sats"]) == (10_000, COMMISSION - 10_000)
    assert await _outbox_kinds(stack, "admin.payout_contradiction") == 1
    assert await flows.reconcile(ctx) == 0  # decided: no longer watched


async def _load(stack: Stack, payout_id: int) -> Any:
    async with stack.db.reading() as session:
        return await flows.service.require(session, payout_id)


async def _outbox_kinds(stack: Stack, kind: str) -> int:
    async with stack.db.reading() as session:
        rows = await session.execute(
            select(func.count()).select_from(Outbox).where(Outbox.kind == kind)
        )
        return int(rows.scalar_one())
