"""Payouts: every destination against the emulators, refusals that write nothing, approval,
concurrency, a provider that pays and then times out, instant splits, manual payouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from satshare.jobs import catalogue
from satshare.ledger import repository as ledger_repository
from satshare.ledger.verify import verify_ledger
from satshare.notifications.models import OutboxMessage
from satshare.payouts import flows
from satshare.payouts import service as payout_service
from satshare.payouts.destinations import (
    DestinationKind,
    InvalidDestination,
    bech32_encode,
    lnurl_to_url,
    parse,
)
from satshare.payouts.service import Recheck
from satshare.sim.lightning import RegtestNode, RegtestWallet
from tests.conftest import BTCPaySim, Stack, close_stack
from tests.helpers import assert_problem
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

# BIP84's first receive address of its test mnemonic (mainnet), and a P2PKH one.
BIP84_MAINNET = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
P2PKH_MAINNET = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"


# -- destinations (offline) ---------------------------------------------------------------


def test_lightning_address_and_lnurl_forms() -> None:
    address = parse("  Alice@Example.com ", "mainnet")
    assert (address.kind, address.value) == (DestinationKind.LIGHTNING_ADDRESS, "alice@example.com")
    url = "https://pay.example.com/.well-known/lnurlp/alice-with-a-rather-long-name"
    code = bech32_encode("lnurl", url.encode())
    assert len(code) > 90  # longer than BIP173 allows: our decoder must not cap it
    assert parse(code.upper(), "mainnet").value == url
    assert parse("lightning:" + code, "mainnet").value == url
    assert (
        lnurl_to_url("lnurlp://pay.example.com/.well-known/lnurlp/alice-with-a-rather-long-name")
        == url
    )
    broken = code[:-1] + ("q" if code[-1] != "q" else "p")
    with pytest.raises(InvalidDestination, match="checksum"):
        parse(broken, "mainnet")
    plain_http = bech32_encode("lnurl", b"http://example.com/pay")
    with pytest.raises(InvalidDestination, match="https"):
        parse(plain_http, "mainnet")


def test_bolt11_destinations_are_checked() -> None:
    node = RegtestNode()
    bolt, payment_hash, _ = node.invoice(5_000_000, "payout", 600)
    parsed = parse(bolt, "regtest")
    assert parsed.kind is DestinationKind.BOLT11
    assert (parsed.amount_msat, parsed.payment_hash) == (5_000_000, payment_hash)
    with pytest.raises(
        InvalidDestination, match="regtest network, but payouts are made on mainnet"
    ):
        parse(bolt, "mainnet")
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(InvalidDestination, match="expired"):
        parse(bolt, "regtest", now=later)
    with pytest.raises(InvalidDestination, match="fraction of a sat"):
        parse(node.invoice(1_500, "x", 600)[0], "regtest")
    with pytest.raises(InvalidDestination, match="cannot be decoded"):
        parse("lnbcrt1garbage", "regtest")


def test_onchain_addresses_are_checked_for_the_network() -> None:
    assert parse(BIP84_MAINNET, "mainnet").kind is DestinationKind.ONCHAIN
    assert parse(P2PKH_MAINNET, "mainnet").value == P2PKH_MAINNET
    assert parse("bitcoin:" + BIP84_MAINNET.upper(), "mainnet").value == BIP84_MAINNET
    regtest = RegtestWallet().next_address()
    assert parse(regtest, "regtest").kind is DestinationKind.ONCHAIN
    for text, network in (
        (BIP84_MAINNET, "regtest"),
        (regtest, "mainnet"),
        (P2PKH_MAINNET, "testnet"),
    ):
        with pytest.raises(InvalidDestination, match="another network"):
            parse(text, network)
    with pytest.raises(InvalidDestination, match="not a valid bitcoin address"):
        parse(BIP84_MAINNET[:-1] + "q", "mainnet")
    with pytest.raises(InvalidDestination, match="not a Lightning Address, LNURL"):
        parse("definitely not money", "mainnet")
    with pytest.raises(InvalidDestination, match="required"):
        parse("   ", "mainnet")


# -- against the emulators ------------------------------------------------------------------


@pytest.fixture
async def stack(
    database_url: str,
    btcpay: BTCPaySim,
    lightning: Lightning,
) -> AsyncIterator[Stack]:
    running = await open_payout_stack(database_url, btcpay, lightning)
    yield running
    await close_stack(running)


async def _request(stack: Stack, user_id: int, amount: int, destination: str | None) -> Any:
    body: dict[str, Any] = {"user_id": user_id, "amount_sats": amount}
    if destination is not None:
        body["destination"] = destination
    return await stack.client.post("/api/v1/payouts", json=body)


async def test_lightning_address_payout_end_to_end(stack: Stack, lightning: Lightning) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    address = lightning.address("alice")
    # Approval wakes the sender at once, and it would race the balance read below; keep it
    # asleep so the payout is certainly still on its way when the balance is read.
    after_commit = stack.container.after_commit
    wake_sender, after_commit.send_payouts = after_commit.send_payouts, lambda: None
    response = await _request(stack, alice, 20_000, address)
    after_commit.send_payouts = wake_sender
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "approved"  # under auto_approve_max_sats
    assert (created["send_sats"], created["fee_sats"]) == (20_000, 0)
    assert (await balance(stack.client, alice))["in_payouts_sats"] == 20_000
    await settle_payouts(stack)
    done = await payout(stack.client, created["payout_id"])
    assert done["status"] == "paid", done
    assert done["proof"] and len(done["proof"]) == 64
    assert done["network_fee_sats"] == 1  # the emulator's 1,000 msat routing fee: the owner's
    assert lightning.received_sats("alice") == [20_000]
    money = await balance(stack.client, alice)
    assert money["balance_sats"] == COMMISSION - 20_000
    assert money["paid_out_sats"] == 20_000
    assert money["total_earned_sats"] == COMMISSION
    async with stack.db.reading() as session:
        kinds = (
            (
                await session.execute(
                    select(OutboxMessage.kind)
                    .where(OutboxMessage.user_id == alice, OutboxMessage.kind.like("payout.%"))
                    .order_by(OutboxMessage.id)
                )
            )
            .scalars()
            .all()
        )
    assert kinds == ["payout.approved", "payout.sending", "payout.paid"]  # every state change


async def test_lnurl_and_bolt11_destinations_pay(stack: Stack, lightning: Lightning) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    lightning.address("bob")
    url = f"{lightning.lnurl_server.url}/.well-known/lnurlp/bob"
    code = bech32_encode("lnurl", url.encode())
    first = await _request(stack, alice, 5_000, code)
    assert first.status_code == 201, first.text
    assert first.json()["destination_kind"] == "lnurl"
    # A BOLT11 from the receiver's own node, for exactly the amount.
    receiver = lightning.lnurl.accounts["bob"].node
    wrong, _, _ = receiver.invoice(6_000_000, "wrong", 600)
    await settle_payouts(stack)
    before = await stack.counts()
    refused = await _request(stack, alice, 7_000, wrong)
    problem = assert_problem(refused, 422)
    assert problem["type"] == "/problems/invalid-destination"
    assert "asks for 6000 sats but this payout sends 7000" in problem["detail"]
    assert await stack.counts() == before
    exact, payment_hash, _ = receiver.invoice(7_000_000, "exact", 600)
    second = await _request(stack, alice, 7_000, exact)
    assert second.status_code == 201, second.text
    await settle_payouts(stack)
    assert (await payout(stack.client, first.json()["payout_id"]))["status"] == "paid"
    paid = await payout(stack.client, second.json()["payout_id"])
    assert paid["status"] == "paid"
    assert receiver.issued[payment_hash].paid
    assert lightning.received_sats("bob") == [5_000]  # through LNURL; the BOLT11 directly


@pytest.mark.parametrize(
    ("amount", "destination", "problem_type", "words"),
    [
        (30_000, "alice", "insufficient-balance", "available balance is 25000 sats"),
        (500, "alice", "below-minimum", "minimum payout is 1000 sats"),
        (2_000, "nobody@127.0.0.1:1", "invalid-destination", "cannot receive payments"),
        (2_000, BIP84_MAINNET, "invalid-destination", "another network"),
        (2_000, "garbage", "invalid-destination", "not a Lightning Address"),
        (2_000, None, "invalid-destination", "no saved payout destination"),
    ],
)
async def test_refused_payouts_write_nothing(
    stack: Stack,
    lightning: Lightning,
    amount: int,
    destination: str | None,
    problem_type: str,
    words: str,
) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    target = lightning.address("alice") if destination == "alice" else destination
    before = await stack.counts()
    problem = assert_problem(await _request(stack, alice, amount, target), 422)
    assert problem["type"] == f"/problems/{problem_type}"
    assert words in problem["detail"]
    assert await stack.counts() == before


async def test_a_payout_for_a_user_who_does_not_exist_is_422(
    stack: Stack, lightning: Lightning
) -> None:
    """A user_id in the body is a reference, 422 as on every other operation (404 is for
    an id in the URL)."""
    before = await stack.counts()
    problem = assert_problem(await _request(stack, 999_999, 2_000, lightning.address("alice")), 422)
    assert problem["detail"] == "user_id 999999 does not exist"
    assert problem["field"] == "user_id"
    assert await stack.counts() == before


async def test_terms_must_be_accepted_and_onchain_needs_a_provider_that_pays_it(
    stack: Stack,
    lightning: Lightning,
) -> None:
    carol = await affiliate(stack, accept=False)
    await earn(stack, carol)
    before = await stack.counts()
    problem = assert_problem(await _request(stack, carol, 2_000, lightning.address("carol")), 422)
    assert problem["type"] == "/problems/terms-not-accepted"
    info = (await stack.client.get(f"/api/v1/affiliates/{carol}")).json()
    assert info["terms_accepted_at"] is None
    stale = await stack.client.post(
        f"/api/v1/affiliates/{carol}/terms-acceptance", json={"version": "0"}
    )
    assert "current affiliate terms are version 1" in assert_problem(stale, 409)["detail"]
    assert await stack.counts() == before
    accepted = await stack.client.post(
        f"/api/v1/affiliates/{carol}/terms-acceptance", json={"version": "1"}
    )
    assert accepted.json()["terms_accepted_at"] is not None
    onchain = RegtestWallet().next_address()
    problem = assert_problem(await _request(stack, carol, 2_000, onchain), 422)
    assert "pays Lightning only" in problem["detail"]


async def test_approval_cancel_and_scopes(stack: Stack, lightning: Lightning) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice, times=2)
    address = lightning.address("alice")
    big = (await _request(stack, alice, 40_000, address)).json()
    assert big["status"] == "awaiting_approval"
    assert (await balance(stack.client, alice))["available_sats"] == 2 * COMMISSION - 40_000
    writer = await stack.key("write")
    async with stack.anonymous() as client:
        client.headers["Authorization"] = f"Bearer {writer}"
        assert_problem(await client.post(f"/api/v1/payouts/{big['payout_id']}/approve"), 403)
    canceled = await stack.client.post(
        f"/api/v1/payouts/{big['payout_id']}/cancel", json={"reason": "asked by the affiliate"}
    )
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["failure"] == "asked by the affiliate"
    assert (await balance(stack.client, alice))["available_sats"] == 2 * COMMISSION
    again = await stack.client.post(f"/api/v1/payouts/{big['payout_id']}/approve")
    assert "only payouts awaiting approval" in assert_problem(again, 409)["detail"]
    second = (await _request(stack, alice, 45_000, address)).json()
    approved = await stack.client.post(f"/api/v1/payouts/{second['payout_id']}/approve")
    assert approved.json()["approved_by"].startswith("api-key:")
    await settle_payouts(stack)
    assert (await payout(stack.client, second["payout_id"]))["status"] == "paid"
    late_cancel = await stack.client.post(f"/api/v1/payouts/{second['payout_id']}/cancel")
    assert "it is final" in assert_problem(late_cancel, 409)["detail"]
    listed = (await stack.client.get("/api/v1/payouts", params={"user_id": alice})).json()
    assert [p["status"] for p in listed["items"]] == ["paid", "canceled"]
    only_paid = await stack.client.get("/api/v1/payouts", params={"status": "paid"})
    assert [p["payout_id"] for p in only_paid.json()["items"]] == [second["payout_id"]]


async def test_the_periodic_job_sends_what_no_kick_reached(
    stack: Stack, lightning: Lightning
) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice, times=2)
    waiting = (await _request(stack, alice, 40_000, lightning.address("alice"))).json()
    # Approved by another process (e.g. the CLI): nothing here was told to send it.
    async with stack.db.transaction() as session:
        await payout_service.approve(
            session, waiting["payout_id"], author="cli", now=stack.container.clock.now()
        )
    assert (await payout(stack.client, waiting["payout_id"]))["status"] == "approved"
    for job in catalogue(stack.container, None):  # one sweep of every periodic job
        await job.run()
    assert (await payout(stack.client, waiting["payout_id"]))["status"] == "paid"
    assert lightning.received_sats("alice") == [40_000]


async def test_quote_states_the_fee_before_confirming(
    database_url: str,
    btcpay: BTCPaySim,
    lightning: Lightning,
) -> None:
    stack = await open_payout_stack(
        database_url, btcpay, lightning, payouts={"lightning_fee_sats": 10}
    )
    try:
        alice = await affiliate(stack)
        await earn(stack, alice)
        address = lightning.address("alice")
        quote = await stack.client.get(
            "/api/v1/payouts/quote", params={"amount_sats": 5_000, "destination": address}
        )
        assert quote.json() == {
            "amount_sats": 5_000,
            "fee_sats": 10,
            "send_sats": 4_990,
            "fee_paid_by": "affiliate",
            "destination_kind": "lightning_address",
            "needs_approval": False,
        }
        created = (await _request(stack, alice, 5_000, address)).json()
        await settle_payouts(stack)
        assert (await payout(stack.client, created["payout_id"]))["status"] == "paid"
        assert lightning.received_sats("alice") == [4_990]
        assert (await balance(stack.client, alice))["balance_sats"] == COMMISSION - 5_000
    finally:
        await close_stack(stack)


async def test_32_concurrent_requests_never_overdraw(stack: Stack, lightning: Lightning) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    address = lightning.address("alice")
    responses = await asyncio.gather(*(_request(stack, alice, 1_000, address) for _ in range(32)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == COMMISSION // 1_000 == 25
    assert codes.count(422) == 7
    for refused in (r for r in responses if r.status_code == 422):
        assert refused.json()["type"] == "/problems/insufficient-balance"
    await settle_payouts(stack)
    money = await balance(stack.client, alice)
    assert money["balance_sats"] == 0
    assert money["paid_out_sats"] == COMMISSION
    assert sum(lightning.received_sats("alice")) == COMMISSION


async def test_paid_then_timed_out_is_never_paid_twice(
    database_url: str,
    btcpay: BTCPaySim,
    lightning: Lightning,
) -> None:
    stack = await open_payout_stack(
        database_url, btcpay, lightning, payouts={"timeout_seconds": 0.5}
    )
    try:
        alice = await affiliate(stack)
        await earn(stack, alice)
        lightning.lnbits.pay_delay_seconds = 2.0  # pays, then answers after our timeout
        stack.container.payouts.recheck = Recheck(first=timedelta(0), longest=timedelta(0))
        created = (await _request(stack, alice, 10_000, lightning.address("alice"))).json()
        await settle_payouts(stack)
        # The send timed out (unknown); the reconciler asked LNbits about that exact payment
        # instead of paying again, and learned it was paid.
        async with stack.db.reading() as session:
            kinds = (
                (
                    await session.execute(
                        select(OutboxMessage.kind)
                        .where(OutboxMessage.user_id == alice, OutboxMessage.kind.like("payout.%"))
                        .order_by(OutboxMessage.id)
                    )
                )
                .scalars()
                .all()
            )
        assert kinds == ["payout.approved", "payout.sending", "payout.unknown", "payout.paid"]
        done = await payout(stack.client, created["payout_id"])
        assert done["status"] == "paid"
        assert await flows.send_due(stack.container.payouts) == 0
        assert await flows.reconcile(stack.container.payouts) == 0
        assert lightning.lnbits.sent_payments == 1
        assert lightning.received_sats("alice") == [10_000]
        assert (await balance(stack.client, alice))["balance_sats"] == COMMISSION - 10_000
    finally:
        await close_stack(stack)


async def test_failed_payment_returns_the_money(stack: Stack, lightning: Lightning) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    lightning.lnbits.fail_payments = True
    response = await _request(stack, alice, 10_000, lightning.address("alice"))
    assert response.status_code == 201, response.text  # its reason, if the request fails
    created = response.json()
    await settle_payouts(stack)
    failed = await payout(stack.client, created["payout_id"])
    assert failed["status"] == "failed"
    assert "failed" in failed["failure"]
    assert (await balance(stack.client, alice))["available_sats"] == COMMISSION
    assert lightning.received_sats("alice") == []


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ({"wrong_amount": True}, "not the 3000000 asked; it was not paid"),
        ({"wrong_description_hash": True}, "does not match the service's metadata"),
        ({"refuse_reason": "Account frozen"}, "the service refused: Account frozen"),
    ],
)
async def test_misbehaving_lnurl_service_is_never_paid(
    stack: Stack,
    lightning: Lightning,
    setting: dict[str, Any],
    reason: str,
) -> None:
    alice = await affiliate(stack)
    await earn(stack, alice)
    address = lightning.address("alice")
    for name, value in setting.items():
        setattr(lightning.lnurl, name, value)
    created = (await _request(stack, alice, 3_000, address)).json()
    await settle_payouts(stack)
    failed = await payout(stack.client, created["payout_id"])
    assert failed["status"] == "failed"
    assert reason in failed["failure"]
    assert lightning.lnbits.sent_payments == 0
    assert (await balance(stack.client, alice))["available_sats"] == COMMISSION


async def test_instant_split_sends_each_commission_and_falls_back_to_the_balance(
    database_url: str,
    btcpay: BTCPaySim,
    lightning: Lightning,
) -> None:
    stack = await open_payout_stack(
        database_url, btcpay, lightning, payouts={"instant_lightning": True}
    )
    try:
        alice = await affiliate(stack)
        saved = await stack.client.put(
            f"/api/v1/affiliates/{alice}/destination",
            json={"destination": lightning.address("alice")},
        )
        assert saved.json()["kind"] == "lightning_address"
        await earn(stack, alice)
        await settle_payouts(stack)
        (instant,) = (await stack.client.get("/api/v1/payouts")).json()["items"]
        assert instant["instant"] and instant["status"] == "paid"
        assert instant["amount_sats"] == COMMISSION  # no minimum for instant splits
        assert lightning.received_sats("alice") == [COMMISSION]
        assert (await balance(stack.client, alice))["balance_sats"] == 0
        # The receiver is down: the commission stays in the balance.
        lightning.lnbits.fail_payments = True
        await earn(stack, alice)
        await settle_payouts(stack)
        latest = (await stack.client.get("/api/v1/payouts")).json()["items"][0]
        assert latest["instant"] and latest["status"] == "failed"
        assert (await balance(stack.client, alice))["available_sats"] == COMMISSION
    finally:
        await close_stack(stack)


async def test_manual_payouts_export_and_mark_paid(
    database_url: str,
    btcpay: BTCPaySim,
    lightning: Lightning,
) -> None:
    stack = await open_payout_stack(
        database_url, btcpay, lightning, payouts={"provider": "manual", "onchain_fee_sats": 300}
    )
    try:
        alice = await affiliate(stack)
        await earn(stack, alice)
        address = RegtestWallet().next_address()
        created = (await _request(stack, alice, 20_000, address)).json()
        assert (created["status"], created["send_sats"]) == ("approved", 19_700)
        await settle_payouts(stack)  # nothing to send: the owner pays by hand
        assert (await payout(stack.client, created["payout_id"]))["status"] == "approved"
        csv_text = (await stack.client.get("/api/v1/payouts/export")).text
        assert csv_text.splitlines()[1].endswith(f"onchain,{address},19700,0.00019700")
        batch = await stack.client.get("/api/v1/payouts/export", params={"format": "batch"})
        assert batch.text == f"{address}, 0.00019700\n"
        bad = await stack.client.post(
            f"/api/v1/payouts/{created['payout_id']}/mark-paid", json={"proof": "zz" * 32}
        )
        assert "64 hex characters" in assert_problem(bad, 422)["detail"]
        txid = "ab" * 32
        paid = await stack.client.post(
            f"/api/v1/payouts/{created['payout_id']}/mark-paid",
            json={"proof": txid, "network_fee_sats": 250},
        )
        assert (paid.json()["status"], paid.json()["proof"]) == ("paid", txid)
        twice = await stack.client.post(
            f"/api/v1/payouts/{created['payout_id']}/mark-paid", json={"proof": txid}
        )
        assert "already paid" in assert_problem(twice, 409)["detail"]
        assert (await stack.client.get("/api/v1/payouts/export")).text.count("\n") == 1
        await stack.container.sealer.flush()
        async with stack.db.reading() as session:
            report = await verify_ledger(session)
            sums = await ledger_repository.all_account_sums(session)
        assert report.ok, report.problems
        # The affiliate's 300 sat fee and the owner's 250 sat mining fee are both on the books.
        assert sums["revenue:payout-fees"] == -300
        assert sums["expense:payout-fees"] == 250
        assert sums["clearing:owner-wallet"] == -(19_700 + 250)
        assert sums.get("payable:payouts", 0) == 0
    finally:
        await close_stack(stack)
