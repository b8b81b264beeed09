"""Kill -9 at every step boundary of settlement and payouts, then check the money (issue #8).

Starts the BTCPay emulator (inside this process, so its books can be read directly) and two
`satshare serve` processes sharing one PostgreSQL database; the emulator delivers every
webhook to both. Each run picks, from the seed, a fault point and a hit count, restarts one of
the two processes with SATSHARE_FAULT_POINTS set (see src/satshare/faultpoints.py) and drives
traffic at it: an affiliate, three buyers they referred whose invoices are paid at the
emulator, then two payouts to regtest addresses. It waits for the armed process to die (or
gives up), restarts it clean, lets the system converge and checks, over the whole database:

- every invoice paid at the emulator is settled exactly once (one payment, one sale entry,
  one subscription period), and nothing unpaid is settled;
- every payout was created at the emulator at most once; one the emulator completed is
  recorded paid; one recorded paid was completed there. A payout whose send was cut off is
  re-checked by SatShare after the call's grace (timeout + 30 s), so it converges over the
  following runs; one the emulator never received stays unknown (never released on
  silence) and the bench does what an admin would: checks the emulator and marks it failed;
- balances equal postings: the ledger verifies (hash chain, every balance against its
  postings), each affiliate's balance (in the ledger and from the API) is what their
  referred sales earned less their payouts not released, the payouts-in-flight account holds
  exactly the open payouts, and the BTCPay wallet in the books equals the emulator's
  (received less paid out, up to what is still converging).

    .venv/bin/python -m bench.faults --runs 1000 --seed 1

The database (default postgresql://postgres@127.0.0.1:5432/bench_faults, its name must
contain "bench") is dropped and created afresh, then migrated with `satshare migrate`: the
emulator keeps its books in memory, so rows from an earlier bench could not be checked
against them. Prints per fault point: runs, kills that happened, invariant violations (must
be 0) and totals; writes bench/results/faults.json. Only 127.0.0.1 traffic; every process it
starts is stopped on exit or Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.settlement import duration, positive_int, postgresql_url
from bench.settlement import recreate_database as recreate_bench_database
from satshare.db import Database
from satshare.ledger.verify import verify_ledger
from satshare.money import split
from satshare.sim.btcpay import BTCPayEmulator, build_app
from satshare.sim.lightning import RegtestWallet

ROOT = Path(__file__).resolve().parents[1]
POINTS = (
    "settle.after_claim",
    "settle.after_refetch",
    "settle.before_commit",
    "settle.after_commit",
    "payout.after_hold",
    "payout.after_claim",
    "payout.during_call",
    "payout.after_send",
    "payout.before_record",
)
# Not secrets: the emulator and the two processes are all local and made up for the bench.
API_KEY, STORE, HOOK_SECRET = (
    "faultbench-greenfield-9f3a7c1e",
    "faultbench-store",
    "fb-hooks-8d2e4b1c0a",
)
PLAN, PRICE_SATS, SHARE_BPS = "bench", 21_000, 5_000
COMMISSION = split(PRICE_SATS, SHARE_BPS).affiliate_sats
BUYERS_PER_RUN, PAYOUTS_PER_RUN, PAYOUT_SATS = 3, 2, 2_000
#: payouts.timeout_seconds: a send cut off is asked about after this + 30 s (send_grace).
PAYOUT_TIMEOUT = 2
#: The emulator's slow payout create in payout.during_call runs; the kill lands inside it.
CREATE_DELAY = 0.5
#: Convergence deadlines: after these, what has not converged is a violation.
SETTLE_DEADLINE = 60.0
PAYOUT_DEADLINE = 150.0
#: An unknown payout the emulator does not have, this old, is marked failed (as an admin
#: would after checking BTCPay); by then any slow create has long finished.
ADMIN_AFTER = 60.0
HELD = ("awaiting_approval", "approved", "sending", "unknown")


class BenchError(Exception):
    """Something the bench could not do (not an invariant violation)."""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def recreate_database(url: str) -> None:
    """The shared one, on this machine only: the bench kills processes it starts here."""
    host = make_url(url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"--database-url must point at 127.0.0.1, not {host!r}")
    await recreate_bench_database(url)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    for _ in range(int(timeout / 0.02)):
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.02)
    return proc.poll()


def tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Launcher:
    """Starts `satshare` processes from spare interpreters that have already imported it
    (bench/warm_serve.py): a restart costs the start-up itself, not the imports. The spare
    reads SATSHARE_FAULT_POINTS only when it is told to start."""

    def __init__(self, workdir: Path, env: dict[str, str], spares: int = 4) -> None:
        self.workdir, self.env, self.size = workdir, env, spares
        self.spares: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.started: list[subprocess.Popen[bytes]] = []
        self.count = 0

    def warm(self) -> None:
        self.started = [p for p in self.started if p.poll() is None]
        self.spares = [(p, log) for p, log in self.spares if p.poll() is None]
        while len(self.spares) < self.size:
            self.count += 1
            log = self.workdir / f"serve-{self.count}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.warm_serve"],
                    cwd=ROOT,
                    env=self.env,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl+C reaches the bench, which stops them
                )
            self.started.append(proc)
            self.spares.append((proc, log))

    def launch(self, argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
        self.warm()
        proc, log = self.spares.pop(0)  # the oldest: the most likely to be ready
        assert proc.stdin is not None
        proc.stdin.write((json.dumps({"argv": argv, "env": env}) + "\n").encode())
        proc.stdin.close()
        return proc, log

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.started, self.spares = [], []


@dataclass
class Slot:
    name: str
    port: int
    config: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    spec: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Run:
    index: int
    point: str
    spec: str
    slot: str
    affiliate_id: int | None = None
    invoices: list[str] = field(default_factory=list)  # emulator (provider) invoice ids
    killed: bool = False
    unanswered: int = 0  # payout requests cut off by the kill (made or not: the DB says)
    outcome: str = "not reached"
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Violation:
    run: int | None
    text: str


@dataclass
class CheckResult:
    violations: list[Violation] = field(default_factory=list)
    pending_invoices: int = 0
    pending_payouts: int = 0
    unknown_unsent: list[int] = field(default_factory=list)  # payout ids an admin may release
    payouts: list[asyncpg.Record] = field(default_factory=list)
    ledger_entries: int = 0


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.wallet = RegtestWallet(seed=args.seed.to_bytes(8, "big") * 4)
        self.sim_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.emulator = BTCPayEmulator(
            api_key=API_KEY,
            store_id=STORE,
            base_url=self.sim_url,
            retry_delays=(1.0, 2.0, 4.0, 8.0, 15.0, 30.0),
        )
        self.slots = [self._slot(name) for name in ("A", "B")]
        for slot in self.slots:
            self.emulator.add_webhook(STORE, f"{slot.url}/api/v1/webhooks/btcpay", HOOK_SECRET)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
        self.launcher = Launcher(workdir, env)
        self.client = httpx.AsyncClient(timeout=30.0)
        self.headers: dict[str, str] = {}
        self.runs: list[Run] = []
        self.run_of_invoice: dict[str, int] = {}
        self.run_of_affiliate: dict[int, int] = {}
        self.paid_at: dict[str, float] = {}
        self.violations: list[Violation] = []
        self.seen: set[str] = set()
        self.admin_released: dict[int, int] = {}  # payout id -> run
        self.phases: defaultdict[str, float] = defaultdict(float)  # seconds per phase
        self.starting: dict[str, asyncio.Task[bool]] = {}  # clean restarts under way
        self.db = Database(args.database_url, pool_size=2)
        self.snapshot = async_sessionmaker(
            self.db.engine.execution_options(isolation_level="REPEATABLE READ")
        )
        #: Problems `ledger verify` reported reading statement by statement while the same
        #: check in one snapshot found none.
        self.verify_read_committed: list[str] = []
        self.live_checks = 0
        self.verifying: asyncio.Task[None] | None = None
        self.conn: asyncpg.Connection | None = None

    def _slot(self, name: str) -> Slot:
        port = free_port()
        config = {
            "database": {"url": self.args.database_url, "pool_size": 5},
            "server": {"host": "127.0.0.1", "port": port},
            "btcpay": {
                "url": self.sim_url,
                "api_key": API_KEY,
                "store_id": STORE,
                "webhook_secret": HOOK_SECRET,
            },
            "affiliate": {"share_bps": SHARE_BPS, "hold_days": 0},
            "payouts": {
                "provider": "btcpay",
                "network": "regtest",
                "min_sats": 1_000,
                "auto_approve_max_sats": 100_000_000,
                "timeout_seconds": PAYOUT_TIMEOUT,
                "interval_seconds": 3,
                "recheck_max_seconds": 10,
                "unknown_alert_minutes": 1,
            },
            "payments": {"reconcile_interval_seconds": 1},
            "plans": [
                {"id": PLAN, "title": "Fault bench", "price_sats": PRICE_SATS, "duration_days": 30}
            ],
            "api": {"rate_limit": {"enabled": False}},  # a load generator, not a client (#14)
            "log_level": "warning",
        }
        path = self.workdir / f"satshare-{name}.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return Slot(name, port, path)

    # -- processes ----------------------------------------------------------------------------

    async def start(self, slot: Slot, spec: str | None) -> bool:
        """Start the slot's process (armed with spec, or clean); True once it answers. An armed
        process may die at its fault point before that (a reconcile at start-up)."""
        env = {"SATSHARE_FAULT_POINTS": spec} if spec else {}
        slot.proc, slot.log = self.launcher.launch(["--config", str(slot.config), "serve"], env)
        slot.spec = spec
        deadline = time.monotonic() + 90
        try:
            while time.monotonic() < deadline:
                if not slot.alive():
                    if spec and self.killed_at_point(slot):
                        return False
                    raise BenchError(
                        f"serve {slot.name} exited with {slot.proc.poll()} while starting:\n"
                        f"{tail(slot.log)}"
                    )
                try:
                    if (await self.client.get(f"{slot.url}/health", timeout=2)).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            raise BenchError(f"serve {slot.name} did not answer within 90 s:\n{tail(slot.log)}")
        finally:
            self.launcher.warm()  # the next start is warm again

    async def stop(self, slot: Slot) -> None:
        if slot.proc is None:
            return
        if slot.proc.poll() is None:
            slot.proc.send_signal(signal.SIGTERM)
            if await wait_exit(slot.proc, 30) is None:
                slot.proc.kill()
                await wait_exit(slot.proc, 10)
        self.forget_log(slot)

    def forget_log(self, slot: Slot) -> None:
        if slot.log is not None and not self.args.keep_logs:
            slot.log.unlink(missing_ok=True)
        slot.log = None

    def killed_at_point(self, slot: Slot) -> bool:
        assert slot.proc is not None and slot.spec is not None
        point = slot.spec.split("=", 1)[0]
        return slot.proc.poll() == -signal.SIGKILL and (
            f"faultpoint: SIGKILL at {point} "
            in (slot.log.read_text(errors="replace") if slot.log else "")
        )

    # -- traffic ------------------------------------------------------------------------------

    async def call(
        self, method: str, path: str, body: Any, prefer: Slot, *, elsewhere: bool = True
    ) -> Any:
        """Ask the preferred process, or the other one if it is down (or dies on the way and
        the request may be repeated). None: it died on the way and it may not."""
        order = [prefer, *(s for s in self.slots if s is not prefer)]
        last: Exception | None = None
        for slot in order:
            if not slot.alive():
                continue
            try:
                answer = await self.client.request(
                    method, slot.url + path, json=body, headers=self.headers
                )
            except httpx.ConnectError as exc:
                last = exc  # it never got there (the process is dying): ask the other one
                continue
            except httpx.TransportError as exc:
                if not elsewhere:
                    return None
                last = exc
                continue
            if answer.status_code >= 300:
                raise BenchError(
                    f"{method} {path} at {slot.name}: {answer.status_code} {answer.text[:300]}"
                )
            return answer.json()
        raise BenchError(f"{method} {path}: no serve process answered ({last!r})")

    async def until(self, done: Callable[[], Awaitable[bool]], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if await done():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)

    async def drive(self, run: Run, slot: Slot) -> None:
        affiliate = await self.call(
            "POST", "/api/v1/users", {"username": f"aff{run.index}", "platform": "api"}, slot
        )
        run.affiliate_id = affiliate_id = int(affiliate["user_id"])
        self.run_of_affiliate[affiliate_id] = run.index
        await self.call(
            "POST", f"/api/v1/affiliates/{affiliate_id}/terms-acceptance", {"version": "1"}, slot
        )

        async def buy(n: int) -> str:
            buyer = await self.call(
                "POST",
                "/api/v1/users",
                {
                    "username": f"buyer{run.index}x{n}",
                    "platform": "api",
                    "referral_id": affiliate_id,
                },
                slot,
            )
            bought = await self.call(
                "POST",
                "/api/v1/subscriptions",
                {"user_id": buyer["user_id"], "subscription_type": PLAN},
                slot,
            )
            return str(bought["invoice"]["provider_invoice_id"])

        with self.timed("traffic: buyers"):
            run.invoices = list(await asyncio.gather(*(buy(n) for n in range(BUYERS_PER_RUN))))
        for invoice_id in run.invoices:
            self.run_of_invoice[invoice_id] = run.index
        for invoice_id in run.invoices:  # all at once: webhooks race in both processes
            self.emulator.pay(self.emulator.invoices[invoice_id], method="BTC-LN")
            self.paid_at[invoice_id] = time.monotonic()

        async def settled() -> bool:
            assert self.conn is not None
            count = await self.conn.fetchval(
                "SELECT count(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id "
                "WHERE i.provider_invoice_id = ANY($1::text[])",
                run.invoices,
            )
            return bool(count == len(run.invoices))

        with self.timed("traffic: settlement"):
            all_settled = await self.until(settled, SETTLE_DEADLINE)
        if not all_settled:
            run.errors.append("its invoices were not all settled in time for its payouts")

        async def withdraw() -> None:
            # Never repeated elsewhere: the hold may be committed though the answer was lost.
            answer = await self.call(
                "POST",
                "/api/v1/payouts",
                {
                    "user_id": affiliate_id,
                    "amount_sats": PAYOUT_SATS,
                    "destination": self.wallet.next_address(),
                },
                slot,
                elsewhere=False,
            )
            if answer is None:
                run.unanswered += 1

        # Concurrently: the affiliate's row lock serialises them.
        await asyncio.gather(*(withdraw() for _ in range(PAYOUTS_PER_RUN)))

    async def one_run(self, run: Run) -> None:
        slot = next(s for s in self.slots if s.name == run.slot)
        other = self.other(slot)
        self.emulator.payouts.faults.create_payout.delay = (
            CREATE_DELAY if run.point == "payout.during_call" else 0.0
        )
        with self.timed("stop clean"):
            await self.ready(slot)
            await self.stop(slot)
        with self.timed("start armed"):
            up = await self.start(slot, run.spec)
        with self.timed("wait for the other's clean restart"):
            await self.ready(other)  # two processes during the traffic
        try:
            with self.timed("traffic"):
                await self.drive(run, slot if up else other)
        except BenchError as exc:
            run.errors.append(str(exc))
        assert slot.proc is not None
        if slot.alive():
            with self.timed("wait for the kill"):
                await wait_exit(slot.proc, self.args.wait_kill)
        if not slot.alive():
            run.killed = self.killed_at_point(slot)
            run.outcome = "killed" if run.killed else f"exited {slot.proc.poll()}"
            if not run.killed:
                run.errors.append(f"serve {slot.name} exited unexpectedly:\n{tail(slot.log)}")
        else:
            run.outcome = "not reached"
        if run.killed or run.outcome == "not reached":
            await self.stop(slot)
        self.emulator.payouts.faults.create_payout.delay = 0.0
        # Restarted clean in the background: meanwhile the other process converges the
        # system and the invariants are checked; the next run waits for it to be up.
        self.starting[slot.name] = asyncio.create_task(self.start(slot, None))
        with self.timed("converge"):
            await self.converge(SETTLE_DEADLINE)

    async def ready(self, slot: Slot) -> None:
        starting = self.starting.pop(slot.name, None)
        if starting is not None:
            await starting

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.phases[phase] += time.monotonic() - began

    def other(self, slot: Slot) -> Slot:
        return next(s for s in self.slots if s is not slot)

    async def converge(self, timeout: float) -> None:
        """Wait until every invoice paid at the emulator has its payment and no payout is
        waiting to be sent (a send cut off converges later, after SatShare's grace)."""
        paid = {i.id for i in self.emulator.invoices.values() if i.status == "Settled"}

        async def done() -> bool:
            assert self.conn is not None
            settled = await self.conn.fetchval(
                "SELECT count(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id "
                "WHERE i.provider_invoice_id = ANY($1::text[])",
                list(paid),
            )
            waiting = await self.conn.fetchval(
                "SELECT count(*) FROM payouts WHERE status = 'approved'"
            )
            return bool(settled == len(paid) and waiting == 0)

        await self.until(done, timeout)

    # -- the checks ---------------------------------------------------------------------------

    async def release_unknown(self, result: CheckResult) -> None:
        """What an admin does about a payout left unknown: look it up at BTCPay (here: the
        emulator's books) and, when it is not there, mark it failed."""
        for payout_id in result.unknown_unsent:
            slot = next((s for s in self.slots if s.alive()), self.slots[0])
            try:
                await self.call(
                    "POST",
                    f"/api/v1/payouts/{payout_id}/mark-failed",
                    {"reason": f"BTCPay lists no payout with key satshare-payout-{payout_id}"},
                    slot,
                )
            except BenchError as exc:
                print(f"  error releasing payout {payout_id}: {exc}", flush=True)
                continue
            run = self.run_of_affiliate.get(
                next(int(p["user_id"]) for p in result.payouts if p["id"] == payout_id), -1
            )
            self.admin_released[payout_id] = run

    async def check(self, *, final: bool = False) -> CheckResult:
        assert self.conn is not None
        result = CheckResult()
        flag = result.violations.append
        async with self.conn.transaction(isolation="repeatable_read", readonly=True):
            invoices = await self.conn.fetch(
                """
                SELECT i.provider_invoice_id AS pid, i.status,
                       (SELECT count(*) FROM payments p WHERE p.invoice_id = i.id) AS payments,
                       (SELECT coalesce(sum(p.received_sats), 0) FROM payments p
                         WHERE p.invoice_id = i.id) AS received,
                       (SELECT count(*) FROM ledger_entries e
                         WHERE e.invoice_id = i.id AND e.kind = 'sale') AS sales,
                       s.ends_at - s.started_at AS period
                FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
                """
            )
            payouts = await self.conn.fetch(
                """
                SELECT p.id, p.user_id, p.status, p.amount_sats, p.send_sats,
                       coalesce(p.network_fee_sats, 0) AS network_fee, p.checks,
                       extract(epoch FROM now() - p.created_at) AS age,
                       extract(epoch FROM p.completed_at - p.sent_at) AS took,
                       (SELECT count(*) FROM ledger_entries e
                         WHERE e.idempotency_key = 'payout:' || p.id || ':hold') AS holds,
                       (SELECT count(*) FROM ledger_entries e
                         WHERE e.idempotency_key = 'payout:' || p.id || ':paid') AS paid_entries,
                       (SELECT count(*) FROM ledger_entries e
                         WHERE e.idempotency_key = 'payout:' || p.id || ':release') AS releases,
                       (SELECT count(*) FROM ledger_entries e
                         WHERE e.idempotency_key = 'payout:' || p.id || ':rehold') AS reholds
                FROM payouts p ORDER BY p.id
                """
            )
            sums = {
                r["code"]: int(r["total"])
                for r in await self.conn.fetch(
                    "SELECT a.code, coalesce(sum(p.amount_sats), 0) AS total "
                    "FROM ledger_accounts a LEFT JOIN ledger_postings p ON p.account_id = a.id "
                    "GROUP BY a.code"
                )
            }
            referred = {
                int(r["referrer_id"]): int(r["sales"])
                for r in await self.conn.fetch(
                    "SELECT u.referrer_id, count(*) AS sales FROM payments p "
                    "JOIN users u ON u.id = p.user_id WHERE u.referrer_id IS NOT NULL "
                    "GROUP BY u.referrer_id"
                )
            }
            result.ledger_entries = int(
                await self.conn.fetchval("SELECT count(*) FROM ledger_entries")
            )
        result.payouts = list(payouts)
        # The emulator's books, read in one go (nothing else runs on this event loop meanwhile).
        paid_there = {
            i.id: i.paid_sats() for i in self.emulator.invoices.values() if i.status == "Settled"
        }
        created: dict[str, list[Any]] = defaultdict(list)
        for sim_payout in self.emulator.payouts.payouts.values():
            created[str(sim_payout.metadata.get("satshareIdempotencyKey"))].append(sim_payout)
        now = time.monotonic()

        # Settlement: exactly once for what was paid, never for what was not.
        unsettled_paid = 0
        for row in invoices:
            pid, run = row["pid"], self.run_of_invoice.get(row["pid"])
            if row["payments"] > 1 or row["sales"] > 1:
                flag(
                    Violation(
                        run,
                        f"invoice {pid} settled {row['payments']} times with {row['sales']} sale entries",
                    )
                )
            if pid not in paid_there:
                if row["payments"] or row["sales"] or row["status"] == "settled":
                    flag(
                        Violation(
                            run, f"invoice {pid} is settled but was never paid at the emulator"
                        )
                    )
                continue
            if row["payments"] == 1 and row["sales"] == 1 and row["status"] == "settled":
                if row["period"] is None or row["period"].days != 30 or row["period"].seconds:
                    flag(
                        Violation(
                            run,
                            f"invoice {pid}: its subscription runs {row['period']}, not one 30-day period",
                        )
                    )
                continue
            unsettled_paid += paid_there[pid]
            late = now - self.paid_at.get(pid, now) > SETTLE_DEADLINE
            if final or late:
                flag(
                    Violation(
                        run,
                        f"invoice {pid} was paid at the emulator but is {row['status']} ({row['payments']} payments, {row['sales']} sale entries)",
                    )
                )
            else:
                result.pending_invoices += 1
        known = {row["pid"] for row in invoices}
        for pid in paid_there.keys() - known:
            flag(
                Violation(
                    self.run_of_invoice.get(pid),
                    f"invoice {pid} paid at the emulator is not in SatShare",
                )
            )

        # Payouts: made at most once, recorded once made, paid only if made.
        ids = {f"satshare-payout-{row['id']}" for row in payouts}
        for key, made in created.items():
            if len(made) > 1:
                flag(Violation(None, f"the emulator made {len(made)} payouts for {key}"))
            if key not in ids:
                flag(
                    Violation(
                        None, f"the emulator made a payout for {key}, which SatShare does not have"
                    )
                )
        unrecorded = 0
        for row in payouts:
            run = self.run_of_affiliate.get(int(row["user_id"]))
            what = f"payout {row['id']} ({row['status']})"
            made = created.get(f"satshare-payout-{row['id']}", [])
            completed = any(p.state == "Completed" for p in made)
            if row["holds"] != 1:
                flag(Violation(run, f"{what} has {row['holds']} hold entries"))
            if row["status"] == "paid":
                if not completed:
                    flag(Violation(run, f"{what} is recorded paid but the emulator never paid it"))
                if row["paid_entries"] != 1:
                    flag(Violation(run, f"{what} has {row['paid_entries']} payout entries"))
                continue
            if row["paid_entries"]:
                flag(Violation(run, f"{what} has a payout entry but is not paid"))
            if row["status"] in ("failed", "canceled") and row["releases"] != 1:
                flag(Violation(run, f"{what} has {row['releases']} release entries"))
            if completed:
                unrecorded += made[0].amount_sats
                if final or row["age"] > PAYOUT_DEADLINE:
                    flag(
                        Violation(
                            run,
                            f"{what}: the emulator paid it, SatShare has not recorded it {PAYOUT_DEADLINE:.0f} s on",
                        )
                    )
                else:
                    result.pending_payouts += 1
            elif row["status"] == "unknown" and not made and row["age"] > ADMIN_AFTER:
                result.unknown_unsent.append(int(row["id"]))
            elif row["status"] in HELD:
                if final or row["age"] > PAYOUT_DEADLINE:
                    flag(
                        Violation(
                            run,
                            f"{what} is still {row['status']} {PAYOUT_DEADLINE:.0f} s after it was asked",
                        )
                    )
                else:
                    result.pending_payouts += 1

        # Balances equal postings, and the books match the wallet.
        spent: dict[int, int] = defaultdict(int)
        for row in payouts:
            if row["status"] not in ("failed", "canceled"):
                spent[int(row["user_id"])] += int(row["amount_sats"])
        for user_id in set(referred) | set(spent):
            run = self.run_of_affiliate.get(user_id)
            expected = COMMISSION * referred.get(user_id, 0) - spent[user_id]
            booked = -sums.get(f"payable:affiliate:{user_id}", 0)
            if booked != expected:
                flag(
                    Violation(
                        run,
                        f"affiliate {user_id}: ledger balance {booked}, expected {expected} (sales less payouts)",
                    )
                )
        held = sum(int(r["amount_sats"]) for r in payouts if r["status"] in HELD)
        if -sums.get("payable:payouts", 0) != held:
            flag(
                Violation(
                    None,
                    f"payouts in flight: ledger {-sums.get('payable:payouts', 0)}, open payouts {held}",
                )
            )
        received = sum(int(r["received"]) for r in invoices)
        paid_out = sum(
            int(r["send_sats"]) + int(r["network_fee"]) for r in payouts if r["status"] == "paid"
        )
        books = sums.get("clearing:btcpay", 0)
        if books != received - paid_out:
            flag(
                Violation(
                    None,
                    f"BTCPay clearing account {books}, payments less paid payouts {received - paid_out}",
                )
            )
        wallet = sum(paid_there.values()) - sum(
            p.amount_sats for made in created.values() for p in made if p.state == "Completed"
        )
        if wallet - books != unsettled_paid - unrecorded:
            flag(
                Violation(
                    None,
                    f"books {books} vs emulator wallet {wallet}: the gap is not what is still converging ({unsettled_paid} to settle, {unrecorded} to record)",
                )
            )

        return result

    async def start_verify(self, after_run: int | None, *, live: bool) -> None:
        """Verify the ledger as `satshare ledger verify` does, in one snapshot taken now (the
        processes keep writing and sealing meanwhile). The snapshot is pinned before this
        returns; the work goes on in the background while the next run starts, and
        collect_verify() reports it."""
        await self.collect_verify()
        session = self.snapshot()
        await session.begin()
        await session.execute(text("SELECT 1"))  # REPEATABLE READ: the snapshot is this moment

        async def verify() -> None:
            try:
                report = await verify_ledger(session)
            finally:
                await session.close()
            self.record([Violation(after_run, f"ledger verify: {p}") for p in report.problems])
            if report.ok and live:
                # The same through Database.reading(), as the CLI runs it (verify_ledger takes
                # its own REPEATABLE READ snapshot there): a false alarm here would be a bug.
                self.live_checks += 1
                async with self.db.reading() as reading:
                    again = await verify_ledger(reading)
                if not again.ok:
                    self.verify_read_committed.append(again.problems[0])

        self.verifying = asyncio.create_task(verify())

    async def collect_verify(self) -> None:
        if self.verifying is not None:
            verifying, self.verifying = self.verifying, None
            await verifying

    async def check_affiliate_api(self, run: Run) -> None:
        """The balance the API shows equals the ledger's."""
        if run.affiliate_id is None:
            return
        slot = next((s for s in self.slots if s.alive()), self.slots[0])
        shown = await self.call("GET", f"/api/v1/affiliates/{run.affiliate_id}", None, slot)
        assert self.conn is not None
        booked = -int(
            await self.conn.fetchval(
                "SELECT coalesce(sum(p.amount_sats), 0) FROM ledger_postings p "
                "JOIN ledger_accounts a ON a.id = p.account_id WHERE a.code = $1",
                f"payable:affiliate:{run.affiliate_id}",
            )
        )
        if shown["balance"]["balance_sats"] != booked:
            self.record(
                [
                    Violation(
                        run.index,
                        f"affiliate {run.affiliate_id}: the API shows {shown['balance']['balance_sats']}, the ledger {booked}",
                    )
                ]
            )

    def record(self, found: list[Violation]) -> None:
        for violation in found:
            if violation.text in self.seen:
                continue  # an unsettled row is reported once, not after every later run
            self.seen.add(violation.text)
            self.violations.append(violation)
            where = f"run {violation.run}" if violation.run is not None else "global"
            if violation.run is not None and 0 <= violation.run < len(self.runs):
                r = self.runs[violation.run]
                where += f" ({r.spec} on {r.slot})"
            print(f"  VIOLATION {where}: {violation.text}", flush=True)

    # -- the whole bench ----------------------------------------------------------------------

    def schedule(self) -> list[tuple[str, str]]:
        points = [p for p in POINTS if not self.args.points or p in self.args.points]
        order = [points[i % len(points)] for i in range(self.args.runs)]
        self.rng.shuffle(order)
        plan = []
        for point in order:
            nth = self.rng.randint(
                1, BUYERS_PER_RUN if point.startswith("settle.") else PAYOUTS_PER_RUN
            )
            spec = f"{point}={nth}"
            if point == "payout.during_call":
                spec += f"@{self.rng.uniform(0.05, CREATE_DELAY - 0.1):.3f}"
            plan.append((point, spec))
        return plan

    async def main(self) -> None:
        args = self.args
        await recreate_database(args.database_url)
        env = {**self.launcher.env, "SATSHARE_DATABASE__URL": args.database_url}
        subprocess.run(
            [sys.executable, "-m", "satshare", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "satshare",
                "--config",
                str(self.slots[0].config),
                "api-key",
                "create",
                "--name",
                "faultbench",
                "--scopes",
                "admin",
            ],
            env=self.launcher.env,
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        self.headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
        self.conn = await asyncpg.connect(asyncpg_dsn(args.database_url))
        server = uvicorn.Server(
            uvicorn.Config(
                build_app(self.emulator),
                host="127.0.0.1",
                port=self.sim_port,
                log_level="error",
                lifespan="off",
            )
        )
        serving = asyncio.create_task(server.serve())
        try:
            for _ in range(500):
                if server.started:
                    break
                await asyncio.sleep(0.02)
            else:
                raise BenchError(f"the BTCPay emulator did not listen on {self.sim_url}")
            for slot in self.slots:
                await self.start(slot, None)
            await self.loop()
        finally:
            for task in [*self.starting.values(), *([self.verifying] if self.verifying else [])]:
                task.cancel()
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, 5)
            await self.emulator.aclose()
            await self.client.aclose()
            await self.conn.close()
            await self.db.engine.dispose()

    async def loop(self) -> None:
        started = time.monotonic()
        plan = self.schedule()
        print(
            f"fault bench: {len(plan)} runs, seed {self.args.seed}, two serve processes on "
            f"{make_url(self.args.database_url).database}",
            flush=True,
        )
        for index, (point, spec) in enumerate(plan):
            if time.monotonic() - started > self.args.max_minutes * 60:
                print(f"stopping after {index} runs: --max-minutes {self.args.max_minutes} reached")
                break
            run = Run(index, point, spec, self.slots[index % 2].name)
            self.runs.append(run)
            began = time.monotonic()
            await self.one_run(run)
            with self.timed("check"):
                result = await self.check()
                await self.start_verify(index, live=index % 10 == 0)
            if result.unknown_unsent:
                await self.release_unknown(result)
            self.record(result.violations)
            try:
                await self.check_affiliate_api(run)
            except BenchError as exc:
                run.errors.append(str(exc))
            run.seconds = time.monotonic() - began
            for error in run.errors:
                print(f"  error in run {index} ({spec}): {error}", flush=True)
            if (index + 1) % self.args.progress == 0 or index + 1 == len(plan):
                kills = sum(r.killed for r in self.runs)
                print(
                    f"run {index + 1}/{len(plan)}: {kills} kills, {len(self.violations)} violations, "
                    f"{result.pending_invoices} invoices and {result.pending_payouts} payouts "
                    f"converging, {result.ledger_entries} ledger entries, "
                    f"{(time.monotonic() - started) / (index + 1):.1f} s/run",
                    flush=True,
                )
        for slot in self.slots:
            await self.ready(slot)
        await self.finish(started)

    async def finish(self, started: float) -> None:
        print(
            "letting the last payouts converge (SatShare re-checks a cut-off send after "
            f"{PAYOUT_TIMEOUT + 30} s)…",
            flush=True,
        )
        deadline = time.monotonic() + PAYOUT_DEADLINE + ADMIN_AFTER
        while True:
            result = await self.check()
            if result.unknown_unsent and time.monotonic() < deadline:
                await self.release_unknown(result)
                continue
            if (
                result.pending_invoices == 0 and result.pending_payouts == 0
            ) or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        final = await self.check(final=True)
        self.record(final.violations)
        await self.start_verify(None, live=True)
        await self.collect_verify()
        self.report(final, time.monotonic() - started)

    def report(self, final: CheckResult, seconds: float) -> None:
        by_point: dict[str, Counter[str]] = {p: Counter() for p in POINTS}
        for run in self.runs:
            c = by_point[run.point]
            c["runs"] += 1
            c["kills"] += run.killed
            c["not reached"] += run.outcome == "not reached"
            c["errors"] += bool(run.errors)
            if run.unanswered:
                c["payout requests cut off by the kill"] += run.unanswered
        for violation in self.violations:
            if violation.run is not None and 0 <= violation.run < len(self.runs):
                by_point[self.runs[violation.run].point]["violations"] += 1
            else:
                by_point["(global)"] = by_point.get("(global)", Counter())
                by_point["(global)"]["violations"] += 1
        for row in final.payouts:
            owner = self.run_of_affiliate.get(int(row["user_id"]))
            if owner is None:
                continue
            c = by_point[self.runs[owner].point]
            if row["status"] == "paid":
                rechecked = row["took"] is not None and row["took"] > PAYOUT_TIMEOUT + 30
                c["payouts paid after a re-check" if rechecked else "payouts paid"] += 1
            elif int(row["id"]) in self.admin_released:
                c["payouts released by the admin"] += 1
            else:
                c[f"payouts {row['status']}"] += 1
        columns = ["runs", "kills", "not reached", "violations", "errors"]
        extra = sorted({k for c in by_point.values() for k in c} - set(columns))
        totals: Counter[str] = Counter()
        print()
        print(f"{'fault point':24}" + "".join(f"{c:>12}" for c in columns))
        for point, c in by_point.items():
            totals.update(c)
            print(f"{point:24}" + "".join(f"{c[k]:>12}" for k in columns))
        print(f"{'total':24}" + "".join(f"{totals[k]:>12}" for k in columns))
        print()
        for key in extra:
            print(f"{key:34} " + ", ".join(f"{p} {c[key]}" for p, c in by_point.items() if c[key]))
        invoices_settled = sum(1 for i in self.emulator.invoices.values() if i.status == "Settled")
        print(
            f"\n{len(self.runs)} of {self.args.runs} runs in {seconds / 60:.1f} min ({seconds / max(1, len(self.runs)):.1f} s/run); "
            f"{invoices_settled} invoices paid and settled, {len(final.payouts)} payouts, "
            f"{len(self.emulator.payouts.payouts)} made at the emulator, {final.ledger_entries} ledger entries; "
            f"{len(self.violations)} violations"
        )
        if self.verify_read_committed:
            print(
                "ledger verify through Database.reading() (as `satshare ledger verify` runs) "
                f"reported problems in {len(self.verify_read_committed)} of "
                f"{self.live_checks} checks whose snapshot was clean, e.g. "
                f"{self.verify_read_committed[0]}"
            )
        runs = max(1, len(self.runs))
        print(
            "seconds per run: " + ", ".join(f"{k} {v / runs:.2f}" for k, v in self.phases.items())
        )
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "faults.json").write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "seed": self.args.seed,
                    "runs": len(self.runs),
                    "runs_asked": self.args.runs,
                    "seconds": round(seconds),
                    "cpus": os.cpu_count(),
                    "points": {p: dict(c) for p, c in by_point.items()},
                    "verify_read_committed": {
                        "checks": self.live_checks,
                        "false_alarms": len(self.verify_read_committed),
                        "first": self.verify_read_committed[:1],
                    },
                    "seconds_per_run": {k: round(v / runs, 2) for k, v in self.phases.items()},
                    "violations": [
                        {
                            "run": v.run,
                            "spec": self.runs[v.run].spec
                            if v.run is not None and 0 <= v.run < len(self.runs)
                            else None,
                            "text": v.text,
                        }
                        for v in self.violations
                    ],
                },
                indent=2,
            )
            + "\n"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=positive_int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url",
        type=postgresql_url,
        default="postgresql://postgres@127.0.0.1:5432/bench_faults",
        help="on 127.0.0.1, dropped and recreated: its name must contain 'bench'",
    )
    parser.add_argument("--points", nargs="*", choices=POINTS, help="only these fault points")
    parser.add_argument(
        "--wait-kill",
        type=duration,
        default=2.0,
        help="seconds to wait for the armed process to die after the traffic",
    )
    parser.add_argument(
        "--max-minutes",
        type=duration,
        default=180.0,
        help="start no run after this many minutes (the summary says how many ran)",
    )
    parser.add_argument(
        "--progress", type=positive_int, default=10, help="print a line every N runs"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep every serve log")
    args = parser.parse_args()
    if not 1 <= args.runs <= 100_000:
        parser.error("--runs must be between 1 and 100000")
    if os.environ.get("SATSHARE_FAULT_POINTS"):
        parser.error("unset SATSHARE_FAULT_POINTS: the bench arms the processes it starts itself")
    return args


async def amain(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="satshare-faults-"))
    bench = Bench(args, workdir)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await bench.main()
    finally:
        bench.launcher.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bench.violations else 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(amain(parse_args())))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
