"""A ledger with some history, for the transparency and report tests: four sales (one over
Lightning, one without a referrer), a refund after a payout, a paid payout and one waiting for
approval; and the stack they run on (payouts over the Lightning emulators, the CLI pointed at
the same database)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import BTCPaySim, Stack, close_stack
from tests.helpers import create_user, invoice_status, wait_until
from tests.lightningkit import Lightning
from tests.payoutkit import affiliate, open_payout_stack, payout, settle_payouts


@pytest.fixture
async def stack(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("SATSHARE_DATABASE__URL", database_url)  # for the CLI
    running = await open_payout_stack(
        database_url, btcpay, lightning, payouts={"auto_approve_max_sats": 10_000}
    )
    yield running
    await close_stack(running)


async def sale(
    stack: Stack, lightning: Lightning, referrer: int | None, provider: str = "btcpay"
) -> str:
    buyer = await create_user(
        stack.client, "buyer", **({"referral_id": referrer} if referrer else {})
    )
    response = await stack.client.post(
        "/api/v1/subscriptions",
        json={"user_id": buyer["user_id"], "subscription_type": "monthly", "provider": provider},
    )
    assert response.status_code == 201, response.text
    order = response.json()
    invoice = order["invoice"]
    if provider == "lnbits":
        async with httpx.AsyncClient(timeout=30, base_url=lightning.lnbits_server.url) as control:
            paid = await control.post(f"/_sim/payments/{invoice['provider_invoice_id']}/pay")
            assert paid.status_code == 200, paid.text
    else:
        await stack.btcpay.pay(invoice["provider_invoice_id"])

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    return str(invoice["id"])


async def history(stack: Stack, lightning: Lightning) -> dict[str, Any]:
    """Four sales (one over Lightning, one without a referrer), a refund after a payout, a
    paid payout and one waiting for approval."""
    alice = await affiliate(stack)
    refunded = await sale(stack, lightning, alice)
    await sale(stack, lightning, alice)
    lightning_invoice = await sale(stack, lightning, alice, provider="lnbits")
    await sale(stack, lightning, None)
    first = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("alice")},
    )
    assert first.json()["status"] == "awaiting_approval"
    await stack.client.post(f"/api/v1/payouts/{first.json()['payout_id']}/approve")
    await settle_payouts(stack)
    assert (await payout(stack.client, first.json()["payout_id"]))["status"] == "paid"
    refund = await stack.client.post(
        f"/api/v1/invoices/{refunded}/refund", json={"note": "paid back from the owner's wallet"}
    )
    assert refund.status_code == 200, refund.text
    waiting = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 25_000, "destination": lightning.address("alice")},
    )
    assert waiting.json()["status"] == "awaiting_approval"
    await stack.container.sealer.flush()
    return {"alice": alice, "refunded": refunded, "lightning": lightning_invoice}
