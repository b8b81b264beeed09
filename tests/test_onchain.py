"""Watch-only on-chain rail: BIP84/BIP86 vectors, and the watcher against the Esplora
emulator — confirmations, partial/over/late payments, RBF replacement and re-orgs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from satshare.config import ConfigError, load_settings
from satshare.payments import flows
from satshare.payments.models import Payment
from satshare.sim.esplora import EsploraEmulator, build_app
from satshare.watchonly import WalletError, WatchOnlyWallet
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import REGTEST_TPUB, assert_problem, create_user, invoice_status
from tests.servers import RunningServer, start_server

VECTORS = json.loads((Path(__file__).parent / "data" / "vectors.json").read_text())


def test_bip84_vectors() -> None:
    v = VECTORS["bip84"]
    wallet = WatchOnlyWallet.from_xpub(v["account_zpub"], "wpkh", "mainnet")
    assert wallet.address(0) == v["receive"]["0"]
    assert wallet.address(1) == v["receive"]["1"]
    fingerprinted = WatchOnlyWallet(
        wallet.descriptor.replace("wpkh(", "wpkh([73c5da0a/84h/0h/0h]"), "mainnet"
    )
    assert fingerprinted.address(1) == v["receive"]["1"]
    assert fingerprinted.id != wallet.id  # another descriptor, another index space


def test_bip86_vectors() -> None:
    v = VECTORS["bip86"]
    wallet = WatchOnlyWallet.from_xpub(v["account_xpub"], "tr", "mainnet")
    assert wallet.address(0) == v["receive"]["0"]
    assert wallet.address(1) == v["receive"]["1"]


def test_wallet_refusals() -> None:
    with pytest.raises(WalletError, match="not for testnet"):
        WatchOnlyWallet.from_xpub(VECTORS["bip84"]["account_zpub"], "wpkh", "testnet")
    with pytest.raises(WalletError, match=r"must end in /\*"):
        WatchOnlyWallet(f"wpkh({VECTORS['bip32_tv1']['xpub']}/0/1)", "mainnet")
    with pytest.raises(WalletError, match="extended public key"):
        WatchOnlyWallet.from_xpub("zpubNOTAKEY", "wpkh", "mainnet")
    with pytest.raises(WalletError):
        WatchOnlyWallet("nonsense(", "mainnet")


def test_config_names_the_onchain_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "satshare.yaml"
    path.write_text(f"onchain:\n  xpub: {VECTORS['bip84']['account_zpub']}\n  network: regtest\n")
    with pytest.raises(ConfigError, match=r"onchain.*not for regtest"):
        load_settings(str(path))


@dataclass
class Chain:
    emulator: EsploraEmulator
    server: RunningServer

    async def control(self, action: str, **body: Any) -> Any:
        async with httpx.AsyncClient(timeout=30, base_url=self.server.url) as client:
            response = await client.post(f"/_sim/{action}", json=body)
            response.raise_for_status()
            return response.json()


@pytest.fixture
async def chain() -> AsyncIterator[Chain]:
    emulator = EsploraEmulator()
    server = await start_server(build_app(emulator))
    yield Chain(emulator, server)
    await server.stop()


def _onchain(chain: Chain, **extra: Any) -> dict[str, Any]:
    return {
        "xpub": REGTEST_TPUB,
        "network": "regtest",
        "esplora_url": chain.server.url,
        **extra,
    }


@pytest.fixture
async def stack(database_url: str, btcpay: BTCPaySim, chain: Chain) -> AsyncIterator[Stack]:
    running = await open_stack(
        database_url,
        btcpay,
        onchain=_onchain(chain, min_confirmations=2, gap_limit=3),
        payments={"default_provider": "onchain", "invoice_expiration_minutes": 15},
    )
    yield running
    await close_stack(running)


async def _buy(stack: Stack) -> dict[str, Any]:
    user = await create_user(stack.client, "buyer")
    response = await stack.client.post(
        "/api/v1/subscriptions", json={"user_id": user["user_id"], "subscription_type": "monthly"}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _settle(stack: Stack) -> dict[str, int]:
    report = await flows.reconcile(stack.container.payments)
    assert not report.errors, report.errors
    return report.outcomes


async def test_fresh_addresses_confirmation_policy_and_proof(stack: Stack, chain: Chain) -> None:
    first, second = await _buy(stack), await _buy(stack)
    wallet = WatchOnlyWallet.from_xpub(REGTEST_TPUB, "wpkh", "regtest")
    assert first["invoice"]["provider"] == "onchain"
    assert [first["invoice"]["address"], second["invoice"]["address"]] == [
        wallet.address(0),
        wallet.address(1),
    ]
    assert first["invoice"]["address"].startswith("bcrt1q")
    address = first["invoice"]["address"]
    paid = await chain.control("pay", address=address, sats=50_000)
    await _settle(stack)
    assert await invoice_status(stack.client, first["subscription_id"]) == "processing"
    await chain.control("mine", blocks=1)
    await _settle(stack)
    assert await invoice_status(stack.client, first["subscription_id"]) == "processing"  # 1 < 2
    await chain.control("mine", blocks=1)
    assert (await _settle(stack)).get("settled") == 1
    async with stack.db.reading() as session:
        payment = (await session.execute(select(Payment))).scalar_one()
    assert payment.proof == paid["txid"]
    assert payment.provider == "onchain"
    entry = (await stack.client.get("/api/v1/transactions")).json()["items"][0]
    assert {"account": "clearing:onchain", "amount_sats": 50_000} in entry["postings"]


async def test_rbf_replacement_never_counts_twice(stack: Stack, chain: Chain) -> None:
    order = await _buy(stack)
    address = order["invoice"]["address"]
    original = await chain.control("pay", address=address, sats=50_000)
    await _settle(stack)
    assert await invoice_status(stack.client, order["subscription_id"]) == "processing"
    # The payer replaces it, paying the same address again (same inputs, higher fee).
    await chain.control("replace", txid=original["txid"], address=address, sats=50_000)
    await chain.control("mine", blocks=2)
    await _settle(stack)
    async with stack.db.reading() as session:
        payment = (await session.execute(select(Payment))).scalar_one()
    assert payment.received_sats == 50_000  # not 100,000
    assert payment.overpaid_sats == 0


async def test_replacement_away_unconfirms(stack: Stack, chain: Chain) -> None:
    order = await _buy(stack)
    address = order["invoice"]["address"]
    original = await chain.control("pay", address=address, sats=50_000)
    await _settle(stack)
    assert await invoice_status(stack.client, order["subscription_id"]) == "processing"
    await chain.control(
        "replace",
        txid=original["txid"],
        address="bcrt1qelsewhere0000000000000000000000000",
        sats=49_000,
    )
    await _settle(stack)
    assert await invoice_status(stack.client, order["subscription_id"]) == "new"


async def test_reorg_before_enough_confirmations_unconfirms(stack: Stack, chain: Chain) -> None:
    order = await _buy(stack)
    address = order["invoice"]["address"]
    paid = await chain.control("pay", address=address, sats=50_000)
    await chain.control("mine", blocks=1)
    await _settle(stack)
    assert await invoice_status(stack.client, order["subscription_id"]) == "processing"
    # The block with the payment is orphaned and the payment double-spent away.
    await chain.control("reorg", depth=1, drop=[paid["txid"]])
    await chain.control("mine", blocks=2)
    await _settle(stack)
    assert await invoice_status(stack.client, order["subscription_id"]) == "new"
    assert (await stack.client.get("/api/v1/transactions")).json()["items"] == []


async def test_partial_then_over_payment(stack: Stack, chain: Chain) -> None:
    order = await _buy(stack)
    address = order["invoice"]["address"]
    await chain.control("pay", address=address, sats=20_000)
    await chain.control("mine", blocks=2)
    await _settle(stack)
    sub = (await stack.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    assert sub["latest_invoice"]["status"] == "new"
    await chain.control("pay", address=address, sats=40_000)
    await chain.control("mine", blocks=2)
    await _settle(stack)
    entry = (await stack.client.get("/api/v1/transactions")).json()["items"][0]
    postings = {p["account"]: p["amount_sats"] for p in entry["postings"]}
    assert postings["clearing:onchain"] == 60_000
    assert postings[f"payable:customer:{order['user_id']}"] == -10_000


async def test_late_payment_settles_flagged(stack: Stack, chain: Chain) -> None:
    from datetime import timedelta

    order = await _buy(stack)
    address = order["invoice"]["address"]
    from satshare.onchain.models import OnchainAddress

    async with stack.db.transaction() as session:
        row = (
            await session.execute(select(OnchainAddress).where(OnchainAddress.address == address))
        ).scalar_one()
        row.expires_at = row.expires_at - timedelta(minutes=30)
    await _settle(stack)
    assert await invoice_status(stack.client, order["subscription_id"]) == "expired"
    await chain.control("pay", address=address, sats=50_000)
    await chain.control("mine", blocks=2)
    await _settle(stack)
    async with stack.db.reading() as session:
        payment = (await session.execute(select(Payment))).scalar_one()
    assert payment.paid_late is True


async def test_gap_limit_is_respected(stack: Stack, chain: Chain) -> None:
    orders = [await _buy(stack) for _ in range(3)]  # gap limit 3 in this stack
    user = await create_user(stack.client, "fourth")
    before = await stack.counts()
    refused = await stack.client.post(
        "/api/v1/subscriptions", json={"user_id": user["user_id"], "subscription_type": "monthly"}
    )
    assert "gap limit" in assert_problem(refused, 409)["detail"]
    assert await stack.counts() == before
    # A payment to the last address opens the window again.
    await chain.control("pay", address=orders[2]["invoice"]["address"], sats=1)
    await _settle(stack)
    assert (
        await stack.client.post(
            "/api/v1/subscriptions",
            json={"user_id": user["user_id"], "subscription_type": "monthly"},
        )
    ).status_code == 201


async def test_esplora_down_writes_nothing(stack: Stack, chain: Chain) -> None:
    order = await _buy(stack)
    chain.emulator.api_down = True
    before = await stack.counts()
    report = await flows.reconcile(stack.container.payments)
    assert report.errors and "Esplora" in report.errors[0]
    assert await stack.counts() == before
    assert await invoice_status(stack.client, order["subscription_id"]) == "new"


@pytest.mark.integration  # the Esplora emulator on loopback
async def test_esplora_pagination(chain: Chain) -> None:
    """Esplora returns 25 confirmed transactions a page; the watcher reads them all."""
    from satshare.clock import SystemClock
    from satshare.providers.onchain import OnchainProvider

    address = "bcrt1qpagination00000000000000000000000000"
    for _ in range(30):
        chain.emulator.broadcast([(address, 1_000)])
        chain.emulator.mine(1)
    chain.emulator.broadcast([(address, 5)])

    class NoStore:
        async def allocate(self, *_: Any) -> str:
            raise AssertionError

        async def lookup(self, _: str) -> None:
            return None

        async def mark_funded(self, _: str) -> Any:
            raise AssertionError

    watcher = OnchainProvider(esplora_url=chain.server.url, store=NoStore(), clock=SystemClock())
    observed = await watcher.observe(address)
    await watcher.aclose()
    assert observed.paid_sats == 30_005
    assert observed.confirmed_sats == 30_000
