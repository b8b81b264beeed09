"""Seed a PostgreSQL database with a realistic history, fast, for the read benchmarks.

    .venv/bin/python -m bench.seed --database-url postgresql://postgres@127.0.0.1/bench_x \
        --users 10000 --payments 50000

The database is dropped and recreated (its name must contain "bench"), migrated, then
filled through COPY: users (2% of them affiliates; 60% of users were referred, most of them
by the earliest affiliates, so user 1 is a big affiliate), referral clicks, two plans,
one subscription per buyer, and per payment an invoice, a payment row and a sale entry split
50/50 with the buyer's referrer. 1% of the sales are refunded (a reversing entry, the
commission clawed back) and each affiliate whose balance reached 10,000 sats is paid out on
the first of each month (hold and payout entries and a paid payout row). Every entry is
chained (``ledger_chain``, the head row), so ``satshare ledger verify`` accepts the ledger.

What it leaves out: memo notes (entries have none, which the verifier accepts), the outbox,
webhook inboxes and processor-side records (the emulators know nothing of these invoices),
Telegram Stars sales and promo codes. The history spans ``--days`` (730) days ending now,
the same span at every size, so a bigger database has more sales per day, as a bigger
service would.

Figures derived from the ledger are built by the migration (or ``satshare figures
rebuild``) after the load, as they would be for an existing database.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.settlement import positive_int, postgresql_url, recreate_database
from satshare.db import Database
from satshare.ledger import accounts
from satshare.ledger.chain import format_time
from satshare.migrate import upgrade
from satshare.money import split

SHARE_BPS = 5000
PLANS = (("monthly", "Monthly", 50_000, 30), ("yearly", "Yearly", 500_000, 365))
PAYOUT_MIN_SATS = 10_000
REFUND_RATE = 0.01
AFFILIATE_EVERY = 50  # one user in 50 is an affiliate
REFERRED_RATE = 0.6
GENESIS = "0" * 64
FLUSH_ROWS = 20_000


@dataclass
class Buffers:
    """Rows per table, flushed through COPY when large."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    columns: dict[str, Sequence[str]] = field(default_factory=dict)

    def add(self, table: str, columns: Sequence[str], row: tuple[Any, ...]) -> None:
        self.columns.setdefault(table, columns)
        self.rows.setdefault(table, []).append(row)

    def full(self) -> bool:
        return any(len(rows) >= FLUSH_ROWS for rows in self.rows.values())

    async def flush(self, conn: asyncpg.Connection) -> None:
        for table in TABLE_ORDER:
            rows = self.rows.get(table)
            if rows:
                await conn.copy_records_to_table(table, records=rows, columns=self.columns[table])
                rows.clear()


#: Parents before children (foreign keys are checked row by row during COPY).
TABLE_ORDER = (
    "users",
    "referral_clicks",
    "subscriptions",
    "invoices",
    "ledger_accounts",
    "ledger_entries",
    "ledger_postings",
    "ledger_chain",
    "payments",
    "payouts",
)

USER_COLS = ("id", "platform", "external_id", "username", "language", "referral_code")
USER_COLS += ("referrer_id", "created_at", "updated_at")
ENTRY_COLS = ("id", "idempotency_key", "kind", "created_at", "invoice_id", "gross_sats")
ENTRY_COLS += ("share_bps", "affiliate_user_id", "reverses_entry_id", "created_by", "terms")
INVOICE_COLS = ("id", "provider", "provider_invoice_id", "subscription_id", "user_id")
INVOICE_COLS += ("plan_id", "amount_sats", "paid_sats", "status", "provider_status")
INVOICE_COLS += ("provider_additional_status", "expires_at", "created_at", "updated_at")
INVOICE_COLS += ("settled_at", "currency", "bonus_days")
PAYMENT_COLS = ("id", "invoice_id", "user_id", "provider", "amount_sats", "received_sats")
PAYMENT_COLS += ("overpaid_sats", "paid_late", "ledger_entry_id", "settled_at")
SUBSCRIPTION_COLS = ("id", "user_id", "plan_id", "status", "started_at", "ends_at")
SUBSCRIPTION_COLS += ("created_at", "updated_at")
PAYOUT_COLS = ("id", "user_id", "amount_sats", "fee_sats", "send_sats", "network_fee_sats")
PAYOUT_COLS += ("destination_kind", "destination", "status", "provider", "instant")
PAYOUT_COLS += ("requested_by", "created_at", "updated_at", "sent_at", "completed_at", "checks")


@dataclass
class Sale:
    entry_id: int
    invoice_id: str
    postings: list[tuple[str, int]]
    subscription: int


