"""Reads at scale: each read on a small and a big seeded database, and big/small per read.

    .venv/bin/python -m bench.reads                       # 10k users / 50k payments vs 1M / 5M
    .venv/bin/python -m bench.reads --big-users 200000 --big-payments 1000000

Seeds both PostgreSQL databases with ``bench/seed.py`` (skipped with ``--reuse`` when a
database already holds a seeded history; a reused one is migrated to the head first), then
times every read the issue names, the same
way on both: the leaderboard (sales and referrals; week, month, all), the public
transparency figures, the biggest affiliate's ``users/{id}`` and ``affiliates/{id}/stats``,
the monthly report and the admin dashboard (last 30 days). Each read is timed twice:

- ``flow``: the use case the endpoint calls, in this process (the read's own cost);
- ``http``: the endpoint of a ``satshare serve`` started on that database (``--no-http``
  skips it; the dashboard is an admin page, timed as a flow only). The transparency endpoint
  caches its answer for 15 s: each of its rounds waits that out, so every answer timed is
  read afresh.

Each figure is the median of ``--repeat`` rounds after one warm-up; in each round the small
and the big database are timed one right after the other, so both see the same load on a
shared machine. Results are printed as a table and written to bench/results/reads.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.seed import PLANS, migrate, seed
from bench.settlement import positive_int, postgresql_url
from satshare.affiliates.stats import Period, Ranking
from satshare.api.routes.transparency import CACHE_SECONDS
from satshare.db import Database
from satshare.payments import flows as payment_flows
from satshare.payments import referrals
from satshare.reports import dashboard as dashboards
from satshare.reports import flows as report_flows
from satshare.reports.monthly import PAGE_LINES, current_month

ROOT = Path(__file__).resolve().parents[1]
BIG_AFFILIATE = 1  # the seed sends most referrals to the earliest affiliate


@dataclass(frozen=True, slots=True)
class Size:
    label: str
    url: str
    users: int
    payments: int


Read = Callable[[], Awaitable[object]]


def flow_reads(db: Database) -> dict[str, Read]:
    def now() -> datetime:
        return datetime.now(UTC)

    async def dashboard() -> object:
        start, end = dashboards.period("30d", now())
        async with db.reading() as session:
            return await dashboards.dashboard(session, start, end, now())

    reads: dict[str, Read] = {}
    for by in get_args(Ranking):
        for period in ("week", "month", "all"):
            reads[f"leaderboard {by} {period}"] = _leaderboard(db, by, period)
    reads["transparency"] = lambda: report_flows.transparency(db, now())
    reads["users/{id}"] = lambda: payment_flows.user_view(db, BIG_AFFILIATE, 0, now())
    reads["affiliates/{id}/stats"] = lambda: referrals.affiliate_figures(db, BIG_AFFILIATE)
    # What the JSON endpoint reads: the totals and the first page of affiliate lines.
    reads["monthly report"] = lambda: report_flows.month(
        db, current_month(now()), now(), limit=PAGE_LINES
    )
    reads["admin dashboard"] = dashboard
    return reads


def _leaderboard(db: Database, by: Ranking, period: Period) -> Read:
    return lambda: referrals.top(db, by, period, datetime.now(UTC), 10)


def http_paths() -> dict[str, str]:
    paths = {
        f"leaderboard {by} {period}": f"/api/v1/leaderboard?by={by}&period={period}"
        for by in ("sales", "referrals")
        for period in ("week", "month", "all")
    }
    paths["transparency"] = "/api/v1/transparency"
    paths["users/{id}"] = f"/api/v1/users/{BIG_AFFILIATE}"
    paths["affiliates/{id}/stats"] = f"/api/v1/affiliates/{BIG_AFFILIATE}/stats"
    paths["monthly report"] = "/api/v1/reports/monthly"
    return paths


async def interleaved(
    small: Read, big: Read, repeat: int, pause: float = 0.0
) -> tuple[float, float]:
    """Median seconds of each read, the two timed in turns (so both see the same load on a
    shared machine), after one warm-up each (connections, prepared statements, the OS
    cache); ``pause`` between rounds (to outwait a cache)."""
    await small()
    await big()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        if pause:
            await asyncio.sleep(pause)
        for read, into in ((small, samples[0]), (big, samples[1])):
            started = time.perf_counter()
            await read()
            into.append(time.perf_counter() - started)
    return statistics.median(samples[0]), statistics.median(samples[1])


async def held(url: str) -> tuple[int, int] | None:
    """The users and payments a database holds; None when it is missing or not migrated."""
    parsed = make_url(url)
    try:
        conn = await asyncpg.connect(
            host=parsed.host,
            port=parsed.port or 5432,
            user=parsed.username,
            database=parsed.database,
        )
    except (asyncpg.InvalidCatalogNameError, OSError):
        return None
    try:
        users = await conn.fetchval("SELECT count(*) FROM users")
        payments = await conn.fetchval("SELECT count(*) FROM payments")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return int(users), int(payments)


def near(found: int, wanted: int) -> bool:
    """Within a tenth of the size asked for (the seeder's own rounding), either way: a much
    bigger database would make the ratio a lie about the size measured."""
    return abs(found - wanted) <= wanted * 0.1


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``satshare serve`` on a database, with an admin API key."""

    def __init__(self, url: str) -> None:
        self.port = free_port()
        config = {
            "database": {"url": url, "pool_size": 10},
            "server": {"host": "127.0.0.1", "port": self.port},
            # Never called: the seeded invoices are all settled, and nothing reconciles.
            "btcpay": {
                "url": "http://127.0.0.1:9",
                "api_key": "bench-reads-btcpay-key",
                "store_id": "bench",
                "webhook_secret": "bench-reads-webhook-hmac-key",
            },
            "payments": {"reconcile_interval_seconds": 86400},
            "plans": [
                {"id": pid, "title": title, "price_sats": price, "duration_days": days}
                for pid, title, price, days in PLANS
            ],
            "api": {"rate_limit": {"enabled": False}},
            "log_level": "warning",
        }
        handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # noqa: SIM115
        handle.write(json.dumps(config))
        handle.close()
        self.config = handle.name
        self.process: subprocess.Popen[bytes] | None = None
        self.key = ""

    def _cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "satshare", "--config", self.config, *args],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    async def __aenter__(self) -> Server:
        created = self._cli("api-key", "create", "--name", "bench-reads", "--scopes", "admin")
        self.key = created.strip().splitlines()[-1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "satshare", "--config", self.config, "serve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/health")).is_success:
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("satshare serve did not come up")

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        os.unlink(self.config)


