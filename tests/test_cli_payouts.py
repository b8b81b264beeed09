"""`satshare payout` and `satshare affiliate` against a database the running service shares."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from typer.testing import CliRunner

from satshare.cli import app, common
from satshare.sim.lightning import RegtestWallet
from tests.conftest import BTCPaySim, close_stack
from tests.lightningkit import Lightning
from tests.payoutkit import affiliate, earn, open_payout_stack, payout

runner = CliRunner()


async def cli(*args: str) -> tuple[int, str, str]:
    # The CLI runs its own event loop, as it does from a shell.
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("SATSHARE_DATABASE__URL", database_url)
    monkeypatch.setattr(common.out, "width", 200)  # tables unwrapped, as in a wide terminal
    return database_url


async def test_payout_commands_approve_export_and_mark_paid(
    cli_database: str, btcpay: BTCPaySim, lightning: Lightning, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI is configured like the service: payouts paid by hand.
    monkeypatch.setenv("SATSHARE_PAYOUTS__PROVIDER", "manual")
    stack = await open_payout_stack(cli_database, btcpay, lightning, payouts={"provider": "manual"})
    try:
        alice = await affiliate(stack)
        await earn(stack, alice, times=2)
        address = RegtestWallet().next_address()
        response = await stack.client.post(
            "/api/v1/payouts",
            json={"user_id": alice, "amount_sats": 40_000, "destination": address},
        )
        created = response.json()
        assert created["status"] == "awaiting_approval", created
        pid = str(created["payout_id"])

        code, out, _ = await cli("payout", "list", "--status", "awaiting_approval")
        assert code == 0 and "40000" in out and "awaiting_approval" in out
        code, out, _ = await cli("payout", "list", "--json")
        (listed,) = json.loads(out)
        assert listed["id"] == created["payout_id"] and listed["amount_sats"] == 40_000
        assert listed["status"] == "awaiting_approval" and listed["user_id"] == alice
        code, _, err = await cli("payout", "list", "--status", "lost")
        assert code == 2 and "unknown status 'lost'" in err

        code, out, _ = await cli("payout", "approve", pid)
        assert code == 0 and "is approved" in out and "mark-paid" in out
        assert (await payout(stack.client, created["payout_id"]))["approved_by"].startswith("cli")
        code, out, _ = await cli("payout", "export", "--format", "batch")
        assert code == 0 and out == f"{address}, 0.00040000\n"
        code, out, _ = await cli("payout", "export")
        assert out.splitlines()[0].startswith("payout_id,") and len(out.splitlines()) == 2

        code, _, err = await cli("payout", "mark-paid", pid, "--txid", "not-a-txid")
        assert code == 2 and "64 hex characters" in err and len(err.strip().splitlines()) == 1
        assert (await payout(stack.client, created["payout_id"]))["status"] == "approved"
        code, out, _ = await cli("payout", "mark-paid", pid, "--txid", "ab" * 32, "--fee", "200")
        assert code == 0 and "is paid" in out
        done = await payout(stack.client, created["payout_id"])
        assert (done["status"], done["proof"], done["network_fee_sats"]) == ("paid", "ab" * 32, 200)
        code, _, err = await cli("payout", "cancel", pid)
        assert code == 2 and "final" in err
        code, _, err = await cli("payout", "approve", "999")
        assert code == 2 and "999" in err

        code, out, _ = await cli("affiliate", "show", str(alice))
        assert code == 0
        assert "paid out" in out and "40000 sats" in out
        assert "accepted 20" in out  # the terms acceptance, with its date
    finally:
        await close_stack(stack)


async def test_affiliate_terms_and_suspension_commands(
    cli_database: str, btcpay: BTCPaySim, lightning: Lightning
) -> None:
    stack = await open_payout_stack(cli_database, btcpay, lightning)
    try:
        alice = str(await affiliate(stack))
        code, _, err = await cli("affiliate", "set-terms", alice, "--reason", "x")
        assert code == 2 and "--share-bps" in err
        code, out, _ = await cli(
            "affiliate", "set-terms", alice, "--share-bps", "6000", "--reason", "top partner"
        )
        assert code == 0 and "custom terms v1, 60%" in out
        code, out, _ = await cli("affiliate", "terms", alice)
        assert "top partner" in out and "60%" in out and "cli" in out
        await earn(stack, int(alice))
        shown = (await stack.client.get(f"/api/v1/affiliates/{alice}")).json()
        assert shown["terms"]["label"] == "custom:v1"
        assert shown["balance"]["total_earned_sats"] == 30_000  # 60% of 50,000

        code, out, _ = await cli("affiliate", "suspend", alice, "--reason", "spam")
        assert code == 0 and "suspended" in out
        code, _, err = await cli("affiliate", "suspend", alice, "--reason", "again")
        assert code == 2 and "already suspended" in err
        code, out, _ = await cli("affiliate", "show", alice)
        assert "SUSPENDED" in out and "spam" in out
        code, out, _ = await cli("affiliate", "reinstate", alice)
        assert code == 0 and "reinstated" in out
        code, _, err = await cli("affiliate", "show", "424242")
        assert code == 2 and "424242" in err
    finally:
        await close_stack(stack)


async def test_an_approval_from_the_cli_is_sent_by_the_service(
    cli_database: str, btcpay: BTCPaySim, lightning: Lightning
) -> None:
    """The CLI records the approval; the running service sends the payout, exactly as after
    an approval through the API or the bot (the CLI process never calls a provider: run
    without the service's configuration it would reach the wrong one)."""
    from satshare.jobs import catalogue

    stack = await open_payout_stack(
        cli_database, btcpay, lightning, payouts={"auto_approve_max_sats": 0}
    )
    try:
        alice = await affiliate(stack)
        await earn(stack, alice)
        response = await stack.client.post(
            "/api/v1/payouts",
            json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("a")},
        )
        created = response.json()
        assert created["status"] == "awaiting_approval", created
        code, out, _ = await cli("payout", "approve", str(created["payout_id"]))
        assert code == 0, out
        # A CLI that sent payouts would have before returning (its runner finishes on close).
        assert (await payout(stack.client, created["payout_id"]))["status"] == "approved"
        assert lightning.received_sats("a") == []
        for job in catalogue(stack.container, None):  # the service's periodic sweep
            if job.name == "satshare.send_payouts":
                await job.run()
        assert (await payout(stack.client, created["payout_id"]))["status"] == "paid"
        assert lightning.received_sats("a") == [20_000]
    finally:
        await close_stack(stack)