class Ledger:
    """Writes entries, postings and chain links, keeping balances and the chain head."""

    def __init__(self, buffers: Buffers) -> None:
        self.buffers = buffers
        self.entry_id = 0
        self.posting_id = 0
        self.head = GENESIS
        self.account_ids: dict[str, int] = {}
        self.balances: dict[str, int] = {}

    def account(self, code: str, when: datetime) -> int:
        found = self.account_ids.get(code)
        if found is None:
            found = self.account_ids[code] = len(self.account_ids) + 1
            self.buffers.add(
                "ledger_accounts",
                ("id", "code", "kind", "user_id", "created_at"),
                (found, code, accounts.kind_of(code), accounts.user_of(code), when),
            )
        return found

    def post(
        self,
        *,
        key: str,
        kind: str,
        when: datetime,
        postings: list[tuple[str, int]],
        invoice_id: str | None = None,
        gross: int | None = None,
        share_bps: int | None = None,
        affiliate: int | None = None,
        reverses: int | None = None,
        author: str = "system",
        terms: str | None = None,
    ) -> int:
        self.entry_id += 1
        entry_id = self.entry_id
        self.buffers.add(
            "ledger_entries",
            ENTRY_COLS,
            (
                entry_id,
                key,
                kind,
                when,
                invoice_id,
                gross,
                share_bps,
                affiliate,
                reverses,
                author,
                terms,
            ),
        )
        for code, amount in postings:
            self.posting_id += 1
            self.buffers.add(
                "ledger_postings",
                ("id", "entry_id", "account_id", "amount_sats"),
                (self.posting_id, entry_id, self.account(code, when), amount),
            )
            self.balances[code] = self.balances.get(code, 0) + amount
        record: dict[str, object] = {
            "seq": entry_id,
            "entry_id": entry_id,
            "idempotency_key": key,
            "kind": kind,
            "created_at": format_time(when),
            "invoice_id": invoice_id,
            "gross_sats": gross,
            "share_bps": share_bps,
            "affiliate_user_id": affiliate,
            "reverses_entry_id": reverses,
            "postings": [[code, amount] for code, amount in sorted(postings)],
        }
        if terms is not None:
            record["terms"] = terms
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        digest = hashlib.sha256(bytes.fromhex(self.head) + canonical.encode("ascii")).hexdigest()
        self.buffers.add(
            "ledger_chain",
            ("seq", "entry_id", "prev_hash", "hash", "sealed_at"),
            (entry_id, entry_id, self.head, digest, when),
        )
        self.head = digest
        return entry_id


def _moments(day: datetime, count: int, rng: random.Random) -> list[datetime]:
    return sorted(day + timedelta(microseconds=rng.randrange(86_400_000_000)) for _ in range(count))


def _referral_code(user_id: int) -> str:
    # Unique, never all digits (as the application requires), 16 characters at most.
    return f"b{user_id:x}"


