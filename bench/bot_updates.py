"""/start storm: updates processed per second by the SatShare bot versus a PTB echo bot.

The Bot API emulator runs in its own process with Telegram's rate limits lifted (the point
is to measure update processing, not Telegram's 30 messages/s). N distinct users each send
/start; the clock runs from the moment the bot starts polling until every user has had a
reply. The SatShare bot registers each user (SQLite by default) and answers with the main
menu; the echo bot answers with a fixed text. Same PTB settings for both. The bots take
turns, a storm of N/rounds users each per round, and their times are summed (a shared
machine's load drifts: both bots see it). Besides updates per second it prints the CPU time
of the bot's process per update (the bot runs in this process; the emulator in its own).

    .venv/bin/python -m bench.bot_updates --users 2000 [--rounds 2] \
        [--database-url postgresql://postgres@127.0.0.1:5432/satshare_bench]

A PostgreSQL database given by --database-url is dropped and recreated first (its name must
contain 'bench'): the emulator numbers its updates from 1 again, and ids the bot already
handled in an earlier run would be dropped as duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from telegram import Update
from telegram.ext import AIORateLimiter, ApplicationBuilder, CommandHandler, ContextTypes

from bench.settlement import add_postgresql_option, positive_int, recreate_database
from bench.turns import take_turns
from satshare.sim.loadclient import Request, send_all

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "7000000001:AAH-bench-token-for-the-emulator-00000"
CONCURRENT_UPDATES = 64
#: The Bot API client's connections, as the SatShare bot has them (bot/app.py).
CONNECTION_POOL = 16


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_http(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                await client.get(url)
                return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class Emulator:
    """The Bot API emulator as a separate process, loaded through its control API."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._client: httpx.AsyncClient | None = None
        self._seen = 0  # calls read so far
        self._replied: set[int] = set()

    async def __aenter__(self) -> Emulator:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "satshare",
                "sim",
                "telegram",
                "--port",
                str(self.port),
                "--token",
                TOKEN,
                "--global-rate",
                "1000000",
                "--chat-rate",
                "1000",
                "--chat-burst",
                "1000",
            ],
            stdout=subprocess.DEVNULL,
        )
        await wait_http(f"{self.url}/_sim/limits")
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.process is not None
        if self._client is not None:
            await self._client.aclose()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    async def storm(self, users: int, first_id: int) -> list[int]:
        """Create the users and queue one /start per user."""
        ids = list(range(first_id, first_id + users))
        json_headers = (("Content-Type", "application/json"),)
        created = await send_all(
            self.url,
            [
                Request(
                    "POST",
                    "/_sim/users",
                    json.dumps({"id": i, "first_name": f"U{i}", "username": f"u{i}"}).encode(),
                    json_headers,
                )
                for i in ids
            ],
            concurrency=32,
        )
        assert all(r.status == 200 for r in created)
        sent = await send_all(
            self.url,
            [
                Request("POST", f"/_sim/users/{i}/send", b'{"text": "/start"}', json_headers)
                for i in ids
            ],
            concurrency=32,
        )
        assert all(r.status == 200 for r in sent)
        return ids

    async def answered(self, ids: list[int]) -> int:
        """How many of these users have at least one message from the bot. Reads only the
        calls made since the last look, through one client: the poll must cost the bot's
        process (which it shares) next to nothing, whichever bot is measured."""
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.url, timeout=60)
        calls = (await self._client.get(f"/_sim/calls?since={self._seen}")).json()
        self._seen += len(calls)
        self._replied.update(
            int(c["params"]["chat_id"]) for c in calls if c["method"] == "sendMessage"
        )
        return len(self._replied.intersection(ids))


@dataclass(frozen=True, slots=True)
class Run:
    """One bot's storm: wall time until every user had a reply, and this process's CPU time
    in that window (the bot runs here; the emulator has its own process)."""

    seconds: float
    cpu_seconds: float


#: Give up when no new user had a reply for this long (a lost reply would never come).
STALLED = 120.0


async def until_answered(emulator: Emulator, ids: list[int]) -> Run:
    started, cpu = time.perf_counter(), time.process_time()
    answered, progress_at = 0, started
    while (now_answered := await emulator.answered(ids)) < len(ids):
        if now_answered > answered:
            answered, progress_at = now_answered, time.perf_counter()
        elif time.perf_counter() - progress_at > STALLED:
            raise RuntimeError(f"{len(ids) - answered} users had no reply in {STALLED:.0f} s")
        await asyncio.sleep(0.2)
    return Run(time.perf_counter() - started, time.process_time() - cpu)


