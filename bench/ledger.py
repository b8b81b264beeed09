"""`satshare ledger verify` and `ledger export` on a big ledger: time and peak memory.

Seeds a database with N sales (one per payment, as settlement writes them: the clearing
account debited, the owner and, for half of them, an affiliate credited, a memo note) and
seals them into both hash chains with the ledger's own functions (``chain_record`` /
``note_record``, ``chain_hash``), so the seeded ledger verifies clean. Then runs the real
commands as child processes and reads their peak resident memory (``wait4``'s ru_maxrss).

The baseline, in the same run, is the database alone producing the same rows
(``COPY (SELECT …) TO STDOUT`` into nothing, PostgreSQL only): what any reader must pay.
Memory at the largest size over memory at the smallest shows whether it stays flat.

    .venv/bin/python -m bench.ledger --sizes 100000,1000000

The database named by --database-url is dropped and recreated for every size (its name
must contain "bench"), one database per size (the size appended to its name); with
``--reuse`` a database already seeded with that size is kept and only timed again (seeding
a million payments takes minutes). ``--database-url sqlite:///path.db`` runs the same on
SQLite. Results are also written to bench/results/ledger.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench.seed import advance_sequences
from bench.settlement import database_url, positive_int, recreate_database
from satshare.ledger import accounts
from satshare.ledger.chain import GENESIS_HASH, ChainRecord, NoteRecord, chain_hash
from satshare.money import split

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 20_000
AFFILIATES = 1_000
PRICE_SATS = 21_000
SHARE_BPS = 2_000
START = datetime(2026, 1, 1, tzinfo=UTC)
GOAL_SECONDS_AT_1M = 30


@dataclass
class Rows:
    """One chunk of seeded rows, table by table, in column order."""

    entries: list[tuple[object, ...]]
    postings: list[tuple[object, ...]]
    links: list[tuple[object, ...]]
    notes: list[tuple[object, ...]]
    note_links: list[tuple[object, ...]]


COLUMNS = {
    "entries": (
        "ledger_entries",
        (
            "id",
            "idempotency_key",
            "kind",
            "created_at",
            "invoice_id",
            "gross_sats",
            "share_bps",
            "terms",
            "affiliate_user_id",
            "reverses_entry_id",
            "created_by",
        ),
    ),
    "postings": ("ledger_postings", ("id", "entry_id", "account_id", "amount_sats")),
    "links": ("ledger_chain", ("seq", "entry_id", "prev_hash", "hash", "sealed_at")),
    "notes": ("ledger_entry_notes", ("id", "entry_id", "memo", "author", "created_at")),
    "note_links": ("ledger_note_chain", ("seq", "note_id", "prev_hash", "hash", "sealed_at")),
}
OWNER, CLEARING = 1, 2  # account ids; affiliate n (user id n) has account id 2 + n


def chunks(count: int) -> Iterator[Rows]:
    """N sales with their postings, memo notes and both chains' links, CHUNK at a time."""
    prev_entry, prev_note, posting_id = GENESIS_HASH, GENESIS_HASH, 0
    for first in range(1, count + 1, CHUNK):
        rows = Rows([], [], [], [], [])
        for entry_id in range(first, min(first + CHUNK, count + 1)):
            created = START + timedelta(seconds=entry_id * 17)
            affiliate = (entry_id % AFFILIATES) + 1 if entry_id % 2 == 0 else None
            sale = split(PRICE_SATS, SHARE_BPS if affiliate else 0)
            postings = [(accounts.clearing("btcpay"), CLEARING, sale.gross_sats)]
            postings.append((accounts.OWNER_REVENUE, OWNER, -sale.owner_sats))
            if affiliate is not None:
                postings.append(
                    (accounts.affiliate_payable(affiliate), 2 + affiliate, -sale.affiliate_sats)
                )
            entry = ChainRecord(
                seq=entry_id,
                entry_id=entry_id,
                idempotency_key=f"settle:bench-{entry_id}",
                kind="sale",
                created_at=created,
                invoice_id=f"bench-invoice-{entry_id}",
                gross_sats=sale.gross_sats,
                share_bps=sale.share_bps,
                affiliate_user_id=affiliate,
                reverses_entry_id=None,
                postings=tuple((code, amount) for code, _, amount in postings),
                terms="base" if affiliate else None,
            )
            rows.entries.append(
                (
                    entry_id,
                    entry.idempotency_key,
                    entry.kind,
                    created,
                    entry.invoice_id,
                    entry.gross_sats,
                    entry.share_bps,
                    entry.terms,
                    affiliate,
                    None,
                    "system",
                )
            )
            for _, account_id, amount in postings:
                posting_id += 1
                rows.postings.append((posting_id, entry_id, account_id, amount))
            digest = chain_hash(prev_entry, entry)
            rows.links.append((entry_id, entry_id, prev_entry, digest, created))
            prev_entry = digest
            note = NoteRecord(
                seq=entry_id,
                note_id=entry_id,
                entry_id=entry_id,
                memo=f"Bench plan: invoice bench-invoice-{entry_id}",
                author="system",
                created_at=created,
            )
            rows.notes.append((entry_id, entry_id, note.memo, note.author, created))
            digest = chain_hash(prev_note, note)
            rows.note_links.append((entry_id, entry_id, prev_note, digest, created))
            prev_note = digest
        yield rows
    heads.update({"entries": prev_entry, "notes": prev_note})