class History:
    """Generates the whole history in time order into the buffers."""

    def __init__(self, users: int, payments: int, days: int, now: datetime, seed: int) -> None:
        self.rng = random.Random(seed)
        self.users, self.payments, self.days = users, payments, days
        self.now = now
        self.start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.buffers = Buffers()
        self.ledger = Ledger(self.buffers)
        self.registered = 0
        self.referrer: list[int | None] = [None]  # by user id (index 0 unused)
        self.affiliates: list[int] = []
        self.plan_of: list[int] = [0]
        self.subscription: dict[int, tuple[int, datetime, datetime]] = {}  # user: (id, start, end)
        self.invoice_seq = 0
        self.payment_id = 0
        self.payout_id = 0
        self.click_id = 0
        self.refunds: list[tuple[datetime, int, Sale, int]] = []  # heap: (when, n, sale, user)

    def _register(self, when: datetime) -> None:
        self.registered += 1
        uid = self.registered
        referrer = None
        if self.affiliates and self.rng.random() < REFERRED_RATE:
            # Most referrals go to the earliest affiliates: user 1 is the biggest.
            referrer = self.affiliates[int(len(self.affiliates) * self.rng.random() ** 3)]
        self.referrer.append(referrer)
        self.plan_of.append(1 if self.rng.random() < 0.1 else 0)
        self.buffers.add(
            "users",
            USER_COLS,
            (
                uid,
                "telegram",
                str(10_000_000 + uid),
                f"user{uid}",
                "en",
                _referral_code(uid),
                referrer,
                when,
                when,
            ),
        )
        if referrer is not None:
            for _ in range(2):  # the link was opened twice per registration
                self.click_id += 1
                self.buffers.add(
                    "referral_clicks",
                    ("id", "affiliate_user_id", "source", "created_at"),
                    (self.click_id, referrer, "telegram", when),
                )
        if uid % AFFILIATE_EVERY == 1:
            self.affiliates.append(uid)

    def _sell(self, when: datetime) -> None:
        buyer = self.rng.randint(1, self.registered)
        plan_index = self.plan_of[buyer]
        plan_id, _, price, duration = PLANS[plan_index]
        referrer = self.referrer[buyer]
        current = self.subscription.get(buyer)
        if current is None:
            sub_id = len(self.subscription) + 1
            started, ends = when, when + timedelta(days=duration)
        else:
            sub_id, started, ends = current
            if ends > when:
                ends = ends + timedelta(days=duration)
            else:
                started, ends = when, when + timedelta(days=duration)
        self.subscription[buyer] = (sub_id, started, ends)
        self.invoice_seq += 1
        invoice_id = f"inv_bench{self.invoice_seq:010d}"
        sale = split(price, SHARE_BPS if referrer is not None else 0)
        postings = [
            (accounts.clearing("btcpay"), price),
            (accounts.OWNER_REVENUE, -sale.owner_sats),
        ]
        if referrer is not None:
            postings.append((accounts.affiliate_payable(referrer), -sale.affiliate_sats))
        entry_id = self.ledger.post(
            key=f"invoice:{invoice_id}:settled",
            kind="sale",
            when=when,
            postings=postings,
            invoice_id=invoice_id,
            gross=price,
            share_bps=sale.share_bps,
            affiliate=referrer if sale.affiliate_sats else None,
            terms="base" if referrer is not None else "no-referrer",
        )
        refund_at = None
        if self.rng.random() < REFUND_RATE:
            later = when + timedelta(seconds=self.rng.randrange(1, 10 * 86_400))
            refund_at = later if later < self.now else None
        self.buffers.add(
            "invoices",
            INVOICE_COLS,
            (
                invoice_id,
                "btcpay",
                f"bp{self.invoice_seq}",
                sub_id,
                buyer,
                plan_id,
                price,
                price,
                "settled" if refund_at is None else "refunded",
                "Settled",
                "None",
                when + timedelta(minutes=15),
                when - timedelta(minutes=2),
                when,
                when,
                "SAT",
                0,
            ),
        )
        self.payment_id += 1
        self.buffers.add(
            "payments",
            PAYMENT_COLS,
            (self.payment_id, invoice_id, buyer, "btcpay", price, price, 0, False, entry_id, when),
        )
        if refund_at is not None:
            heapq.heappush(
                self.refunds,
                (refund_at, entry_id, Sale(entry_id, invoice_id, postings, sub_id), buyer),
            )

    def _refund(self, when: datetime, sale: Sale) -> None:
        self.ledger.post(
            key=f"reversal:{sale.entry_id}",
            kind="reversal",
            when=when,
            postings=[(code, -amount) for code, amount in sale.postings],
            invoice_id=sale.invoice_id,
            reverses=sale.entry_id,
            author="admin:bench",
        )

    def _payouts(self, when: datetime) -> None:
        for affiliate in self.affiliates:
            code = accounts.affiliate_payable(affiliate)
            owed = -self.ledger.balances.get(code, 0)
            if owed < PAYOUT_MIN_SATS:
                continue
            self.payout_id += 1
            pid = self.payout_id
            self.ledger.post(
                key=f"payout:{pid}:hold",
                kind="payout_hold",
                when=when,
                postings=[(code, owed), (accounts.PAYOUTS_IN_FLIGHT, -owed)],
                affiliate=affiliate,
                author="system",
            )
            paid_at = when + timedelta(seconds=1)
            self.ledger.post(
                key=f"payout:{pid}:paid",
                kind="payout",
                when=paid_at,
                postings=[
                    (accounts.PAYOUTS_IN_FLIGHT, owed),
                    (accounts.payout_source("manual"), -owed),
                ],
                affiliate=affiliate,
                author="admin:bench",
            )
            self.buffers.add(
                "payouts",
                PAYOUT_COLS,
                (
                    pid,
                    affiliate,
                    owed,
                    0,
                    owed,
                    0,
                    "lightning_address",
                    f"user{affiliate}@bench",
                    "paid",
                    "manual",
                    False,
                    "system",
                    when,
                    paid_at,
                    paid_at,
                    paid_at,
                    0,
                ),
            )

    def days_iter(self) -> Iterator[datetime]:
        for offset in range(self.days + 1):
            yield self.start + timedelta(days=offset)

    async def run(self, conn: asyncpg.Connection, progress: bool = True) -> None:
        users_per_day = self.users / (self.days + 1)
        sales_per_day = self.payments / (self.days + 1)
        owed_users = owed_sales = 0.0
        started = time.monotonic()
        for day in self.days_iter():
            owed_users += users_per_day
            owed_sales += sales_per_day
            n_users = min(int(owed_users), self.users - self.registered)
            owed_users -= int(owed_users)
            n_sales = int(owed_sales)
            owed_sales -= n_sales
            if day.day == 1 and day > self.start:
                self._payouts(day + timedelta(minutes=30))
            if self.registered == 0:
                n_users = max(1, n_users)
            events: list[tuple[datetime, int]] = [(t, 0) for t in _moments(day, n_users, self.rng)]
            events += [(t, 1) for t in _moments(day, n_sales, self.rng)]
            events.sort()
            end = min(day + timedelta(days=1), self.now)
            for when, what in events:
                if when >= self.now:
                    continue
                self._due_refunds(when)
                if what == 0:
                    self._register(when)
                elif self.registered:
                    self._sell(when)
            self._due_refunds(end)
            if self.buffers.full():
                await self.buffers.flush(conn)
            if progress and day.day == 1:
                print(
                    f"  {day:%Y-%m}: {self.registered} users, {self.payment_id} payments, "
                    f"{self.ledger.entry_id} entries, {time.monotonic() - started:.0f} s",
                    flush=True,
                )
        self._finish_subscriptions()
        await self.buffers.flush(conn)

    def _due_refunds(self, until: datetime) -> None:
        while self.refunds and self.refunds[0][0] <= until:
            when, _, sale, _ = heapq.heappop(self.refunds)
            self._refund(when, sale)

    def _finish_subscriptions(self) -> None:
        for user, (sub_id, started, ends) in self.subscription.items():
            plan_id = PLANS[self.plan_of[user]][0]
            status = "active" if ends > self.now else "expired"
            self.buffers.add(
                "subscriptions",
                SUBSCRIPTION_COLS,
                (sub_id, user, plan_id, status, started, ends, started, started),
            )