def builder(base_url: str) -> Any:
    return (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{base_url}/bot")
        .rate_limiter(AIORateLimiter(overall_max_rate=0, max_retries=2))
        .concurrent_updates(CONCURRENT_UPDATES)
        .connection_pool_size(CONNECTION_POOL)
        .pool_timeout(30)
        .connect_timeout(30)  # a loaded machine accepts 64 new connections slowly
    )


async def run_echo(users: int) -> Run:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "Hello!")

    async with Emulator() as emulator:
        ids = await emulator.storm(users, 200_000_000)
        application = builder(emulator.url).build()
        application.add_handler(CommandHandler("start", echo))
        async with application:
            await application.start()
            assert application.updater is not None
            await application.updater.start_polling(timeout=1)
            run = await until_answered(emulator, ids)
            await application.updater.stop()
            await application.stop()
    return run


async def run_satshare(users: int, database_url: str | None) -> Run:
    with tempfile.TemporaryDirectory(prefix="satshare-bench-") as workdir:  # SQLite's file
        return await _run_satshare_in(workdir, users, database_url)


async def _run_satshare_in(workdir: str, users: int, database_url: str | None) -> Run:
    from satshare import migrate
    from satshare.bot.app import build_runtime, start_bot, stop_bot
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
        ids = await emulator.storm(users, 300_000_000)
        settings = Settings(
            database={"url": url, "pool_size": 20},
            telegram={"token": TOKEN, "api_base_url": emulator.url},
            plans=[{"id": "bench", "title": "Bench", "price_sats": 1000, "duration_days": 30}],
        )
        # Telegram's 30 messages/s is lifted on both bots (the emulator runs without it).
        settings.telegram = settings.telegram.model_copy(update={"max_messages_per_second": 1e9})
        container = build_container(settings)
        await prepare(container)
        runtime = build_runtime(container.bot_services(), token=TOKEN, api_base_url=emulator.url)
        dispatcher = await start_bot(runtime)
        try:
            run = await until_answered(emulator, ids)
        finally:
            await stop_bot(runtime, dispatcher)
            await container.aclose()
    return run


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=positive_int, default=2_000)
    add_postgresql_option(parser)
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=2,
        help="storms per bot, taking turns (a shared machine's load drifts; both see it)",
    )
    args = parser.parse_args()
    if args.users < args.rounds:
        parser.error(f"--users {args.users} is fewer than --rounds {args.rounds}")
    if args.database_url:  # a database that cannot be used stops the bench before a round
        await recreate_database(args.database_url)
    per_round = args.users // args.rounds
    runs = await take_turns(
        args.rounds,
        [
            ("echo", lambda _: run_echo(per_round)),
            ("satshare", lambda _: run_satshare(per_round, args.database_url)),
        ],
        lambda turn, bot: f"round {turn + 1}/{args.rounds}, {bot} bot: {per_round} /start…",
    )
    echo, ours = (
        Run(sum(r.seconds for r in runs[bot]), sum(r.cpu_seconds for r in runs[bot]))
        for bot in ("echo", "satshare")
    )
    args.users = per_round * args.rounds
    satshare, echo_rate = args.users / ours.seconds, args.users / echo.seconds
    # CPU of the bot's process per update: what the storm costs apart from the shared cores.
    satshare_cpu, echo_cpu = (1000 * r.cpu_seconds / args.users for r in (ours, echo))
    result = {
        "users": args.users,
        "rounds": args.rounds,
        "satshare_updates_per_second": round(satshare, 1),
        "echo_updates_per_second": round(echo_rate, 1),
        "ratio": round(satshare / echo_rate, 3),
        "satshare_cpu_ms_per_update": round(satshare_cpu, 2),
        "echo_cpu_ms_per_update": round(echo_cpu, 2),
        "cpu_ratio": round(satshare_cpu / echo_cpu, 2),
        "database": "postgresql" if args.database_url else "sqlite",
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"SatShare bot updates/s: {satshare:9.1f}   CPU {satshare_cpu:6.2f} ms/update")
    print(f"PTB echo bot updates/s: {echo_rate:9.1f}   CPU {echo_cpu:6.2f} ms/update")
    print(
        f"ratio:                  {satshare / echo_rate:9.3f}   (goal: ≥ 0.7 on PostgreSQL, ≥ 0.5 on SQLite)"
    )
    print(f"CPU ratio (SatShare / echo): {satshare_cpu / echo_cpu:4.2f}")
    print(f"load average: {result['load_average']}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    # One file per database, so `make bench`'s SQLite and PostgreSQL runs both stay.
    (out / f"bot_updates_{result['database']}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
