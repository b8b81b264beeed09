"""The outbox sender: notifications sent per second, against a plain PTB bot in the same run.

    .venv/bin/python -m bench.outbox --messages 2000 [--rounds 2] \
        [--database-url postgresql://postgres@127.0.0.1:5432/satshare_bench_outbox]

The Bot API emulator runs in its own process with Telegram's rate limits lifted (the point
is the sender's own cost, not Telegram's 30 messages/s). SatShare's sender drains an outbox
of N messages to N Telegram users, half "payment confirmed" to buyers and half "commission
earned" to affiliates (what a sale queues for people; the admin copy goes to a few chats),
each rendered in the user's language, sent, and marked sent in its own transaction right
after Telegram accepted it, as in ``serve``. The baseline is a plain python-telegram-bot
``Bot`` sending the same number of messages of the same length one after the other, as the
sender does, through the same emulator: no database. They take turns, N/rounds messages
each per round, and their times are summed. Besides messages per second it prints the CPU
time of this process per message and, for SatShare, the SQL statements, transactions and
round trips per message (counted on SQLAlchemy's engine events).

A PostgreSQL database given by --database-url is dropped and recreated (its name must
contain 'bench'). Results go to bench/results/outbox_sqlite.json or outbox_postgresql.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.bot_updates import TOKEN, Emulator, builder
from bench.settle_tx import Counts
from bench.settlement import add_postgresql_option, positive_int, recreate_database
from bench.turns import take_turns
from satshare.sim.loadclient import Request, send_all

ROOT = Path(__file__).resolve().parents[1]
#: About as long as the messages SatShare sends here (the baseline sends this text).
TEXT = "✅ Payment confirmed: Bench. Your subscription runs until 1 January 2027, 12:00."


@dataclass(frozen=True, slots=True)
class Run:
    """One sender's drain: wall time, this process's CPU time and, for SatShare, the SQL
    traffic (statements, transactions, round trips)."""

    seconds: float
    cpu_seconds: float
    statements: int = 0
    transactions: int = 0
    round_trips: int = 0


async def create_users(emulator: Emulator, ids: list[int]) -> None:
    """The emulator's users, each as having started the bot (Telegram refuses a message to
    anyone else: "chat not found")."""
    created = await send_all(
        emulator.url,
        [
            Request(
                "POST",
                "/_sim/users",
                json.dumps(
                    {"id": i, "first_name": f"U{i}", "username": f"u{i}", "started": True}
                ).encode(),
                (("Content-Type", "application/json"),),
            )
            for i in ids
        ],
        concurrency=32,
    )
    if any(r.status != 200 for r in created):
        raise RuntimeError("the emulator refused to create the bench's users")


async def run_plain(messages: int, first_id: int) -> Run:
    async with Emulator() as emulator:
        ids = list(range(first_id, first_id + messages))
        await create_users(emulator, ids)
        application = builder(emulator.url).build()
        async with application:
            started, cpu = time.perf_counter(), time.process_time()
            for chat_id in ids:
                await application.bot.send_message(chat_id, TEXT)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            if await emulator.answered(ids) != len(ids):
                raise RuntimeError("the plain bot's messages did not all arrive")
    return Run(seconds, cpu)


async def seed(container: Any, ids: list[int], now: datetime) -> None:
    """A Telegram user per id and one outbox message to each."""
    from satshare.notifications import service as outbox
    from satshare.notifications.messages import CommissionEarned, PaymentConfirmed
    from satshare.users import service as users
    from satshare.users.service import Registration

    for start in range(0, len(ids), 500):
        async with container.db.transaction() as session:
            queued: list[outbox.Queued] = []
            for n, chat_id in enumerate(ids[start : start + 500], start=start):
                registration = Registration(
                    platform="telegram",
                    username=f"u{chat_id}",
                    external_id=str(chat_id),
                    language="ru" if n % 4 == 3 else "en",
                )
                user = await users.register(session, registration, now)
                message: Any
                if n % 2 == 0:
                    message = PaymentConfirmed(
                        invoice_id=f"inv_bench{n:08d}",
                        subscription_id=n + 1,
                        plan_id="bench",
                        plan_title="Bench",
                        amount_sats=1000,
                        amount_stars=None,
                        currency="SAT",
                        active_until=now + timedelta(days=30),
                        channels=(),
                        paid_late=False,
                    )
                else:
                    message = CommissionEarned(
                        invoice_id=f"inv_bench{n:08d}",
                        buyer_user_id=user.id,
                        commission_sats=500,
                        share_bps=5000,
                        transaction_id=n + 1,
                    )
                queued.append(outbox.Queued(message, f"bench:{n}", user_id=user.id))
            await outbox.enqueue_all(session, queued, now)


async def run_satshare(messages: int, first_id: int, database_url: str | None) -> Run:
    with tempfile.TemporaryDirectory(prefix="satshare-bench-") as workdir:  # SQLite's file
        return await _run_satshare_in(workdir, messages, first_id, database_url)


async def _run_satshare_in(
    workdir: str, messages: int, first_id: int, database_url: str | None
) -> Run:
    from satshare import migrate
    from satshare.bot.app import build_runtime
    from satshare.bot.dispatcher import OutboxDispatcher
    from satshare.config import Settings
    from satshare.container import build_container, prepare
    from satshare.db import Database

    url = database_url or f"sqlite+aiosqlite:///{workdir}/bench.db"
    if database_url:
        await recreate_database(database_url)
    db = Database(url)
    await migrate.upgrade(db)
    await db.dispose()
    async with Emulator() as emulator:
        ids = list(range(first_id, first_id + messages))
        await create_users(emulator, ids)
        settings = Settings(
            database={"url": url, "pool_size": 20},
            telegram={"token": TOKEN, "api_base_url": emulator.url},
            plans=[{"id": "bench", "title": "Bench", "price_sats": 1000, "duration_days": 30}],
        )
        # Telegram's 30 messages/s is lifted for both senders (the emulator runs without it).
        settings.telegram = settings.telegram.model_copy(update={"max_messages_per_second": 1e9})
        container = build_container(settings)
        await prepare(container)
        try:
            await seed(container, ids, datetime.now(UTC))
            runtime = build_runtime(
                container.bot_services(), token=TOKEN, api_base_url=emulator.url
            )
            counts = Counts()
            async with runtime.application:
                dispatcher = OutboxDispatcher(runtime, runtime.application.bot)
                counts.hook(container.db.engine.sync_engine)
                started, cpu = time.perf_counter(), time.process_time()
                sent = await dispatcher.dispatch_all()
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                await dispatcher.aclose()
            if sent != len(ids) or await emulator.answered(ids) != len(ids):
                raise RuntimeError(f"SatShare sent {sent} of {len(ids)} messages")
        finally:
            await container.aclose()
    statements, begins, commits = counts.snapshot()
    return Run(seconds, cpu, statements, begins, statements + begins + commits)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=positive_int, default=2_000)
    add_postgresql_option(parser)
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=2,
        help="drains per sender, taking turns (a shared machine's load drifts; both see it)",
    )
    args = parser.parse_args()
    if args.messages < args.rounds:
        parser.error(f"--messages {args.messages} is fewer than --rounds {args.rounds}")
    if args.database_url:  # a database that cannot be used stops the bench before a round
        await recreate_database(args.database_url)
    per_round: int = args.messages // args.rounds

    def first_id(turn: int) -> int:
        return 400_000_000 + turn * per_round

    runs = await take_turns(
        args.rounds,
        [
            ("plain", lambda turn: run_plain(per_round, first_id(turn))),
            ("satshare", lambda turn: run_satshare(per_round, first_id(turn), args.database_url)),
        ],
        lambda turn, sender: f"round {turn + 1}/{args.rounds}, {sender}: {per_round} messages…",
    )
    total = per_round * args.rounds
    plain, ours = (
        Run(*(sum(getattr(r, field) for r in runs[sender]) for field in Run.__slots__))
        for sender in ("plain", "satshare")
    )
    rate, plain_rate = total / ours.seconds, total / plain.seconds
    cpu, plain_cpu = (1000 * r.cpu_seconds / total for r in (ours, plain))
    result = {
        "messages": total,
        "rounds": args.rounds,
        "satshare_messages_per_second": round(rate, 1),
        "plain_messages_per_second": round(plain_rate, 1),
        "ratio": round(rate / plain_rate, 3),
        "satshare_cpu_ms_per_message": round(cpu, 2),
        "plain_cpu_ms_per_message": round(plain_cpu, 2),
        "statements_per_message": round(ours.statements / total, 2),
        "transactions_per_message": round(ours.transactions / total, 2),
        "round_trips_per_message": round(ours.round_trips / total, 2),
        "database": "postgresql" if args.database_url else "sqlite",
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"SatShare sender messages/s: {rate:8.1f}   CPU {cpu:6.2f} ms/message")
    print(f"plain PTB bot messages/s:   {plain_rate:8.1f}   CPU {plain_cpu:6.2f} ms/message")
    print(f"ratio:                      {rate / plain_rate:8.3f}")
    for key in ("statements_per_message", "transactions_per_message", "round_trips_per_message"):
        print(f"{key.replace('_', ' ')}: {result[key]:>8}")
    print(f"load average: {result['load_average']}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    # One file per database, so `make bench`'s SQLite and PostgreSQL runs both stay.
    (out / f"outbox_{result['database']}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    try:  # the event loop ``satshare serve`` runs on (both senders run on it)
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