heads: dict[str, str] = {}


def fixed_rows() -> dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]]:
    users: list[tuple[object, ...]] = [
        (n, "api", f"affiliate{n}", "en", f"bench{n:08d}", START, START)
        for n in range(1, AFFILIATES + 1)
    ]
    ledger_accounts: list[tuple[object, ...]] = [
        (OWNER, accounts.OWNER_REVENUE, "revenue", None, START),
        (CLEARING, accounts.clearing("btcpay"), "asset", None, START),
    ]
    ledger_accounts += [
        (2 + n, accounts.affiliate_payable(n), "liability", n, START)
        for n in range(1, AFFILIATES + 1)
    ]
    return {
        "users": (
            ("id", "platform", "username", "language", "referral_code", "created_at", "updated_at"),
            users,
        ),
        "ledger_accounts": (("id", "code", "kind", "user_id", "created_at"), ledger_accounts),
    }


async def seed_postgresql(url: str, count: int) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        for table, (columns, records) in fixed_rows().items():
            await conn.copy_records_to_table(table, records=records, columns=columns)
        for rows in chunks(count):
            for name, (table, columns) in COLUMNS.items():
                await conn.copy_records_to_table(
                    table, records=getattr(rows, name), columns=columns
                )
        await conn.executemany(
            "INSERT INTO ledger_chain_head (id, seq, hash) VALUES ($1, $2, $3)",
            [(1, count, heads["entries"]), (2, count, heads["notes"])],
        )
        await advance_sequences(
            conn, ("users", "ledger_accounts", "ledger_entries", "ledger_postings")
        )
        # As a live database is: statistics, hint bits and the visibility map in place, so
        # the first command measured does not pay for the bulk load.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def seed_sqlite(path: str, count: int) -> None:
    def stored(value: object) -> object:
        # SQLAlchemy's SQLite DateTime: naive UTC as text.
        if isinstance(value, datetime):
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        return value

    def insert(
        db: sqlite3.Connection,
        table: str,
        columns: tuple[str, ...],
        records: list[tuple[object, ...]],
    ) -> None:
        marks = ", ".join("?" for _ in columns)
        db.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            ([stored(v) for v in record] for record in records),
        )

    db = sqlite3.connect(path)
    try:
        for table, (columns, records) in fixed_rows().items():
            insert(db, table, columns, records)
        for rows in chunks(count):
            for name, (table, columns) in COLUMNS.items():
                insert(db, table, columns, getattr(rows, name))
        insert(
            db,
            "ledger_chain_head",
            ("id", "seq", "hash"),
            [(1, count, heads["entries"]), (2, count, heads["notes"])],
        )
        db.commit()
    finally:
        db.close()


