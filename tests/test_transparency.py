"""Transparency: the public figures equal the ledger; split statements carry the proof and
the entry hash; `satshare ledger export` plus the standalone recipe recompute the chain and
the figures, and name any tampered line; the page shows the same numbers in Chromium."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from satshare.cli import app as cli_app
from satshare.ledger import repository as ledger_repository
from satshare.ledger.verify import verify_ledger
from tests.browser import chromium
from tests.conftest import Stack
from tests.historykit import history
from tests.historykit import stack as stack
from tests.lightningkit import Lightning
from tests.payoutkit import balance

RECIPE = Path(__file__).parents[1] / "docs" / "verify_ledger_export.py"


async def _export(tmp_path: Path) -> Path:
    target = tmp_path / "ledger.jsonl"
    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["ledger", "export", "--output", str(target)]
    )
    assert result.exit_code == 0, result.stderr
    return target


def _recipe(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Run as anyone would: a bare interpreter, no SatShare on the path.
    return subprocess.run(  # noqa: S603 (our own script, arguments from this test)
        [sys.executable, "-I", str(RECIPE), str(path), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=path.parent,
    )


async def test_figures_equal_the_ledger_and_the_recipe_recomputes_them(
    stack: Stack, lightning: Lightning, tmp_path: Path
) -> None:
    seen = await history(stack, lightning)
    async with stack.anonymous() as public:  # no key
        response = await public.get("/api/v1/transparency")
    assert response.status_code == 200, response.text
    figures = response.json()
    totals = figures["totals"]
    assert (totals["sales"], totals["refunds"]) == (4, 1)
    assert totals["gross_sats"] == 3 * 50_000
    assert totals["owner_share_sats"] == 3 * 25_000 + 50_000 - 25_000
    assert totals["affiliate_share_sats"] == 2 * 25_000
    assert totals["paid_out_sats"] == 20_000
    assert totals["gross_sats"] == totals["owner_share_sats"] + totals["affiliate_share_sats"]
    assert figures["owed_sats"] == 30_000  # 5,000 balance + 25,000 held for the payout
    (month,) = figures["months"]
    assert month["owed_sats"] == figures["owed_sats"]

    # The same figures straight from the ledger's accounts.
    async with stack.db.reading() as session:
        report = await verify_ledger(session)  # first: it takes the transaction's snapshot
        sums = await ledger_repository.all_account_sums(session)
    assert report.ok, report.problems
    assert totals["owner_share_sats"] == -sums["revenue:owner"]
    owed = -sum(v for k, v in sums.items() if k.startswith("payable:affiliate:"))
    owed -= sums.get("payable:payouts", 0)
    assert figures["owed_sats"] == owed
    money = await balance(stack.client, seen["alice"])
    assert totals["affiliate_share_sats"] == money["total_earned_sats"]
    assert totals["paid_out_sats"] == money["paid_out_sats"]
    ledger = figures["ledger"]
    assert (ledger["head_seq"], ledger["head_hash"]) == (report.head_seq, report.head_hash)
    assert ledger["entries"] == report.entries + report.unsealed

    # The export and the standalone recipe agree with all of it.
    exported = await _export(tmp_path)
    lines = exported.read_text().splitlines()
    assert len(lines) == ledger["head_seq"]
    checked = _recipe(exported, "--head", ledger["head_hash"])
    assert checked.returncode == 0, checked.stderr
    printed = dict(line.split(": ", 1) for line in checked.stdout.splitlines()[1:] if ": " in line)
    for name in ("gross_sats", "owner_share_sats", "affiliate_share_sats", "paid_out_sats"):
        assert int(printed[name]) == totals[name], name
    assert int(printed["owed_sats"]) == figures["owed_sats"]
    assert checked.stdout.startswith(f"OK: {len(lines)} entries verify; head {report.head_hash}")

    # Statements: each commission with its proof, terms and place in the chain.
    listed = await stack.client.get(f"/api/v1/affiliates/{seen['alice']}/statements")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [s["commission_sats"] for s in items] == [25_000, 25_000, 25_000]
    by_invoice = {s["invoice_id"]: s for s in items}
    ln = by_invoice[seen["lightning"]]
    assert ln["proof_kind"] == "lightning_preimage"
    import hashlib

    assert hashlib.sha256(bytes.fromhex(ln["proof"])).hexdigest() == ln["payment_hash"]
    assert (ln["gross_sats"], ln["share_bps"], ln["terms"]) == (50_000, 5_000, "base")
    refunded = by_invoice[seen["refunded"]]
    assert refunded["reversed_by_transaction_id"] is not None
    assert refunded["proof_kind"] == "btcpay_invoice_id"
    hashes = {json.loads(line)["entry_id"]: json.loads(line)["hash"] for line in lines}
    for statement in items:
        assert statement["entry_hash"] == hashes[statement["transaction_id"]]
    page = await stack.client.get(
        f"/api/v1/affiliates/{seen['alice']}/statements", params={"limit": 2}
    )
    rest = await stack.client.get(
        f"/api/v1/affiliates/{seen['alice']}/statements",
        params={"cursor": page.json()["next_cursor"]},
    )
    assert [s["transaction_id"] for s in page.json()["items"] + rest.json()["items"]] == [
        s["transaction_id"] for s in items
    ]
    async with stack.anonymous() as public:
        assert (
            await public.get(f"/api/v1/affiliates/{seen['alice']}/statements")
        ).status_code == 401


async def test_the_recipe_names_any_tampered_line(
    stack: Stack, lightning: Lightning, tmp_path: Path
) -> None:
    await history(stack, lightning)
    exported = await _export(tmp_path)
    lines = exported.read_text().splitlines()
    assert _recipe(exported).returncode == 0

    def tampered(name: str, change: Any) -> Path:
        copy = [json.loads(line) for line in lines]
        change(copy)
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in copy))
        return path

    def shift_commission(records: list[dict[str, Any]]) -> None:
        # Move 1,000 sats from the owner to the affiliate in the second entry: still
        # balanced, but the hash (and the split) give it away.
        record = records[1]
        record["postings"] = [
            [
                code,
                amount + (1000 if code == "revenue:owner" else -1000 if "affiliate" in code else 0),
            ]
            for code, amount in record["postings"]
        ]

    result = _recipe(tampered("shifted.jsonl", shift_commission))
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("FAILED: line 2 (seq 2,") and "hash mismatch" in first
    assert "split" in result.stderr

    result = _recipe(tampered("dropped.jsonl", lambda records: records.pop(2)))
    assert result.returncode == 1 and "line 3 (seq 4," in result.stderr
    assert "expected seq 3" in result.stderr

    def rehash_everything(records: list[dict[str, Any]]) -> None:
        # A forger who recomputes every hash after a change still cannot reach a head
        # someone wrote down.
        sys.path.insert(0, str(RECIPE.parent))
        try:
            import verify_ledger_export as recipe
        finally:
            sys.path.pop(0)
        import hashlib

        records[0]["gross_sats"] += 1
        prev = "0" * 64
        for record in records:
            record["prev_hash"] = prev
            record["hash"] = hashlib.sha256(
                bytes.fromhex(prev) + recipe.canonical(record)
            ).hexdigest()
            prev = record["hash"]

    head = json.loads(lines[-1])["hash"]
    result = _recipe(tampered("forged.jsonl", rehash_everything), "--head", head)
    assert result.returncode == 1 and "is not in this chain" in result.stderr
    unreadable = _recipe(tmp_path / "missing.jsonl")
    assert unreadable.returncode == 2


@pytest.mark.browser
async def test_transparency_page_in_chromium(stack: Stack, lightning: Lightning) -> None:
    await history(stack, lightning)
    figures = (await stack.client.get("/api/v1/transparency")).json()
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{stack.url}/transparency")
        assert await page.title() == "Where the money goes · SatShare"  # branding.name
        for field in ("gross_sats", "owner_share_sats", "affiliate_share_sats", "paid_out_sats"):
            cell = await page.inner_text(f"#totals [data-field='{field}']")
            assert int(cell.replace(",", "")) == figures["totals"][field], field
        assert await page.inner_text("#head-hash") == figures["ledger"]["head_hash"]
        assert "50%" in await page.inner_text("#rules")
        await page.goto(f"{stack.url}/transparency?lang=ru")
        assert await page.title() == "Куда идут деньги · SatShare"
        assert "Итого" in await page.inner_text("#totals")
