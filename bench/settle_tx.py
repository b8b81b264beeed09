"""The settlement transaction alone, on PostgreSQL, against pgbench TPC-B in the same run.

    .venv/bin/python -m bench.settle_tx --invoices 3000 --concurrency 32
    .venv/bin/python -m bench.settle_tx --level          # with an affiliate level configured

Recreates its own database (the name must contain "settletx"), migrates it, registers
buyers (half referred by one of a few affiliates) and opens one invoice per buyer, each
with its webhook delivery claimed in the inbox, as the webhook path leaves it. Then, in this
process, many asyncio tasks call the settlement use case the webhook path calls after the
re-fetch (``payments.flows.apply_fetched``) with the processor's answer already in hand: one
transaction each, with the inbox row marked handled in it; the sealer chains the entries
beside them, as in ``serve`` (on uvloop, as ``serve``). Settlements per second, SQL statements, transactions and
round trips per settlement (counted on SQLAlchemy's engine events), and this process's CPU
per settlement are printed.

Then pgbench's TPC-B (``-c 16 -j 2``) runs on the same database. ``--rounds`` alternates
the two (a share of the invoices per round), so both see the same load on a shared machine;
the ratio is of the medians. At the end ``satshare ledger verify`` and ``satshare figures
check`` must pass. Results go to bench/results/settle_tx.json.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.seed import migrate
from bench.settlement import positive_int, postgresql_url, recreate_database, run_pgbench
from satshare.cli.common import opened
from satshare.config import load_settings
from satshare.payments import flows, inbox
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.payments.ports import InvoiceFlag, InvoiceState, ProviderInvoice, WebhookNotice
from satshare.payments.service import Outcome
from satshare.subscriptions import repository as subscriptions_repo
from satshare.users import flows as user_flows
from satshare.users import service as users
from satshare.users.service import Registration

ROOT = Path(__file__).resolve().parents[1]
PRICE = 21_000
PLAN = "bench"
PROVIDER = "btcpay"


@dataclass
class Counts:
    """SQL traffic on the engine: statements, transactions begun, commits."""

    statements: int = 0
    begins: int = 0
    commits: int = 0

    def hook(self, engine: Any) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _statement(*_: Any) -> None:
            self.statements += 1

        @event.listens_for(engine, "begin")
        def _begin(*_: Any) -> None:
            self.begins += 1

        @event.listens_for(engine, "commit")
        def _commit(*_: Any) -> None:
            self.commits += 1

    def snapshot(self) -> tuple[int, int, int]:
        return self.statements, self.begins, self.commits


def write_config(url: str, pool_size: int, level: bool) -> str:
    affiliate: dict[str, Any] = {"share_bps": 3000}
    if level:
        # The example configuration's kind of level: one with a threshold, reached early.
        affiliate["levels"] = [
            {"name": "partner", "share_bps": 4000, "min_paying_referrals": 10},
        ]
    config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # noqa: SIM115
    config.write(
        json.dumps(
            {
                "database": {"url": url, "pool_size": pool_size},
                # Never called: the processor's answer is handed to the settlement directly.
                "btcpay": {
                    "url": "http://127.0.0.1:9",
                    "api_key": "bench-btcpay-key",
                    "store_id": "bench-store",
                    "webhook_secret": "bench-hmac-7f3a9c21d4e8b605",
                },
                "payments": {"reconcile_interval_seconds": 86400},
                "plans": [{"id": PLAN, "title": "Bench", "price_sats": PRICE, "duration_days": 30}],
                "affiliate": affiliate,
                "log_level": "warning",
            }
        )
    )
    config.close()
    return config.name


async def seed(ctx: flows.PaymentsContext, invoices: int, affiliates: int) -> list[tuple[str, int]]:
    """Buyers (every other one referred), one open invoice each with its delivery claimed:
    (invoice id, inbox row id)."""
    db, now = ctx.db, ctx.clock.now()
    referrers = [
        (await user_flows.register(db, Registration(platform="api", username=f"aff{i}"), now)).id
        for i in range(affiliates)
    ]
    buyers: list[int] = []
    for start in range(0, invoices, 250):  # a few transactions, not one per buyer
        async with db.transaction() as session:
            for n in range(start, min(start + 250, invoices)):
                referral = str(referrers[n % affiliates]) if n % 2 == 0 else None
                registration = Registration(platform="api", username=f"buyer{n}", referral=referral)
                buyers.append((await users.register(session, registration, now)).id)
    opened_: list[tuple[str, int]] = []
    for start in range(0, len(buyers), 500):
        async with db.transaction() as session:
            for n, user_id in enumerate(buyers[start : start + 500], start=start):
                subscription = await subscriptions_repo.get_or_create(session, user_id, PLAN, now)
                invoice_id = f"inv_bench{n:08d}"
                session.add(
                    Invoice(
                        id=invoice_id,
                        provider=PROVIDER,
                        provider_invoice_id=f"p{n}",
                        subscription_id=subscription.id,
                        user_id=user_id,
                        plan_id=PLAN,
                        amount_sats=PRICE,
                        paid_sats=0,
                        status=InvoiceStatus.NEW,
                        provider_status="New",
                        provider_additional_status="None",
                        expires_at=now + timedelta(hours=1),
                        created_at=now,
                        updated_at=now,
                    )
                )
                await session.flush()
                notice = WebhookNotice(f"p{n}", "InvoiceSettled", f"d{n}", claims_settlement=True)
                claimed = await inbox.claim(
                    session,
                    inbox.key_of(PROVIDER, notice),
                    delivery_id=f"d{n}",
                    payload="{}",
                    now=now,
                )
                assert claimed.row_id is not None
                opened_.append((invoice_id, claimed.row_id))
    return opened_


def observed(n: int) -> ProviderInvoice:
    """What the processor answered on the re-fetch: settled, paid in full."""
    return ProviderInvoice(
        provider=PROVIDER,
        provider_invoice_id=f"p{n}",
        state=InvoiceState.SETTLED,
        flag=InvoiceFlag.NONE,
        amount_sats=PRICE,
        paid_sats=PRICE,
        confirmed_paid_sats=PRICE,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        raw_status="Settled",
        raw_additional_status="None",
        proof="ab" * 32,
    )


@dataclass
class Round:
    settled: int
    seconds: float
    cpu_seconds: float
    statements: int
    begins: int
    commits: int


async def settle_round(
    ctx: flows.PaymentsContext, work: list[tuple[int, str, int]], concurrency: int, counts: Counts
) -> Round:
    queue = list(reversed(work))
    outcomes: list[Outcome] = []

    async def worker() -> None:
        while queue:
            n, invoice_id, row_id = queue.pop()
            outcomes.append(await flows.apply_fetched(ctx, invoice_id, observed(n), row_id))

    before = counts.snapshot()
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = counts.snapshot()
    if outcomes.count(Outcome.SETTLED) != len(work):
        raise RuntimeError(f"not all settled: {sorted(set(outcomes))}")
    statements, begins, commits = (b - a for a, b in zip(before, after, strict=True))
    return Round(len(work), seconds, cpu, statements, begins, commits)


def check(config: str, command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "satshare", "--config", config, *command],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"`satshare {' '.join(command)}` failed:\n{done.stdout}{done.stderr}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        type=postgresql_url,
        default="postgresql://postgres@127.0.0.1:5432/satshare_bench_settletx",
        help="dropped and recreated: its name must contain 'bench' and 'settletx'",
    )
    parser.add_argument(
        "--invoices", type=positive_int, default=3000, help="in all, over the rounds"
    )
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--concurrency", type=positive_int, default=32)
    parser.add_argument(
        "--pool-size", type=positive_int, default=16, help="connections (PostgreSQL's are shared)"
    )
    parser.add_argument("--affiliates", type=positive_int, default=10)
    parser.add_argument("--level", action="store_true", help="configure an affiliate level")
    parser.add_argument("--pgbench-clients", type=positive_int, default=16)
    parser.add_argument("--pgbench-seconds", type=positive_int, default=20)
    parser.add_argument("--no-pgbench", action="store_true", help="settle only (profiling)")
    args = parser.parse_args()
    if args.invoices < args.rounds:
        parser.error(f"--invoices {args.invoices} is fewer than --rounds {args.rounds}")
    if args.invoices % args.rounds:
        # Each round settles the same number, or the rounds' rates would not compare.
        parser.error(f"--invoices {args.invoices} does not divide into {args.rounds} rounds")
    if "settletx" not in (make_url(args.database_url).database or ""):
        sys.exit(
            "refusing: the database name must contain 'settletx' (it is dropped), "
            "e.g. satshare_bench_settletx"
        )

    await recreate_database(args.database_url)
    await migrate(args.database_url)
    config = write_config(args.database_url, args.pool_size, args.level)
    counts = Counts()
    rounds: list[Round] = []
    tps: list[float] = []
    try:
        async with opened(load_settings(config), sync_plans=True, service=True) as container:
            ctx = container.payments
            print(f"seeding {args.invoices} buyers and invoices…", flush=True)
            work = [
                (n, i, r)
                for n, (i, r) in enumerate(await seed(ctx, args.invoices, args.affiliates))
            ]
            counts.hook(container.db.engine.sync_engine)
            share = len(work) // args.rounds
            for r in range(args.rounds):
                part = work[r * share : (r + 1) * share]
                done = await settle_round(ctx, part, args.concurrency, counts)
                await container.sealer.flush()
                rounds.append(done)
                print(
                    f"round {r + 1}: {done.settled / done.seconds:8.1f} settlements/s "
                    f"({done.settled} in {done.seconds:.2f}s, concurrency {args.concurrency})",
                    flush=True,
                )
                if not args.no_pgbench:
                    tps.append(
                        run_pgbench(
                            args.database_url,
                            args.pgbench_clients,
                            args.pgbench_seconds,
                            init=r == 0,
                        )
                    )
                    print(f"         pgbench TPC-B {tps[-1]:8.1f} tps", flush=True)
        check(config, ["ledger", "verify"])
        check(config, ["figures", "check"])
    finally:
        os.unlink(config)

    settled = sum(r.settled for r in rounds)
    rate = statistics.median(r.settled / r.seconds for r in rounds)
    result: dict[str, Any] = {
        "invoices": settled,
        "concurrency": args.concurrency,
        "level": args.level,
        "settlements_per_second": round(rate, 1),
        "statements_per_settlement": round(sum(r.statements for r in rounds) / settled, 2),
        "transactions_per_settlement": round(sum(r.begins for r in rounds) / settled, 2),
        # One round trip per statement (asyncpg caches its prepared statements per
        # connection), plus BEGIN and COMMIT of each transaction.
        "round_trips_per_settlement": round(
            sum(r.statements + r.begins + r.commits for r in rounds) / settled, 2
        ),
        "cpu_ms_per_settlement": round(1000 * sum(r.cpu_seconds for r in rounds) / settled, 2),
        "cpus": os.cpu_count(),
    }
    print(f"settlements/s (median):  {rate:10.1f}")
    for key in (
        "statements_per_settlement",
        "transactions_per_settlement",
        "round_trips_per_settlement",
        "cpu_ms_per_settlement",
    ):
        print(f"{key.replace('_', ' ')}: {result[key]:>10}")
    if tps:
        base = statistics.median(tps)
        result.update(pgbench_tpcb_tps=round(base, 1), ratio=round(rate / base, 3))
        print(f"pgbench TPC-B tps (median): {base:7.1f}")
        print(f"ratio:                  {rate / base:10.3f}  (target ≥ 0.8)")
    print("ledger verify: ok; figures check: ok")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = "settle_tx_level.json" if args.level else "settle_tx.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    try:  # the event loop ``satshare serve`` runs on
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
