"""Settlement throughput on PostgreSQL versus pgbench TPC-B on the same database.

Starts the BTCPay emulator and `satshare serve` as separate processes, sells N subscriptions
through the REST API, pays every invoice on the emulator, then fires one signed
`InvoiceSettled` webhook per invoice at SatShare and measures settled payments per second
(each one: signature check, inbox row, re-fetch of invoice and payment methods over HTTP,
one transaction with payment, split entry, subscription and outbox rows). Then runs
pgbench's TPC-B on the same database and prints both and the ratio.

    .venv/bin/python bench/settlement.py --invoices 2000 --concurrency 64

The database named by --database-url is dropped and recreated (its name must contain
"bench"). Results are also written to bench/results/settlement.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from satshare.security import hmac_sha256_hex
from satshare.sim.loadclient import Request, send_all

ROOT = Path(__file__).resolve().parents[1]
# Not placeholder-looking: start-up refuses secrets that do (#9).
API_KEY, STORE, SECRET = "bench-btcpay-key", "bench-store", "bench-hmac-7f3a9c21d4e8b605"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def recreate_database(url: str) -> None:
    parsed = make_url(url)
    name = parsed.database or ""
    if "bench" not in name:
        sys.exit(f"refusing to drop database {name!r}: the name must contain 'bench'")
    admin = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database="postgres"
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
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


def run_pgbench(url: str, clients: int, seconds: int) -> float:
    parsed = make_url(url)
    conn = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    if parsed.username:
        conn += ["-U", parsed.username]
    db = parsed.database or ""
    subprocess.run(["pgbench", *conn, "-i", "-q", "-s", "10", db], check=True, capture_output=True)
    done = subprocess.run(
        ["pgbench", *conn, "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), db],
        check=True,
        capture_output=True,
        text=True,
    )
    match = re.search(r"tps = ([\d.]+)", done.stdout)
    if not match:
        raise RuntimeError(f"cannot read pgbench output:\n{done.stdout}")
    return float(match.group(1))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/satshare_bench"
    )
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--servers", type=int, default=1, help="satshare serve processes sharing the database"
    )
    parser.add_argument("--pgbench-clients", type=int, default=16)
    parser.add_argument("--pgbench-seconds", type=int, default=20)
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
                    "server": {"host": "127.0.0.1", "port": port},
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
    procs = [
        subprocess.Popen(
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
        ),
    ]
    for name in configs:
        procs.append(
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
        )
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

        print(f"setting up {args.invoices} users and invoices…", flush=True)
        affiliate = json.loads(
            (
                await send_all(
                    app_url,
                    [
                        Request(
                            "POST",
                            "/api/v1/users",
                            json.dumps({"username": "affiliate", "platform": "api"}).encode(),
                            auth,
                        )
                    ],
                )
            )[0].body
        )
        users = await send_all(
            app_url,
            [
                Request(
                    "POST",
                    "/api/v1/users",
                    json.dumps(
                        {
                            "username": f"buyer{i}",
                            "platform": "api",
                            **({"referral_id": affiliate["user_id"]} if i % 2 == 0 else {}),
                        }
                    ).encode(),
                    auth,
                )
                for i in range(args.invoices)
            ],
            concurrency=32,
        )
        orders = await send_all(
            app_url,
            [
                Request(
                    "POST",
                    "/api/v1/subscriptions",
                    json.dumps(
                        {
                            "user_id": json.loads(u.body)["user_id"],
                            "subscription_type": "bench",
                        }
                    ).encode(),
                    auth,
                )
                for u in users
            ],
            concurrency=32,
        )
        invoice_ids = [json.loads(o.body)["invoice"]["provider_invoice_id"] for o in orders]
        paid = await send_all(
            sim_url,
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

        webhooks = []
        for n, invoice_id in enumerate(invoice_ids):
            body = json.dumps(
                {
                    "deliveryId": f"bench-{n}",
                    "webhookId": "bench",
                    "originalDeliveryId": f"bench-{n}",
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

        print(f"settling {len(webhooks)} invoices at concurrency {args.concurrency}…", flush=True)
        started = time.perf_counter()
        shares = [webhooks[i :: len(app_urls)] for i in range(len(app_urls))]
        per_server = max(1, args.concurrency // len(app_urls))
        results = await asyncio.gather(
            *(
                send_all(url, share, concurrency=per_server)
                for url, share in zip(app_urls, shares, strict=True)
            )
        )
        replies = [reply for batch in results for reply in batch]
        elapsed = time.perf_counter() - started
        statuses = [json.loads(r.body).get("status") for r in replies]
        settled = statuses.count("settled")
        if settled != len(webhooks):
            raise RuntimeError(f"only {settled} of {len(webhooks)} settled: {set(statuses)}")
        per_second = settled / elapsed

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
            proc.wait(timeout=10)
        for name in configs:
            os.unlink(name)

    print(f"running pgbench TPC-B ({args.pgbench_clients} clients, {args.pgbench_seconds}s)…")
    tps = run_pgbench(args.database_url, args.pgbench_clients, args.pgbench_seconds)
    result = {
        "invoices": len(webhooks),
        "concurrency": args.concurrency,
        "servers": args.servers,
        "settlements_per_second": round(per_second, 1),
        "pgbench_tpcb_tps": round(tps, 1),
        "ratio": round(per_second / tps, 3),
        "cpus": os.cpu_count(),
    }
    print(f"SatShare settlements/s: {per_second:10.1f}  ({settled} in {elapsed:.2f}s)")
    print(f"pgbench TPC-B tps:      {tps:10.1f}")
    print(f"ratio:                  {per_second / tps:10.3f}  (target ≥ 0.8)")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "settlement.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
