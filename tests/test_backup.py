"""`satshare backup` / `satshare restore` (issue #11), on SQLite and on PostgreSQL: a
restored copy passes `ledger verify` with the same head hash; a database that holds data is
refused unless --force; bad input is one line naming the fix."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from satshare.cli import app
from satshare.db import Database
from tests.conftest import PG_URL, BTCPaySim, close_stack, open_stack
from tests.helpers import buy, create_user, invoice_status, wait_until

pytestmark = pytest.mark.integration
HEAD = re.compile(r"head seq (\d+) hash ([0-9a-f]{64})")


@pytest.fixture(autouse=True)
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


async def cli(url: str, *args: str) -> Result:
    """The CLI in a thread (it runs its own event loop), on the given database."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, app, list(args), env={"SATSHARE_DATABASE__URL": url}
    )


async def head_of(url: str) -> tuple[str, str]:
    result = await cli(url, "ledger", "verify")
    assert result.exit_code == 0, result.output
    found = HEAD.search(" ".join(result.stdout.split()))
    assert found is not None, result.stdout
    return found.group(1), found.group(2)


async def fresh_target(source_url: str, tmp_path: Path) -> str:
    """An empty database of the same kind: a new SQLite file, or a new PostgreSQL database
    next to the test one."""
    if not PG_URL:
        return f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    parsed = make_url(source_url)
    name = f"{parsed.database}_restore"
    admin = Database(parsed.set(database="postgres").render_as_string(hide_password=False))
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


async def sell(database_url: str, btcpay: BTCPaySim, count: int) -> None:
    stack = await open_stack(database_url, btcpay)
    affiliate = await create_user(stack.client, "affiliate")
    for number in range(count):
        buyer = await create_user(
            stack.client, f"buyer{number}", referral_id=affiliate["referral_code"]
        )
        order = await buy(stack.client, buyer["user_id"])
        await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])

        async def settled(subscription: int = order["subscription_id"]) -> bool:
            return await invoice_status(stack.client, subscription) == "settled"

        await wait_until(settled)
    await close_stack(stack)  # seals every entry and verifies the ledger


async def test_a_restored_copy_verifies_with_the_same_head(
    database_url: str, btcpay: BTCPaySim, tmp_path: Path
) -> None:
    await sell(database_url, btcpay, 3)
    seq, head = await head_of(database_url)
    assert int(seq) >= 3

    archive = tmp_path / "backups" / "satshare.bak"
    archive.parent.mkdir()
    made = await cli(database_url, "backup", str(archive))
    assert made.exit_code == 0, made.output
    assert "Backed up" in made.stdout and archive.stat().st_size > 0
    assert [p.name for p in archive.parent.iterdir()] == ["satshare.bak"]  # no leftovers

    target = await fresh_target(database_url, tmp_path)
    restored = await cli(target, "restore", str(archive))
    assert restored.exit_code == 0, restored.output
    assert await head_of(target) == (seq, head)

    # Over a database that holds data: refused in one line, nothing changed.
    again = await cli(target, "restore", str(archive))
    assert again.exit_code == 1
    assert len(again.stderr.strip().splitlines()) == 1 and "--force" in again.stderr
    assert "already holds data" in again.stderr
    assert await head_of(target) == (seq, head)

    # The restored copy goes on selling on its own; --force puts the backup back.
    await sell(target, btcpay, 1)
    assert await head_of(target) != (seq, head)
    forced = await cli(target, "restore", "--force", str(archive))
    assert forced.exit_code == 0, forced.output
    assert await head_of(target) == (seq, head)


async def test_bad_backup_input_is_one_line(database_url: str, tmp_path: Path) -> None:
    missing_dir = await cli(database_url, "backup", str(tmp_path / "nowhere" / "x.bak"))
    assert missing_dir.exit_code == 1
    assert "does not exist; create it first" in missing_dir.stderr

    garbage = tmp_path / "garbage.bak"
    garbage.write_bytes(b"not a backup at all")
    refused = await cli(database_url, "restore", str(garbage))
    assert refused.exit_code == 1
    assert "is not a SatShare backup" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    absent = await cli(database_url, "restore", str(tmp_path / "absent.bak"))
    assert absent.exit_code == 1 and "does not exist" in absent.stderr

    # A backup of the other kind of database is named as such.
    other = tmp_path / "other.bak"
    other.write_bytes(b"PGDMP" if not PG_URL else b"SQLite format 3\x00" + b"\x00" * 100)
    mismatch = await cli(database_url, "restore", str(other))
    assert mismatch.exit_code == 1
    assert "restore it into a database of the same kind" in mismatch.stderr