@dataclass
class Measured:
    seconds: float
    #: CPU seconds the command used (user + system): steadier than wall time on a busy machine.
    cpu_seconds: float
    peak_mib: float


@dataclass
class Result:
    payments: int
    #: ``ledger verify --workers 1``: the whole walk in one process.
    verify_one: Measured
    #: ``ledger verify`` as it runs by default (one worker process per CPU on PostgreSQL).
    verify: Measured
    export: Measured
    #: The database alone streaming the same rows (PostgreSQL; None on SQLite).
    database_read: float | None


def spawn_measured(args: list[str], env: dict[str, str]) -> Measured:
    """A satshare command as a child: wall time and its own peak RSS (``wait4`` reaps it
    here, so the rusage is that child's alone)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "satshare", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"satshare {' '.join(args)} failed:\n{errors.read().decode()}")
    return Measured(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


async def raw_read_seconds(url: str) -> float:
    """The database alone streaming the rows verify reads (entries with postings, notes)."""
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )

    async def nothing(_: bytes) -> None:
        return None

    try:
        started = time.perf_counter()
        await conn.copy_from_query(
            "SELECT c.seq, c.prev_hash, c.hash, e.*, a.code, p.amount_sats FROM ledger_chain c "
            "JOIN ledger_entries e ON e.id = c.entry_id "
            "JOIN ledger_postings p ON p.entry_id = e.id "
            "JOIN ledger_accounts a ON a.id = p.account_id ORDER BY c.seq",
            output=nothing,
        )
        await conn.copy_from_query(
            "SELECT c.*, n.* FROM ledger_note_chain c "
            "JOIN ledger_entry_notes n ON n.id = c.note_id ORDER BY c.seq",
            output=nothing,
        )
        return time.perf_counter() - started
    finally:
        await conn.close()


def sized_url(url: str, count: int) -> str:
    """The database for one size: the size appended to the name (``--reuse`` keeps each)."""
    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        stem, dot, suffix = name.rpartition(".")
        sized = f"{stem}_{count}.{suffix}" if dot else f"{name}_{count}"
    else:
        sized = f"{name}_{count}"
    return parsed.set(database=sized).render_as_string(hide_password=False)


def seeded_payments(url: str) -> int | None:
    """The entries a seeded database holds (the chain head's seq), None if it has none."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not Path(parsed.database or "").exists():
            return None
        db = sqlite3.connect(parsed.database or "")
        try:
            row = db.execute("SELECT seq FROM ledger_chain_head WHERE id = 1").fetchone()
        except sqlite3.Error:
            return None
        finally:
            db.close()
        return int(row[0]) if row else None

    async def head() -> int | None:
        try:
            conn = await asyncpg.connect(
                host=parsed.host,
                port=parsed.port or 5432,
                user=parsed.username,
                password=parsed.password,
                database=parsed.database,
            )
        except asyncpg.InvalidCatalogNameError:
            return None
        except (OSError, asyncpg.PostgresError) as exc:
            sys.exit(f"cannot reach PostgreSQL at {parsed.host}:{parsed.port or 5432} ({exc})")
        try:
            value = await conn.fetchval("SELECT seq FROM ledger_chain_head WHERE id = 1")
        except asyncpg.UndefinedTableError:
            return None
        finally:
            await conn.close()
        return int(value) if value is not None else None

    return asyncio.run(head())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        type=database_url,
        default="postgresql://postgres@127.0.0.1:5432/satshare_bench_ledger",
        help="PostgreSQL or sqlite:///file.db; each size's database (the name with the size "
        "appended, which must contain 'bench') is dropped and seeded again",
    )
    parser.add_argument(
        "--sizes", default="100000,1000000", help="comma-separated numbers of payments"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep a database already seeded with the size instead of seeding it again",
    )
    args = parser.parse_args()
    try:
        # Smallest first: each later size is compared with the first.
        sizes = sorted({positive_int(size) for size in args.sizes.split(",")})
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--sizes: {exc}")
    sqlite = args.database_url.startswith("sqlite")
    # Bytecode cached as an installed package has it (see bench/startup.py).
    base_env = {
        **os.environ,
        "PYTHONPYCACHEPREFIX": os.path.join(tempfile.gettempdir(), "satshare-bench-pycache"),
    }
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    results: list[Result] = []
    for count in sizes:
        url = sized_url(args.database_url, count)
        env = {**base_env, "SATSHARE_DATABASE__URL": url}
        path = make_url(url).database or ""
        if args.reuse and seeded_payments(url) == count:
            print(f"reusing {count:,} payments", file=sys.stderr, flush=True)
        else:
            if sqlite:
                if "bench" not in path:
                    sys.exit(f"refusing to replace {path!r}: the name must contain 'bench'")
                for suffix in ("", "-wal", "-shm"):
                    Path(path + suffix).unlink(missing_ok=True)
            else:
                asyncio.run(recreate_database(url))
            subprocess.run(
                [sys.executable, "-m", "satshare", "migrate"],
                env=env,
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
            print(f"seeding {count:,} payments…", file=sys.stderr, flush=True)
            started = time.perf_counter()
            if sqlite:
                seed_sqlite(path, count)
            else:
                asyncio.run(seed_postgresql(url, count))
            print(f"  seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        baseline = None if sqlite else asyncio.run(raw_read_seconds(url))
        verify_one = spawn_measured(["ledger", "verify", "--workers", "1"], env)
        verify = spawn_measured(["ledger", "verify"], env)
        with tempfile.TemporaryDirectory() as tmp:
            target = os.path.join(tmp, "ledger.jsonl")
            export = spawn_measured(["ledger", "export", "--output", target], env)
            lines = sum(1 for _ in open(target, encoding="utf-8"))  # noqa: SIM115
        if lines != count:
            raise RuntimeError(f"export wrote {lines} lines for {count} entries")
        results.append(Result(count, verify_one, verify, export, baseline))
        print(f"  {results[-1]}", file=sys.stderr, flush=True)

    print(
        f"\n{'payments':>10} {'verify -w1':>10} {'CPU':>9} {'peak':>9} {'verify':>9} {'CPU':>9} "
        f"{'peak':>9} {'export':>9} {'CPU':>9} {'peak':>9} {'db read':>8}"
    )
    for row in results:
        print(
            f"{row.payments:>10,} {row.verify_one.seconds:8.1f} s "
            f"{row.verify_one.cpu_seconds:7.1f} s {row.verify_one.peak_mib:5.0f} MiB "
            f"{row.verify.seconds:7.1f} s {row.verify.cpu_seconds:7.1f} s "
            f"{row.verify.peak_mib:5.0f} MiB {row.export.seconds:7.1f} s "
            f"{row.export.cpu_seconds:7.1f} s {row.export.peak_mib:5.0f} MiB "
            + (f"{row.database_read:6.1f} s" if row.database_read is not None else "     n/a")
        )
    if len(results) > 1:
        small, big = results[0], results[-1]
        print(
            f"\n{big.payments / small.payments:.0f}x the payments: memory "
            f"x{big.verify.peak_mib / small.verify.peak_mib:.2f} (verify), "
            f"x{big.export.peak_mib / small.export.peak_mib:.2f} (export); time "
            f"x{big.verify.seconds / small.verify.seconds:.1f} (verify), "
            f"x{big.export.seconds / small.export.seconds:.1f} (export)"
        )
    for row in results:
        if row.database_read:
            print(
                f"{row.payments:>10,} payments: verify {row.verify.seconds / row.database_read:.1f}x"
                f" ({row.verify_one.seconds / row.database_read:.1f}x in one process), export "
                f"{row.export.seconds / row.database_read:.1f}x the database's own read; "
                f"workers: verify in {row.verify.seconds / row.verify_one.seconds:.2f} of one "
                "process's time"
            )
    print(
        f"goal (#15): verify of 1,000,000 payments within {GOAL_SECONDS_AT_1M} s, flat memory; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ledger.json").write_text(
        json.dumps([dataclasses.asdict(row) for row in results], indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
