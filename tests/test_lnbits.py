"""LNbits rail: the adapter against the LNbits emulator over HTTP, and BOLT11 vectors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from bolt11 import decode
from sqlalchemy import select

from satshare.payments import flows
from satshare.payments.models import Payment
from satshare.sim.lnbits import LNbitsEmulator, build_app
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, create_user, invoice_status, wait_until
from tests.servers import RunningServer, start_server

VECTORS = json.loads((Path(__file__).parent / "data" / "vectors.json").read_text())
INVOICE_KEY, ADMIN_KEY = "lnbits-invoice-key-0123", "lnbits-admin-key-4567"


def test_bolt11_spec_vector_decodes() -> None:
    example = VECTORS["bolt11_example"]
    decoded = decode(example["invoice"])
    assert decoded.amount_msat == example["amount_msat"]
    assert decoded.payment_hash == example["payment_hash"]
    assert decoded.description == example["description"]
    assert decoded.expiry == example["expiry_s"]
    assert decoded.date == example["timestamp"]
    assert decoded.payee == example["payee_pubkey"]


def test_preimage_check() -> None:
    from satshare.providers.lnbits import preimage_matches

    preimage = "11" * 32
    digest = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    assert preimage_matches(preimage, digest)
    assert not preimage_matches("22" * 32, digest)
    assert not preimage_matches("not hex", digest)
    assert not preimage_matches(None, digest)


@dataclass
class LNbitsSim:
    emulator: LNbitsEmulator
    server: RunningServer

    async def pay(self, payment_hash: str, webhook: bool = True) -> Any:
        async with httpx.AsyncClient(timeout=30, base_url=self.server.url) as client:
            response = await client.post(
                f"/_sim/payments/{payment_hash}/pay", params={"webhook": str(webhook).lower()}
            )
            return response


@pytest.fixture
async def lnbits() -> AsyncIterator[LNbitsSim]:
    emulator = LNbitsEmulator(invoice_key=INVOICE_KEY, admin_key=ADMIN_KEY)
    server = await start_server(build_app(emulator))
    yield LNbitsSim(emulator, server)
    await server.stop()
    await emulator.aclose()


@pytest.fixture
async def stack(database_url: str, btcpay: BTCPaySim, lnbits: LNbitsSim) -> AsyncIterator[Stack]:
    plans = [
        {"id": "monthly", "title": "Monthly", "price_sats": 21_000, "duration_days": 30},
        {
            "id": "zap",
            "title": "Lightning only",
            "price_sats": 1_000,
            "duration_days": 7,
            "providers": ["lnbits"],
        },
    ]
    running = await open_stack(
        database_url,
        btcpay,
        lnbits={"url": lnbits.server.url, "invoice_key": INVOICE_KEY},
        plans=plans,
    )
    yield running
    await close_stack(running)


async def _buy(
    stack: Stack, plan: str = "monthly", provider: str | None = "lnbits"
) -> dict[str, Any]:
    user = await create_user(stack.client, "buyer")
    body: dict[str, Any] = {"user_id": user["user_id"], "subscription_type": plan}
    if provider:
        body["provider"] = provider
    response = await stack.client.post("/api/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_lightning_invoice_settles_by_webhook_with_preimage_proof(
    stack: Stack, lnbits: LNbitsSim
) -> None:
    order = await _buy(stack)
    invoice = order["invoice"]
    assert invoice["provider"] == "lnbits"
    decoded = decode(invoice["payment_request"])
    assert decoded.amount_msat == 21_000_000
    assert decoded.payment_hash == invoice["provider_invoice_id"]
    assert invoice["address"] is None
    assert (await lnbits.pay(invoice["provider_invoice_id"])).status_code == 200
    await lnbits.emulator.wait_idle()
    ((_, body, status),) = lnbits.emulator.webhooks_sent
    assert status == 200
    assert isinstance(json.loads(body), str)  # double-encoded, as LNbits >= 1.1 sends it
    await wait_until(lambda: _status_is(stack, order["subscription_id"], "settled"))
    async with stack.db.reading() as session:
        payment = (await session.execute(select(Payment))).scalar_one()
    assert payment.proof is not None
    assert (
        hashlib.sha256(bytes.fromhex(payment.proof)).hexdigest() == invoice["provider_invoice_id"]
    )


async def _status_is(stack: Stack, subscription_id: int, status: str) -> bool:
    return await invoice_status(stack.client, subscription_id) == status


async def test_lost_webhook_is_recovered_by_the_reconciler(stack: Stack, lnbits: LNbitsSim) -> None:
    order = await _buy(stack)
    await lnbits.pay(order["invoice"]["provider_invoice_id"], webhook=False)
    assert await invoice_status(stack.client, order["subscription_id"]) == "new"
    report = await flows.reconcile(stack.container.payments)
    assert report.outcomes.get("settled") == 1


async def test_unsigned_or_forged_triggers_are_refused(stack: Stack, lnbits: LNbitsSim) -> None:
    order = await _buy(stack)
    payment_hash = order["invoice"]["provider_invoice_id"]
    body = json.dumps(json.dumps({"payment_hash": payment_hash})).encode()
    before = await stack.counts()
    async with stack.anonymous() as anon:
        for params in (
            {},
            {"ref": order["invoice"]["id"]},
            {"ref": order["invoice"]["id"], "sig": "00"},
        ):
            response = await anon.post("/api/v1/webhooks/lnbits", content=body, params=params)
            assert_problem(response, 401)
    assert await stack.counts() == before
    # A genuine URL for an unpaid invoice changes nothing: the payment is re-fetched, and as
    # LNbits does not show it paid the call is not acknowledged (retry later), nor is the
    # event kept as handled.
    provider = stack.container.payments.providers["lnbits"]
    signed = provider.signed_webhook("/api/v1/webhooks/lnbits", order["invoice"]["id"])  # type: ignore[attr-defined]
    async with stack.anonymous() as anon:
        response = await anon.post(signed, content=body)
    assert_problem(response, 503)
    assert response.json()["type"] == "/problems/retry-later"
    assert response.headers["retry-after"] == "10"
    assert await invoice_status(stack.client, order["subscription_id"]) == "new"
    # Then paid: the same (legitimate) URL settles it, and a repeat is a duplicate.
    await lnbits.pay(payment_hash, webhook=False)
    paid_body = json.dumps({"payment_hash": payment_hash}).encode()
    async with stack.anonymous() as anon:
        settled = await anon.post(signed, content=paid_body)
        assert settled.json()["status"] == "settled"
        again = await anon.post(signed, content=paid_body)
        assert again.json()["status"] == "duplicate"
    assert await invoice_status(stack.client, order["subscription_id"]) == "settled"


async def test_expired_lightning_invoice(stack: Stack, lnbits: LNbitsSim) -> None:
    order = await _buy(stack)
    async with httpx.AsyncClient(timeout=30, base_url=lnbits.server.url) as client:
        await client.post(f"/_sim/payments/{order['invoice']['provider_invoice_id']}/expire")
    await flows.reconcile(stack.container.payments)
    assert await invoice_status(stack.client, order["subscription_id"]) == "expired"
    paid = await lnbits.pay(order["invoice"]["provider_invoice_id"])
    assert paid.status_code == 422  # an expired Lightning invoice cannot be paid at all


async def test_wrong_invoice_from_lnbits_is_never_shown(stack: Stack, lnbits: LNbitsSim) -> None:
    lnbits.emulator.tamper_amount = True
    user = await create_user(stack.client, "buyer")
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/subscriptions",
        json={"user_id": user["user_id"], "subscription_type": "monthly", "provider": "lnbits"},
    )
    assert "21001000 msat, not 21000000" in assert_problem(response, 502)["detail"]
    assert await stack.counts() == before


async def test_lnbits_down_is_502_and_writes_nothing(stack: Stack, lnbits: LNbitsSim) -> None:
    lnbits.emulator.api_down = True
    user = await create_user(stack.client, "buyer")
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/subscriptions",
        json={"user_id": user["user_id"], "subscription_type": "monthly", "provider": "lnbits"},
    )
    assert "lnbits" in assert_problem(response, 502)["detail"].lower()
    assert await stack.counts() == before


async def test_plan_rails_and_default_rail(stack: Stack) -> None:
    default = await _buy(stack, "monthly", provider=None)
    assert default["invoice"]["provider"] == "btcpay"  # the first enabled rail
    only_lightning = await _buy(stack, "zap", provider=None)
    assert only_lightning["invoice"]["provider"] == "lnbits"
    user = await create_user(stack.client, "other")
    refused = await stack.client.post(
        "/api/v1/subscriptions",
        json={"user_id": user["user_id"], "subscription_type": "zap", "provider": "btcpay"},
    )
    assert "accepts: lnbits" in assert_problem(refused, 422)["detail"]
