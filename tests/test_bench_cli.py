"""The bench scripts (#15) refuse bad arguments and an unusable database with one line, as
every command of the project does, before they start anything."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_bench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own bench scripts, arguments from this test
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bench.settlement", "--invoices", "0"], "argument --invoices: 0 is not 1 or more"),
        (["bench.startup", "--runs", "many"], "argument --runs: 'many' is not a whole number"),
        (["bench.ledger", "--sizes", "100000,0"], "--sizes: 0 is not 1 or more"),
        (["bench.bot_updates", "--users", "1"], "--users 1 is fewer than --rounds 2"),
        (["bench.outbox", "--messages", "1"], "--messages 1 is fewer than --rounds 2"),
    ],
)
def test_bad_arguments_are_named_in_one_line(argv: list[str], expected: str) -> None:
    done = run_bench(*argv)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_is_one_line_naming_where() -> None:
    port = closed_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/satshare_bench_unreachable"
    done = run_bench("bench.settlement", "--database-url", url)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"cannot reach PostgreSQL at 127.0.0.1:{port} (")
    assert "another database URL" in line


def test_a_database_the_bench_would_not_drop_is_refused() -> None:
    done = run_bench("bench.startup", "--database-url", "postgresql://postgres@127.0.0.1/shop")
    assert done.returncode == 1
    assert done.stderr.strip() == "refusing to drop database 'shop': the name must contain 'bench'"