async def advance_sequences(conn: asyncpg.Connection, tables: Sequence[str]) -> None:
    """After loading rows with their ids (COPY), move each table's id sequence past them so
    the service's own inserts do not collide."""
    for table in tables:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 1) FROM {table}))"
        )


async def migrate(url: str, revision: str = "head") -> None:
    database = Database(url)
    try:
        await upgrade(database, revision)
    finally:
        await database.dispose()


async def seed(url: str, users: int, payments: int, *, days: int = 730, seed_: int = 1) -> None:
    """Recreate the database at the schema before the figures and load the history; then
    migrate to the head, which builds the figures from it."""
    now = datetime.now(UTC).replace(microsecond=0)
    await recreate_database(url)
    await migrate(url, BEFORE_FIGURES)
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        database=parsed.database,
    )
    try:
        await conn.execute("SET synchronous_commit = off")
        # Foreign keys are triggers: off for the load (rows arrive in time order, a
        # subscription's row only once its last renewal is known).
        await conn.execute("SET session_replication_role = replica")
        for plan_id, title, price, duration in PLANS:
            await conn.execute(
                "INSERT INTO plans (id, title, description, price_sats, duration_days, channels,"
                " active, updated_at, source, trial_days) VALUES ($1, $2, '', $3, $4, '[]',"
                " true, $5, 'config', 0)",
                plan_id,
                title,
                price,
                duration,
                now,
            )
        history = History(users, payments, days, now, seed_)
        async with conn.transaction():
            await history.run(conn)
            ledger = history.ledger
            await conn.execute(
                "INSERT INTO ledger_chain_head (id, seq, hash) VALUES (1, $1, $2)",
                ledger.entry_id,
                ledger.head,
            )
        await advance_sequences(
            conn,
            [
                "users",
                "subscriptions",
                "ledger_accounts",
                "ledger_entries",
                "ledger_postings",
                "payments",
                "payouts",
                "referral_clicks",
            ],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    await migrate(url)


#: The last revision without the figures tables: the seed loads rows the way an existing
#: database has them, and the migration after it backfills the figures.
BEFORE_FIGURES = "0014"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", type=postgresql_url, required=True)
    parser.add_argument("--users", type=positive_int, default=10_000)
    parser.add_argument("--payments", type=positive_int, default=50_000)
    parser.add_argument("--days", type=positive_int, default=730)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(seed(args.database_url, args.users, args.payments, days=args.days, seed_=args.seed))
    print(f"seeded in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
