"""Helpers for payout tests: affiliates that earn, payouts requested and read back."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import BTCPaySim, Stack, open_stack
from tests.helpers import buy, create_user, invoice_status, wait_until
from tests.lightningkit import ADMIN_KEY, INVOICE_KEY, Lightning

COMMISSION = 25_000  # half of the 50,000 sat monthly plan


async def open_payout_stack(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning, **overrides: Any
) -> Stack:
    payouts = {
        "network": "regtest",
        "min_sats": 1_000,
        "auto_approve_max_sats": 30_000,
        "timeout_seconds": 5,
        **overrides.pop("payouts", {}),
    }
    stack = await open_stack(
        database_url,
        btcpay,
        lnbits={
            "url": lightning.lnbits_server.url,
            "invoice_key": INVOICE_KEY,
            "admin_key": ADMIN_KEY,
        },
        payouts=payouts,
        **overrides,
    )
    lightning.reachable_from(stack.container)
    return stack


async def earn(stack: Stack, affiliate_id: int, times: int = 1) -> None:
    """A referred buyer pays for the monthly plan through BTCPay: one commission each."""
    for _ in range(times):
        buyer = await create_user(stack.client, "buyer", referral_id=affiliate_id)
        order = await buy(stack.client, buyer["user_id"])
        await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])

        async def settled(subscription_id: int = order["subscription_id"]) -> bool:
            return await invoice_status(stack.client, subscription_id) == "settled"

        await wait_until(settled)


async def affiliate(stack: Stack, *, accept: bool = True) -> int:
    user = await create_user(stack.client, "affiliate")
    if accept:
        response = await stack.client.post(
            f"/api/v1/affiliates/{user['user_id']}/terms-acceptance",
            json={"version": stack.container.settings.affiliate.terms_version},
        )
        assert response.status_code == 201, response.text
    return int(user["user_id"])


async def balance(client: httpx.AsyncClient, user_id: int) -> dict[str, int]:
    response = await client.get(f"/api/v1/affiliates/{user_id}")
    assert response.status_code == 200, response.text
    data: dict[str, int] = response.json()["balance"]
    return data


async def payout(client: httpx.AsyncClient, payout_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/payouts/{payout_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def settle_payouts(stack: Stack) -> None:
    """Let the background sender finish what it is doing, then run it once more."""
    await stack.container.payout_runner.flush()
