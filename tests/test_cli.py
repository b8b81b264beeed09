"""The satshare command line, in-process (Typer's runner) and once as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text
from typer.core import TyperGroup
from typer.testing import CliRunner

from satshare.cli import app
from satshare.db import Database
from tests.conftest import PG_URL, truncate_all

runner = CliRunner()


@pytest.fixture
def cli_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_template: str
) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    if PG_URL:
        url = migrated_template  # this worker's PostgreSQL database
        asyncio.run(truncate_all(url))
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SATSHARE_DATABASE__URL", url)
    return {"SATSHARE_DATABASE__URL": url}


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_migrate_is_idempotent(cli_env: dict[str, str]) -> None:
    code, out, _ = invoke("migrate")
    assert code == 0, out
    assert "revision" in out
    code, out, _ = invoke("migrate")
    assert code == 0
    assert "up to date" in out


def test_api_key_lifecycle(cli_env: dict[str, str]) -> None:
    assert invoke("migrate")[0] == 0
    code, out, _ = invoke("api-key", "create", "--name", "website", "--scopes", "read,write")
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    assert key.startswith("ss_") and " " not in key
    code, out, _ = invoke("api-key", "list")
    assert code == 0
    assert "website" in out and "read,write" in out
    assert key not in out  # never shown again

    code, _, err = invoke("api-key", "create", "--name", "x", "--scopes", "read,superuser")
    assert code == 2
    assert "unknown scope 'superuser'" in err
    code, _, err = invoke("api-key", "revoke", "999")
    assert code == 2 and "no API key" in err
    code, out, _ = invoke("api-key", "revoke", "1")
    assert code == 0 and "Revoked" in out
    code, out, _ = invoke("api-key", "revoke", "1")  # again: said, not done twice
    assert code == 0 and "Revoked" not in out
    assert "API key 1 'website' was already revoked on " in out and "nothing changed" in out


def test_a_name_with_brackets_is_shown_as_written(cli_env: dict[str, str]) -> None:
    # Names and reasons are text: Rich markup in them is neither applied nor an error.
    assert invoke("migrate")[0] == 0
    name = "[/x][b]shop"
    code, out, err = invoke("api-key", "create", "--name", name, "--scopes", "read")
    assert code == 0, out + err
    code, out, err = invoke("api-key", "list")
    assert code == 0, err
    assert name in out
    code, out, err = invoke("api-key", "revoke", "1")
    assert code == 0, err
    assert f"Revoked API key 1 '{name}'." in out


def test_commands_refuse_an_unmigrated_database(
    cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A brand-new SQLite file on both runs: the shared PostgreSQL database is always migrated.
    monkeypatch.setenv("SATSHARE_DATABASE__URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    code, _, err = invoke("api-key", "list")
    assert code == 2
    assert "satshare migrate" in err


def test_config_check(cli_env: dict[str, str], tmp_path: Path) -> None:
    code, out, _ = invoke("config", "check")
    assert code == 0
    assert "sandbox" in out
    # What the sandbox runs with, not the unset configuration: its processor, its payout
    # choices, its demo plans; its secrets are made at each start.
    rows = {
        cells[0]: cells[1]
        for line in out.splitlines()
        if (cells := [c.strip() for c in line.strip("│ ").split("│")]) and len(cells) == 2
    }
    assert rows["payouts.provider"] == "btcpay (sandbox)"
    assert rows["payouts.network"] == "regtest (sandbox)"
    assert rows["payouts.min_sats"] == "1000 (sandbox)"
    assert rows["btcpay.url"].endswith("/sim/btcpay (sandbox)")
    assert rows["btcpay.api_key"] == "made at each start (sandbox)"
    assert rows["webhooks.allow_insecure_urls"] == "True (sandbox)"
    assert "demo-monthly" in out and "Plans: none" not in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("affiliate:\n  share_bps: -1\n")
    code, _, err = invoke("--config", str(bad), "config", "check")
    assert code == 2
    assert "affiliate.share_bps" in err and "line 2" in err
    assert len(err.strip().splitlines()) == 1


def test_ledger_verify_passes_then_names_tampering(cli_env: dict[str, str]) -> None:
    assert invoke("migrate")[0] == 0
    code, out, _ = invoke("ledger", "verify")
    assert code == 0
    assert "0 entries" in out

    async def seed_and_tamper() -> None:
        from datetime import UTC, datetime

        from satshare.ledger import service as ledger

        db = Database(cli_env["SATSHARE_DATABASE__URL"])
        try:
            async with db.transaction() as session:
                for n in range(3):
                    await ledger.post_entry(
                        session,
                        ledger.NewEntry(
                            idempotency_key=f"k{n}",
                            kind="adjustment",
                            legs=[ledger.Leg("equity:owner", 10), ledger.Leg("expense:x", -10)],
                        ),
                        datetime.now(UTC),
                    )
            async with db.transaction() as session:
                await ledger.seal_pending(session, datetime.now(UTC))
            async with db.engine.begin() as conn:
                if db.dialect == "postgresql":
                    await conn.execute(text("ALTER TABLE ledger_entries DISABLE TRIGGER USER"))
                else:
                    await conn.execute(text("DROP TRIGGER ledger_entries_no_update"))
                await conn.execute(text("UPDATE ledger_entries SET kind = 'sale' WHERE id = 2"))
                if db.dialect == "postgresql":
                    await conn.execute(text("ALTER TABLE ledger_entries ENABLE TRIGGER USER"))
        finally:
            await db.dispose()

    code, out, _ = invoke("ledger", "verify", "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True  # stdout is the report alone: no progress bar
    asyncio.run(seed_and_tamper())
    code, _, err = invoke("ledger", "verify")
    assert code == 1
    assert "entry seq 2" in err
    code, out, _ = invoke("ledger", "verify", "--json")
    report = json.loads(out)
    assert code == 1
    assert (report["ok"], report["entries"], report["postings"]) == (False, 3, 6)
    assert report["problems"][0].startswith("entry seq 2 (transaction 2): hash mismatch")


@pytest.mark.slow  # two child interpreters, each importing all of SatShare
def test_real_subprocess_prints_the_key_alone_on_the_last_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, **cli_env}
    subprocess.run(
        [sys.executable, "-m", "satshare", "migrate"], env=env, check=True, capture_output=True
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "satshare",
            "api-key",
            "create",
            "--name",
            "bot",
            "--scopes",
            "admin",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    last = done.stdout.rstrip("\n").split("\n")[-1]
    assert last.startswith("ss_") and last == last.strip()


def test_list_commands_print_json_and_piped_tables_are_not_cut(cli_env: dict[str, str]) -> None:
    import json

    long_name = "the partner website of the owner: checkout, sign-up and affiliate pages "
    assert invoke("migrate")[0] == 0
    code, _, _ = invoke("api-key", "create", "--name", long_name.strip(), "--scopes", "read")
    assert code == 0
    code, out, _ = invoke("api-key", "list", "--json")
    assert code == 0
    (key,) = json.loads(out)
    assert key["name"] == long_name.strip() and key["scopes"] == "read"
    assert key["platform"] is None  # not bound to a platform (#14)
    assert key["revoked_at"] is None and key["created_at"][:4].isdigit()
    # Typer's runner is not a terminal, like `satshare api-key list | less`.
    code, out, _ = invoke("api-key", "list")
    assert code == 0
    assert long_name.strip() in out  # on one line, not cut at 80 columns


def test_a_failure_is_printed_as_written_not_as_markup() -> None:
    # Rich markup in an error would eat "[binary]" and raise on "[/x]": the text is escaped.
    from satshare.cli.common import err, fail

    message = "install it with pip install 'psycopg[binary]'; a value such as [/x] or [bold]"
    with err.capture() as captured:
        exit_ = fail(message)
    assert exit_.exit_code == 2
    assert captured.get().strip() == f"satshare: {message}"


def test_a_job_queue_psycopg_cannot_load_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    # PSYCOPG_IMPL asks psycopg for its C build, absent here: as on a machine with no libpq
    # for the build that is installed. Nothing is reached: the queue fails to load first.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    env |= {
        "PSYCOPG_IMPL": "c",
        "SATSHARE_DATABASE__URL": "postgresql://satshare@127.0.0.1:9/satshare",
        # A processor: not the sandbox, whose jobs run inside serve.
        "SATSHARE_BTCPAY__URL": "http://127.0.0.1:9",
        "SATSHARE_BTCPAY__API_KEY": "clibtcpayapikey0123456789",
        "SATSHARE_BTCPAY__STORE_ID": "clistore",
        "SATSHARE_BTCPAY__WEBHOOK_SECRET": "cliwebhookhmac0123456789",
    }
    done = subprocess.run(
        [sys.executable, "-m", "satshare", "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("satshare: the PostgreSQL job queue cannot load psycopg")
    assert "pip install 'psycopg[binary]'" in lines[0]


def test_ledger_export_to_a_path_it_cannot_use_is_one_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert invoke("migrate")[0] == 0
    missing = tmp_path / "no" / "such" / "ledger.jsonl"
    code, _, err = invoke("ledger", "export", "-o", str(missing))
    assert code == 2
    assert err.strip().splitlines() == [
        f"satshare: the directory {missing.parent} does not exist; create it first"
    ]
    code, _, err = invoke("ledger", "export", "-o", str(tmp_path))
    assert code == 2
    assert err.strip().splitlines() == [
        f"satshare: {tmp_path} is a directory; give a file name, e.g. {tmp_path}/ledger.jsonl"
    ]
    target = tmp_path / "ledger.jsonl"
    code, _, err = invoke("ledger", "export", "-o", str(target))
    assert code == 0, err
    assert target.read_text() == "" and "Exported 0 chained entries." in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".ledger")) == []


#: What Typer (or click) writes when nobody named a value: a type, not what goes there.
TYPE_NAMES = {"str", "bool", "int", "float", "path", "datetime", "uuid", "file", "range"}
TYPE_NAMES |= {"TEXT", "STR", "INTEGER", "INT", "FLOAT", "BOOLEAN", "BOOL"}


def _commands() -> list[tuple[str, ...]]:
    """Every command and group, as the words that reach it (the root is ())."""
    found: list[tuple[str, ...]] = []

    def walk(command: Any, ctx: Any, path: tuple[str, ...]) -> None:
        found.append(path)
        if isinstance(command, TyperGroup):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(
                        sub,
                        sub.make_context(name, [], parent=ctx, resilient_parsing=True),
                        (*path, name),
                    )

    root = typer.main.get_command(app)
    walk(root, root.make_context("satshare", [], resilient_parsing=True), ())
    return found


def test_every_help_names_what_a_value_is_not_its_type() -> None:
    commands = _commands()
    assert ("payout", "mark-paid") in commands and len(commands) > 40
    for path in commands:
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        shown = result.stdout
        assert result.exit_code == 0 and "Usage: satshare" in shown, path
        # `<str>`, `<bool>`, `<int range>` … (a choice such as `<csv|batch>` lists values).
        for label in re.findall(r"<([^<>\s][^<>]*)>", shown):
            parts = set(re.split(r"[|, ]", label))
            assert not parts & TYPE_NAMES, f"satshare {' '.join(path)}: <{label}>"
        # A bare upper-case type where a value goes: `--name TEXT`, `--fee INTEGER`.
        for word in re.findall(r"(?:--[\w-]+|^\W*)\s+([A-Z_]+)\b", shown, re.MULTILINE):
            assert word not in TYPE_NAMES, f"satshare {' '.join(path)}: {word}"
    # What each shows instead: a name for the value, nothing for a flag.
    mark_paid = runner.invoke(app, ["payout", "mark-paid", "--help"], terminal_width=200).stdout
    assert re.search(r"--fee\s+SATS", mark_paid) and re.search(r"--txid\s+TXID", mark_paid)
    assert "{PAYOUT_ID}" in mark_paid
    restore = runner.invoke(app, ["restore", "--help"], terminal_width=200).stdout
    assert re.search(r"--force\s+Replace", restore) and re.search(r"--help\s+Show", restore)