def _show(name: str, how: str, small: float, big: float) -> None:
    print(
        f"  {name + ' (' + how + ')':<34} small {small * 1000:8.1f} ms   big {big * 1000:8.1f} ms"
        f"   big/small {big / small:5.2f}",
        flush=True,
    )


async def measure(small: Size, big: Size, repeat: int, http: bool) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    dbs = Database(small.url), Database(big.url)
    try:
        reads = flow_reads(dbs[0]), flow_reads(dbs[1])
        for name in reads[0]:
            a, b = await interleaved(reads[0][name], reads[1][name], repeat)
            results[name] = {"flow": {"small": a, "big": b, "ratio": b / a}}
            _show(name, "flow", a, b)
    finally:
        for db in dbs:
            await db.dispose()
    if not http:
        return results
    async with Server(small.url) as one, Server(big.url) as other:
        clients = [
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{server.port}",
                headers={"Authorization": f"Bearer {server.key}"},
                timeout=600,
            )
            for server in (one, other)
        ]
        try:
            for name, path in http_paths().items():

                def get(client: httpx.AsyncClient, path: str = path) -> Read:
                    async def read() -> object:
                        response = await client.get(path)
                        response.raise_for_status()
                        return response

                    return read

                # The transparency endpoint caches its answer: outwait the cache each round.
                pause = CACHE_SECONDS + 0.5 if name == "transparency" else 0.0
                a, b = await interleaved(get(clients[0]), get(clients[1]), repeat, pause)
                results[name]["http"] = {"small": a, "big": b, "ratio": b / a}
                _show(name, "http", a, b)
        finally:
            for client in clients:
                await client.aclose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    host = "postgresql://postgres@127.0.0.1:5432"
    for label in ("small", "big"):
        parser.add_argument(
            f"--{label}-url",
            type=postgresql_url,
            default=f"{host}/bench_f_{label}",
            help="seeded afresh unless --reuse finds it seeded: its name must contain 'bench'",
        )
    parser.add_argument("--small-users", type=positive_int, default=10_000)
    parser.add_argument("--small-payments", type=positive_int, default=50_000)
    parser.add_argument("--big-users", type=positive_int, default=1_000_000)
    parser.add_argument("--big-payments", type=positive_int, default=5_000_000)
    parser.add_argument("--repeat", type=positive_int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep databases already seeded")
    parser.add_argument("--no-http", action="store_true", help="time the flows only")
    args = parser.parse_args()
    small, big = (make_url(u) for u in (args.small_url, args.big_url))
    if (small.host, small.port, small.database) == (big.host, big.port, big.database):
        parser.error("--small-url and --big-url name the same database")
    if args.big_payments <= args.small_payments or args.big_users < args.small_users:
        parser.error("the big history must hold more payments (and no fewer users) than the small")
    sizes = [
        Size("small", args.small_url, args.small_users, args.small_payments),
        Size("big", args.big_url, args.big_users, args.big_payments),
    ]
    for size in sizes:
        found = await held(size.url) if args.reuse else None
        if found is not None and near(found[0], size.users) and near(found[1], size.payments):
            await migrate(size.url)  # a database seeded by an older revision
            continue
        if found is not None:
            print(
                f"{size.label} holds {found[0]} users and {found[1]} payments, not about "
                f"{size.users} and {size.payments}: seeding it again",
                flush=True,
            )
        print(f"seeding {size.label}: {size.users} users, {size.payments} payments", flush=True)
        started = time.monotonic()
        await seed(size.url, size.users, size.payments)
        print(f"  seeded in {time.monotonic() - started:.0f} s", flush=True)
    print(f"timing (median of {args.repeat}, small and big in turns)", flush=True)
    results: dict[str, Any] = {
        # What each database holds, counted, not what was asked for.
        "sizes": {
            s.label: dict(zip(("users", "payments"), await held(s.url) or (0, 0), strict=True))
            for s in sizes
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "reads": await measure(sizes[0], sizes[1], args.repeat, not args.no_http),
    }
    print()
    print(f"{'read':<34} {'small ms':>10} {'big ms':>10} {'big/small':>10}")
    for name, by_how in results["reads"].items():
        for how, figures in by_how.items():
            print(
                f"{name + ' (' + how + ')':<34} {figures['small'] * 1000:>10.1f} "
                f"{figures['big'] * 1000:>10.1f} {figures['ratio']:>10.2f}"
            )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "reads.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
