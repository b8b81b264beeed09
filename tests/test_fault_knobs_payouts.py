"""Every payout provider (LNbits, BTCPay store payouts) under the emulators' fault knobs
(sim/faults.py), through the real payout flows and the running stack.

A send that may have gone out (slower than our timeout, done then failed, cut mid-answer)
leaves the payout ``unknown`` with its money held, never ``failed`` and never sent again,
while the provider cannot be asked or does not show it; it is recorded ``paid`` exactly once
when the provider shows it (LNbits by the payment hash we stored, BTCPay by our idempotency
key). A send refused before anything happened stays unknown too (a 503 or a cut connection
proves nothing) until an admin who checked releases it: then the money comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from satshare.payouts import flows
from satshare.payouts.service import Recheck
from satshare.sim.faults import Faults
from satshare.sim.lightning import RegtestWallet
from tests.conftest import BTCPaySim, Stack, close_stack
from tests.lightningkit import Lightning
from tests.payoutkit import COMMISSION, affiliate, balance, earn, open_payout_stack, payout

SLOW = 1.25  # past payouts.timeout_seconds: 1 (the emulators share the test's event loop)
AMOUNT = 3_000
#: Knobs on the send, with the provider's answers to "what became of it?" refused meanwhile.
MAY_HAVE_GONE_OUT: list[tuple[str, dict[str, Any]]] = [
    ("delay", {"delay": SLOW}),
    ("accept_then_fail", {"accept_then_fail": True}),
    ("die_mid_call", {"die_mid_call": True}),
]
REFUSED_BEFORE: list[tuple[str, dict[str, Any]]] = [
    ("fail_next", {"fail_next": 1}),
    ("die_before_effect", {"die_mid_call": True, "die_before_effect": True}),
]
#: Knobs on "what became of it?", each failing one check.
CHECK_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("fail_next", {"fail_next": 1}),
    ("delay", {"delay": SLOW}),
    ("accept_then_fail", {"accept_then_fail": True}),
    ("die_mid_call", {"die_mid_call": True}),
]


@dataclass
class Provider:
    name: str
    stack: Stack
    faults: Faults
    send_op: str
    check_op: str
    btcpay: BTCPaySim
    lightning: Lightning

    def destination(self) -> str:
        if self.name == "lnbits":
            return self.lightning.address("alice")
        return RegtestWallet().next_address()

    async def sent(self, payout_id: int) -> list[str]:
        """Proofs of what the provider sent for this payout (by what we stored for it)."""
        if self.name == "lnbits":
            async with self.stack.db.reading() as session:
                row = await flows.service.require(session, payout_id)
            sent = self.lightning.lnbits.outgoing.get(row.payment_hash or "")
            return [sent.preimage] if sent is not None and sent.status == "success" else []
        key = f"satshare-payout-{payout_id}"
        return [
            p.proof["id"]
            for p in self.btcpay.emulator.payouts.payouts.values()
            if p.metadata.get("satshareIdempotencyKey") == key and p.proof
        ]

    def sends(self) -> int:
        """Everything the provider has sent so far."""
        if self.name == "lnbits":
            return self.lightning.lnbits.sent_payments
        return len(self.btcpay.emulator.payouts.payouts)


@pytest.fixture(params=["lnbits", "btcpay"])
async def provider(
    request: pytest.FixtureRequest, database_url: str, btcpay: BTCPaySim, lightning: Lightning
) -> AsyncIterator[Provider]:
    name: str = request.param
    stack = await open_payout_stack(
        database_url, btcpay, lightning, payouts={"provider": name, "timeout_seconds": 1}
    )
    ctx = stack.container.payouts
    ctx.send_grace = timedelta(0)
    ctx.recheck = Recheck(first=timedelta(0), longest=timedelta(0))
    if name == "lnbits":
        chosen = Provider(
            name, stack, lightning.lnbits.faults, "pay", "fetch_payment", btcpay, lightning
        )
    else:
        faults = btcpay.emulator.payouts.faults
        chosen = Provider(name, stack, faults, "create_payout", "fetch_payout", btcpay, lightning)
    yield chosen
    await chosen.faults.wait_idle()
    await close_stack(stack)


async def _request(stack: Stack, user_id: int, destination: str) -> int:
    response = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": user_id, "amount_sats": AMOUNT, "destination": destination},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["payout_id"])


async def test_a_send_that_may_have_gone_out_is_held_until_the_provider_shows_it_paid(
    provider: Provider,
) -> None:
    stack, ctx = provider.stack, provider.stack.container.payouts
    alice = await affiliate(stack)
    await earn(stack, alice)
    for number, (fault, knobs) in enumerate(MAY_HAVE_GONE_OUT, start=1):
        sends_before = provider.sends()
        provider.faults.update({provider.send_op: knobs, provider.check_op: {"fail_next": 1000}})
        payout_id = await _request(stack, alice, provider.destination())
        await stack.container.payout_runner.flush()  # sent, and asked about at once
        held = await payout(stack.client, payout_id)
        assert held["status"] == "unknown", (fault, held)
        assert await flows.reconcile(ctx) == 0, fault  # still cannot be asked: still held
        assert (await payout(stack.client, payout_id))["status"] == "unknown", fault
        money = await balance(stack.client, alice)
        assert money["available_sats"] == COMMISSION - number * AMOUNT, fault
        await provider.faults.wait_idle()  # a slow provider finishes the send it was given
        provider.faults.clear()
        (proof,) = await provider.sent(payout_id)
        assert await flows.reconcile(ctx) == 1, fault
        done = await payout(stack.client, payout_id)
        assert (done["status"], done["proof"]) == ("paid", proof), fault
        assert await flows.reconcile(ctx) == 0 and await flows.send_due(ctx) == 0, fault
        assert provider.sends() == sends_before + 1, f"{fault}: sent twice"
        money = await balance(stack.client, alice)
        assert money["paid_out_sats"] == number * AMOUNT, fault
        assert money["balance_sats"] == COMMISSION - number * AMOUNT, fault
    if provider.name == "lnbits":
        assert provider.lightning.received_sats("alice") == [AMOUNT] * len(MAY_HAVE_GONE_OUT)

    # One more, cut mid-answer: every way of failing to answer "what became of it?" (refused,
    # too slow, failed, cut) decides nothing either; the first real answer does.
    paid_before = (await balance(stack.client, alice))["paid_out_sats"]
    provider.faults.update(
        {provider.send_op: {"die_mid_call": True}, provider.check_op: {"fail_next": 1000}}
    )
    payout_id = await _request(stack, alice, provider.destination())
    await stack.container.payout_runner.flush()
    provider.faults.clear()
    for check_fault, check_knobs in CHECK_FAULTS:
        provider.faults.update({provider.check_op: check_knobs})
        assert await flows.reconcile(ctx) == 0, check_fault
        await provider.faults.wait_idle()
        provider.faults.clear()
        assert (await payout(stack.client, payout_id))["status"] == "unknown", check_fault
        assert (await balance(stack.client, alice))["paid_out_sats"] == paid_before
    assert await flows.reconcile(ctx) == 1
    assert (await payout(stack.client, payout_id))["status"] == "paid"
    assert len(await provider.sent(payout_id)) == 1
    assert (await balance(stack.client, alice))["paid_out_sats"] == paid_before + AMOUNT


async def test_a_send_refused_before_anything_happened_is_released_only_by_an_admin(
    provider: Provider,
) -> None:
    stack, ctx = provider.stack, provider.stack.container.payouts
    alice = await affiliate(stack)
    await earn(stack, alice)
    for fault, knobs in REFUSED_BEFORE:
        provider.faults.update({provider.send_op: knobs})
        payout_id = await _request(stack, alice, provider.destination())
        await stack.container.payout_runner.flush()
        assert await flows.reconcile(ctx) == 0, fault  # the provider shows nothing: silence
        held = await payout(stack.client, payout_id)
        assert held["status"] == "unknown", (fault, held)
        assert (await balance(stack.client, alice))["available_sats"] == COMMISSION - AMOUNT
        released = await stack.client.post(
            f"/api/v1/payouts/{payout_id}/mark-failed",
            json={"reason": f"the provider shows nothing for it ({fault})"},
        )
        assert released.status_code == 200, released.text
        assert released.json()["status"] == "failed"
        assert (await balance(stack.client, alice))["available_sats"] == COMMISSION, fault
        assert await flows.reconcile(ctx) == 0 and await flows.send_due(ctx) == 0, fault
        assert await provider.sent(payout_id) == [], fault
    assert provider.sends() == 0
