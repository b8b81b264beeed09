"""The bench scripts (#15) refuse bad arguments and an unusable database with one line, as
every command of the project does, before they start anything."""

from __future__ import annotations

import shutil
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


SAME_DATABASE = "postgresql://postgres@127.0.0.1/bench_same"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bench.settlement", "--invoices", "0"], "argument --invoices: 0 is not 1 or more"),
        (["bench.startup", "--runs", "many"], "argument --runs: 'many' is not a whole number"),
        (["bench.ledger", "--sizes", "100000,0"], "--sizes: 0 is not 1 or more"),
        (["bench.bot_updates", "--users", "1"], "--users 1 is fewer than --rounds 2"),
        (["bench.outbox", "--messages", "1"], "--messages 1 is fewer than --rounds 2"),
        # Checked before the database is dropped or anything slow runs.
        (["bench.startup", "--settle", "-1"], "argument --settle: -1 is not a finite number"),
        (["bench.startup", "--settle", "nan"], "argument --settle: nan is not a finite number"),
        (
            ["bench.settlement", "--latency-seconds", "inf"],
            "argument --latency-seconds: inf is not a finite number",
        ),
        (["bench.startup", "--only", "nomatch"], "--only 'nomatch' matches none of: serve,"),
        (
            ["bench.settle_tx", "--invoices", "100", "--rounds", "3"],
            "--invoices 100 does not divide into 3 rounds",
        ),
        (["bench.ledger", "--database-url", "notaurl"], "'notaurl' is not a database URL"),
        (["bench.settle_tx", "--database-url", "::"], "'::' is not a database URL"),
        # A SQLite file is not PostgreSQL: never a PostgreSQL database named after its path.
        (
            ["bench.outbox", "--database-url", "sqlite+aiosqlite:////tmp/outbox_bench.db"],
            "is a sqlite URL; this bench needs PostgreSQL",
        ),
        (
            ["bench.settlement", "--database-url", "sqlite:///tmp/bench.db"],
            "is a sqlite URL; this bench needs PostgreSQL",
        ),
        (
            ["bench.reads", "--small-url", SAME_DATABASE, "--big-url", SAME_DATABASE],
            "--small-url and --big-url name the same database",
        ),
        (["bench.broadcast", "--rate", "0"], "argument --rate: 0 is not above 0 and at most 30"),
        (["bench.broadcast", "--rate", "nan"], "argument --rate: nan is not above 0"),
        (["bench.broadcast", "--rate", "31"], "argument --rate: 31 is not above 0 and at most 30"),
        (
            ["bench.broadcast", "--redis-url", "127.0.0.1:6379"],
            "'127.0.0.1:6379' is not a redis:// or rediss:// URL",
        ),
        (
            ["bench.broadcast", "--database-url", "sqlite:///tmp/broadcast.db"],
            "is a sqlite URL; this bench needs PostgreSQL",
        ),
        (
            ["bench.faults", "--max-minutes", "-5"],
            "argument --max-minutes: -5 is not a finite number",
        ),
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


def test_an_unreachable_redis_is_one_line_before_anything_is_seeded() -> None:
    """SatShare falls back to pacing each process alone when Redis is down: the broadcast
    bench would measure that fallback, not Redis."""
    where = f"127.0.0.1:{closed_port()}/0"
    done = run_bench("bench.broadcast", "--users", "5", "--redis-url", f"redis://:hunter2@{where}")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"cannot reach Redis at redis://***@{where} (")  # no password
    assert line.endswith("start it, or leave out --redis-url")


def test_a_database_the_bench_would_not_drop_is_refused() -> None:
    done = run_bench("bench.startup", "--database-url", "postgresql://postgres@127.0.0.1/shop")
    assert done.returncode == 1
    assert done.stderr.strip() == "refusing to drop database 'shop': the name must contain 'bench'"


def test_pgbench_failing_is_one_line_with_its_own_words() -> None:
    """pgbench's own reason (here: more clients than the server takes), not a traceback of
    the subprocess call that hid its output."""
    from bench.settlement import call_pgbench

    if shutil.which("pgbench") is None:
        pytest.skip("pgbench is not installed (it comes with PostgreSQL)")
    with pytest.raises(SystemExit) as stopped:
        call_pgbench(["-h", "127.0.0.1", "-p", str(closed_port()), "-n", "-T", "1", "nothing"])
    message = str(stopped.value.code)
    assert message.startswith("pgbench failed (") and "\n" not in message
    assert "connection" in message or "connect" in message, message
