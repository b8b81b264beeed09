"""Settlement throughput on PostgreSQL versus pgbench TPC-B on the same database.

Starts the BTCPay emulator and `satshare serve` as separate processes, sells N subscriptions
through the REST API, pays every invoice on the emulator, then fires one signed
`InvoiceSettled` webhook per invoice at SatShare and measures settled payments per second
(each one: signature check, inbox row, re-fetch of invoice and payment methods over HTTP,
one transaction with payment, split entry, subscription and outbox rows). Then, at half
that peak rate, it sends webhooks at a fixed pace (open loop: each is sent when due, whether
or not earlier ones have been answered) and prints the latency's p50 and p99. Then runs
pgbench's TPC-B on the same database and prints both rates and the ratio. Beside the rate it
prints the CPU time the `serve` processes (and the emulator) spent per settlement: on a
machine shared with other work the rate moves with the load, the CPU per settlement much
less.

    .venv/bin/python -m bench.settlement --invoices 2000 --concurrency 64
    .venv/bin/python -m bench.settlement --workers 2      # server.workers: 2 (one port)
    .venv/bin/python -m bench.settlement --servers 2      # two serve processes, two ports

The database named by --database-url is dropped and recreated (its name must contain
"bench"). Results are also written to bench/results/settlement.json (settlement_workers2.json
with --workers 2, settlement_servers2.json with --servers 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from satshare.security import hmac_sha256_hex
from satshare.sim.loadclient import Reply, Request, send_all, send_at_rate

ROOT = Path(__file__).resolve().parents[1]
# Not placeholder-looking: start-up refuses secrets that do (#9).
API_KEY, STORE, SECRET = "bench-btcpay-key", "bench-store", "bench-hmac-7f3a9c21d4e8b605"


def positive_int(text: str) -> int:
    """An argparse type: a count of one or more (a zero would only divide by zero later)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def duration(text: str) -> float:
    """An argparse type: a finite duration of 0 or more, in the option's unit. NaN, infinity
    and negatives would only fail later, after the bench had dropped its database and done
    its slow part."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number, 0 or more")
    return value


def database_url(text: str) -> str:
    """An argparse type: a database URL SQLAlchemy can read, as given."""
    try:
        make_url(text)
    except ArgumentError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a database URL (e.g. "
            "postgresql://postgres@127.0.0.1:5432/satshare_bench)"
        ) from None
    return text


#: What SQLAlchemy names PostgreSQL in a URL (``postgres://`` is the short form SatShare
#: also takes).
POSTGRESQL_SCHEMES = ("postgresql", "postgres")


def postgresql_url(text: str) -> str:
    """An argparse type: a PostgreSQL database URL (the benches that drop and recreate their
    database, or run pgbench beside it, need PostgreSQL)."""
    backend = make_url(database_url(text)).get_backend_name()
    if backend not in POSTGRESQL_SCHEMES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is a {backend} URL; this bench needs PostgreSQL "
            "(postgresql://user@host:5432/name_with_bench)"
        )
    return text


def add_postgresql_option(parser: argparse.ArgumentParser) -> None:
    """``--database-url`` for a bench that runs on a fresh SQLite file unless told."""
    parser.add_argument(
        "--database-url",
        type=postgresql_url,
        default=None,
        help="a PostgreSQL database, dropped and recreated (its name must contain 'bench'); "
        "default: a fresh SQLite file",
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def recreate_database(url: str) -> None:
    """Drop and create the bench's own database (its name must contain 'bench'). A
    PostgreSQL that cannot be reached or refuses stops the bench with one line saying so."""
    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() not in POSTGRESQL_SCHEMES:
        sys.exit(f"refusing to recreate {url!r}: only a PostgreSQL database is recreated")
    if "bench" not in name:
        sys.exit(f"refusing to drop database {name!r}: the name must contain 'bench'")
    where = f"{parsed.host or '127.0.0.1'}:{parsed.port or 5432}"
    try:
        admin = await asyncpg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, database="postgres"
        )
    except (OSError, asyncpg.PostgresError) as exc:
        sys.exit(
            f"cannot reach PostgreSQL at {where} ({exc}): start it, or give the bench "
            "another database URL (its --help names the option)"
        )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as exc:
        sys.exit(f"cannot recreate database {name!r} on {where}: {exc}")
    finally:
        await admin.close()


async def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def call_pgbench(args: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["pgbench", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        # pgbench's line with "error" names the problem (too many clients for the server, a
        # refused connection); its hints follow on later lines.
        reason = next((line for line in said if "error" in line), said[-1] if said else "")
        sys.exit(f"pgbench failed ({reason or f'exit {done.returncode}'})")
    return done


def run_pgbench(url: str, clients: int, seconds: int, *, init: bool = True) -> float:
    """pgbench TPC-B's tps on the database at ``url`` (``init``: create its tables first)."""
    parsed = make_url(url)
    conn = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    if parsed.username:
        conn += ["-U", parsed.username]
    db = parsed.database or ""
    if shutil.which("pgbench") is None:
        sys.exit("pgbench not found: it comes with PostgreSQL (Debian: the postgresql package)")
    if init:
        call_pgbench([*conn, "-i", "-q", "-s", "10", db])
    done = call_pgbench([*conn, "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), db])
    match = re.search(r"tps = ([\d.]+)", done.stdout)
    if not match:
        raise RuntimeError(f"cannot read pgbench output:\n{done.stdout}")
    return float(match.group(1))


def process_tree(roots: list[int]) -> list[int]:
    """``roots`` and every process descended from them (a `serve` with workers, or one run
    under BENCH_SERVE_PREFIX such as py-spy)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes ``pids`` have used (those still running)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def sent(base_url: str, requests: list[Request], concurrency: int = 32) -> list[Reply]:
    """``send_all``, sending again (up to 5 times) what was answered 5xx: on a loaded
    machine creating an invoice at the emulator can time out (502). Not timed."""
    replies = await send_all(base_url, requests, concurrency=concurrency)
    for _ in range(5):
        again = [i for i, r in enumerate(replies) if r.status >= 500]
        if not again:
            break
        await asyncio.sleep(1)
        for i, reply in zip(
            again, await send_all(base_url, [requests[i] for i in again], concurrency), strict=True
        ):
            replies[i] = reply
    return replies


class Invoices:
    """Sells subscriptions through the API and pays them on the emulator (not timed)."""

    def __init__(self, app_url: str, sim_url: str, auth: tuple[tuple[str, str], ...]) -> None:
        self.app_url, self.sim_url, self.auth = app_url, sim_url, auth
        self.made = 0
        self.affiliate_id: int | None = None

    async def paid(self, count: int) -> list[str]:
        if self.affiliate_id is None:
            reply = await sent(
                self.app_url,
                [
                    Request(
                        "POST",
                        "/api/v1/users",
                        json.dumps({"username": "affiliate", "platform": "api"}).encode(),
                        self.auth,
                    )
                ],
            )
            self.affiliate_id = json.loads(reply[0].body)["user_id"]
        first, self.made = self.made, self.made + count
        users = await sent(
            self.app_url,
            [
                Request(
                    "POST",
                    "/api/v1/users",
                    json.dumps(
                        {
                            "username": f"buyer{i}",
                            "platform": "api",
                            **({"referral_id": self.affiliate_id} if i % 2 == 0 else {}),
                        }
                    ).encode(),
                    self.auth,
                )
                for i in range(first, first + count)
            ],
            concurrency=32,
        )
        orders = await sent(
            self.app_url,
            [
                Request(
                    "POST",
                    "/api/v1/subscriptions",
                    json.dumps(
                        {"user_id": json.loads(u.body)["user_id"], "subscription_type": "bench"}
                    ).encode(),
                    self.auth,
                )
                for u in users
            ],
            concurrency=32,
        )
        for reply in (*users, *orders):
            if reply.status != 201:
                raise RuntimeError(f"setting up failed: {reply.status} {reply.body[:500]!r}")
        invoice_ids = [json.loads(o.body)["invoice"]["provider_invoice_id"] for o in orders]
        paid = await sent(
            self.sim_url,
            [
                Request(
                    "POST",
                    f"/_sim/invoices/{i}/pay",
                    b'{"method":"BTC-LN"}',
                    (("Content-Type", "application/json"),),
                )
                for i in invoice_ids
            ],
            concurrency=32,
        )
        assert all(p.status == 200 for p in paid)
        return invoice_ids


def webhooks_for(invoice_ids: list[str], tag: str) -> list[Request]:
    """One signed InvoiceSettled notification per invoice, as BTCPay sends it."""
    webhooks = []
    for n, invoice_id in enumerate(invoice_ids):
        body = json.dumps(
            {
                "deliveryId": f"bench-{tag}-{n}",
                "webhookId": "bench",
                "originalDeliveryId": f"bench-{tag}-{n}",
                "isRedelivery": False,
                "type": "InvoiceSettled",
                "timestamp": int(time.time()),
                "storeId": STORE,
                "invoiceId": invoice_id,
                "metadata": {},
                "manuallyMarked": False,
                "overPaid": False,
            }
        ).encode()
        signature = "sha256=" + hmac_sha256_hex(SECRET, body)
        webhooks.append(
            Request(
                "POST",
                "/api/v1/webhooks/btcpay",
                body,
                (("BTCPay-Sig", signature), ("Content-Type", "application/json")),
            )
        )
    return webhooks


async def settle_all(
    app_urls: list[str], webhooks: list[Request], replies: list[Reply], concurrency: int
) -> int:
    """Sends again each webhook answered "retry later" (503) or "processor unreachable"
    (502), as BTCPay redelivers, until every invoice is settled; returns how many were sent
    again. On a loaded machine a re-fetch can time out; the money rules are the same."""
    retried = 0
    for _ in range(5):
        again = [w for w, r in zip(webhooks, replies, strict=True) if r.status in (502, 503)]
        if not again:
            break
        retried += len(again)
        await asyncio.sleep(1)
        answers = iter(await send_all(app_urls[0], again, concurrency=concurrency))
        replies = [next(answers) if r.status in (502, 503) else r for r in replies]
    statuses = [json.loads(r.body).get("status") for r in replies]
    settled = statuses.count("settled")
    if settled != len(webhooks):
        raise RuntimeError(f"only {settled} of {len(webhooks)} settled: {set(statuses)}")
    return retried


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        type=postgresql_url,
        default="postgresql://postgres@127.0.0.1:5432/satshare_bench",
        help="dropped and recreated: its name must contain 'bench'",
    )
    parser.add_argument("--invoices", type=positive_int, default=2000)
    parser.add_argument("--concurrency", type=positive_int, default=64)
    parser.add_argument(
        "--servers",
        type=positive_int,
        default=1,
        help="satshare serve processes, each on its own port",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="server.workers of each serve (one port)"
    )
    parser.add_argument(
        "--latency-seconds",
        type=duration,
        default=20.0,
        help="length of the open-loop run at half the peak rate (0: none)",
    )
    parser.add_argument("--pgbench-clients", type=positive_int, default=16)
    parser.add_argument("--pgbench-seconds", type=positive_int, default=20)
    args = parser.parse_args()

    await recreate_database(args.database_url)
    env = {**os.environ, "SATSHARE_DATABASE__URL": args.database_url}
    python = sys.executable
    subprocess.run([python, "-m", "satshare", "migrate"], env=env, check=True, capture_output=True)

    sim_port = free_port()
    app_ports = [free_port() for _ in range(args.servers)]
    sim_url = f"http://127.0.0.1:{sim_port}"
    app_urls = [f"http://127.0.0.1:{port}" for port in app_ports]
    app_url = app_urls[0]
    configs = []
    for port in app_ports:
        config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # noqa: SIM115
        config.write(
            json.dumps(
                {
                    "database": {"url": args.database_url, "pool_size": 20},
                    "server": {"host": "127.0.0.1", "port": port, "workers": args.workers},
                    "btcpay": {
                        "url": sim_url,
                        "api_key": API_KEY,
                        "store_id": STORE,
                        "webhook_secret": SECRET,
                    },
                    "payments": {"reconcile_interval_seconds": 86400},
                    "plans": [
                        {"id": "bench", "title": "Bench", "price_sats": 21_000, "duration_days": 30}
                    ],
                    # A load generator, not a client: no rate limits (#14).
                    "api": {"rate_limit": {"enabled": False}},
                    "log_level": "warning",
                }
            )
        )
        config.close()
        configs.append(config.name)
    config_name = configs[0]
    # A server that cannot start says why here (a config error, a port in use).
    serve_log = tempfile.TemporaryFile()  # noqa: SIM115
    sim = subprocess.Popen(
        [
            python,
            "-m",
            "satshare",
            "sim",
            "btcpay",
            "--port",
            str(sim_port),
            "--api-key",
            API_KEY,
            "--store-id",
            STORE,
        ],
        stdout=subprocess.DEVNULL,
    )
    servers = [
        subprocess.Popen(
            [
                *os.environ.get("BENCH_SERVE_PREFIX", "").split(),
                python,
                "-m",
                "satshare",
                "--config",
                name,
                "serve",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=serve_log,
        )
        for name in configs
    ]
    procs = [sim, *servers]
    result: dict[str, object] = {
        "invoices": args.invoices,
        "concurrency": args.concurrency,
        "servers": args.servers,
        "workers": args.workers,
        "cpus": os.cpu_count(),
    }
    try:
        await wait_http(f"{sim_url}/_sim/settings")
        for url in app_urls:
            try:
                await wait_http(f"{url}/health")
            except RuntimeError:
                serve_log.seek(0)
                sys.exit(f"satshare serve did not start:\n{serve_log.read().decode()[-2000:]}")
        created = subprocess.run(
            [
                python,
                "-m",
                "satshare",
                "--config",
                config_name,
                "api-key",
                "create",
                "--name",
                "bench",
                "--scopes",
                "admin",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        key = created.stdout.strip().splitlines()[-1]
        auth = (("Authorization", f"Bearer {key}"), ("Content-Type", "application/json"))
        invoices = Invoices(app_url, sim_url, auth)

        print(f"setting up {args.invoices} users and invoices…", flush=True)
        webhooks = webhooks_for(await invoices.paid(args.invoices), "peak")
        serve_pids = process_tree([p.pid for p in servers])

        print(f"settling {len(webhooks)} invoices at concurrency {args.concurrency}…", flush=True)
        cpu_before = cpu_seconds(serve_pids), cpu_seconds([sim.pid])
        started = time.perf_counter()
        shares = [webhooks[i :: len(app_urls)] for i in range(len(app_urls))]
        per_server = max(1, args.concurrency // len(app_urls))
        results = await asyncio.gather(
            *(
                send_all(url, share, concurrency=per_server)
                for url, share in zip(app_urls, shares, strict=True)
            )
        )
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds(serve_pids), cpu_seconds([sim.pid])
        ordered = [w for share in shares for w in share]
        retried = await settle_all(
            app_urls, ordered, [reply for batch in results for reply in batch], per_server
        )
        result["peak_sent_again"] = retried
        per_second = len(webhooks) / elapsed
        serve_ms = 1000 * (cpu_after[0] - cpu_before[0]) / len(webhooks)
        sim_ms = 1000 * (cpu_after[1] - cpu_before[1]) / len(webhooks)
        result.update(
            settlements_per_second=round(per_second, 1),
            serve_cpu_ms_per_settlement=round(serve_ms, 2),
            emulator_cpu_ms_per_settlement=round(sim_ms, 2),
        )
        print(
            f"  {per_second:.1f}/s ({len(webhooks)} in {elapsed:.2f}s); CPU per settlement: "
            f"serve {serve_ms:.1f} ms, emulator {sim_ms:.1f} ms; {retried} sent again",
            flush=True,
        )

        if args.latency_seconds > 0:
            rate = per_second / 2
            count = max(20, math.ceil(rate * args.latency_seconds))
            print(f"setting up {count} more for the latency run…", flush=True)
            paced = webhooks_for(await invoices.paid(count), "paced")
            print(f"sending {count} webhooks at {rate:.1f}/s (half the peak)…", flush=True)
            shares = [paced[i :: len(app_urls)] for i in range(len(app_urls))]
            timed = await asyncio.gather(
                *(
                    send_at_rate(url, share, rate / len(app_urls))
                    for url, share in zip(app_urls, shares, strict=True)
                )
            )
            ordered = [w for share in shares for w in share]
            replies = [reply for batch in timed for reply, _ in batch]
            result["paced_sent_again"] = await settle_all(app_urls, ordered, replies, 8)
            latencies = [seconds * 1000 for batch in timed for _, seconds in batch]
            p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
            result.update(
                latency_rate_per_second=round(rate, 1),
                latency_p50_ms=round(p50, 1),
                latency_p99_ms=round(p99, 1),
                latency_max_ms=round(max(latencies), 1),
                latency_p99_over_p50=round(p99 / p50, 2),
            )

        verify = subprocess.run(
            [python, "-m", "satshare", "--config", config_name, "ledger", "verify"],
            env=env,
            capture_output=True,
            text=True,
        )
        if verify.returncode != 0:
            raise RuntimeError(f"ledger verification failed: {verify.stderr}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        for name in configs:
            os.unlink(name)

    print(f"running pgbench TPC-B ({args.pgbench_clients} clients, {args.pgbench_seconds}s)…")
    tps = run_pgbench(args.database_url, args.pgbench_clients, args.pgbench_seconds)
    result.update(pgbench_tpcb_tps=round(tps, 1), ratio=round(per_second / tps, 3))
    target = 0.25 if args.servers * args.workers == 1 else 0.35
    print(f"SatShare settlements/s: {per_second:10.1f}  ({len(webhooks)} in {elapsed:.2f}s)")
    print(f"pgbench TPC-B tps:      {tps:10.1f}")
    print(f"ratio:                  {per_second / tps:10.3f}  (target ≥ {target})")
    print(f"serve CPU/settlement:   {serve_ms:10.1f} ms  (emulator {sim_ms:.1f} ms)")
    if "latency_p50_ms" in result:
        print(
            f"latency at {result['latency_rate_per_second']}/s: p50 {result['latency_p50_ms']} ms, "
            f"p99 {result['latency_p99_ms']} ms, p99/p50 {result['latency_p99_over_p50']} "
            "(target ≤ 10)"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    # One file per shape, so `make bench`'s one-process and two-worker runs both stay.
    shape = "".join(
        f"_{name}{count}"
        for name, count in (("servers", args.servers), ("workers", args.workers))
        if count > 1
    )
    (out / f"settlement{shape}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
