"""Broadcast delivery at Telegram's real limits: achieved rate, 429s, duplicates (#13).

The Bot API emulator runs in its own process with its default limits (30 messages/s for the
bot, 1/s per chat with a burst of 3, as Telegram). N users who started the bot are seeded in
the emulator and in SatShare's database (SQLite by default); one broadcast to everyone is
sent by ``bot.broadcasts.BroadcastSender`` through the bot ``satshare serve`` builds (its
rate limiter at ``telegram.max_messages_per_second``, counted in memory on SQLite, in
PostgreSQL with ``--database-url``, in Redis with ``--redis-url``). The clock runs from the
first claim to the last recipient resolved.

    .venv/bin/python -m bench.broadcast --users 10000            # ~7 minutes at 25/s
    .venv/bin/python -m bench.broadcast --users 500 --rate 25

Prints the achieved rate as a ratio of the configured one (goal >= 0.97), the 429s the
emulator answered, the most messages it accepted in one second, the recipients who got the
message more than once (goals 0 and 0), and the requests the rate limit made to its storage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime

import httpx
from annotated_types import Le
from prometheus_client import REGISTRY
from pydantic import ValidationError

from bench.bot_updates import TOKEN, free_port, wait_http
from bench.settlement import add_postgresql_option, positive_int, recreate_database
from satshare.config import RedisSettings, TelegramSettings
from satshare.sim.loadclient import Request, send_all

FIRST_ID = 400_000_000
#: Telegram's own limit for one bot's messages: the bound the settings put on
#: ``telegram.max_messages_per_second``.
TELEGRAM_LIMIT = next(
    bound.le
    for bound in TelegramSettings.model_fields["max_messages_per_second"].metadata
    if isinstance(bound, Le)
)


def messages_per_second(text: str) -> float:
    """An argparse type: a rate the settings take (above 0, at most Telegram's 30 a second;
    the settings check it), checked before anything is seeded."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    try:
        return TelegramSettings(max_messages_per_second=value).max_messages_per_second
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text} is not above 0 and at most {TELEGRAM_LIMIT} (Telegram's limit per bot)"
        ) from None


def redis_url(text: str) -> str:
    """An argparse type: a redis:// or rediss:// URL, as ``redis.url`` takes (the settings
    check it)."""
    try:
        given = RedisSettings(url=text).url  # an empty one means no Redis there
    except ValidationError:
        given = None
    if given is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a redis:// or rediss:// URL (e.g. redis://127.0.0.1:6379/0)"
        )
    return text


async def seed_emulator(url: str, users: int) -> list[int]:
    ids = list(range(FIRST_ID, FIRST_ID + users))
    json_headers = (("Content-Type", "application/json"),)
    created = await send_all(
        url,
        [
            Request(
                "POST",
                "/_sim/users",
                json.dumps({"id": i, "first_name": f"U{i}", "started": True}).encode(),
                json_headers,
            )
            for i in ids
        ],
        concurrency=32,
    )
    assert all(r.status == 200 for r in created)
    return ids


async def seed_database(url: str, ids: list[int]) -> None:
    """The users as /start registers them (rows written in bulk: seeding is not measured)."""
    from satshare.db import Database
    from satshare.users.models import User
    from satshare.users.service import new_referral_code

    db = Database(url)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            codes: set[str] = set()
            rows = []
            for telegram_id in ids:
                code = new_referral_code()
                while code in codes:
                    code = new_referral_code()
                codes.add(code)
                rows.append(
                    {
                        "platform": "telegram",
                        "external_id": str(telegram_id),
                        "username": f"u{telegram_id}",
                        "language": "ru" if telegram_id % 3 == 0 else "en",
                        "referral_code": code,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            table = User.__table__
            for start in range(0, len(rows), 1000):
                await session.execute(table.insert(), rows[start : start + 1000])
    finally:
        await db.dispose()


async def check_redis(url: str) -> None:
    """Stop with one line when Redis cannot be reached: SatShare would fall back to pacing
    each process on its own, and the bench would measure that instead of Redis."""
    import redis.asyncio
    from redis.exceptions import RedisError

    from satshare.config import redact_url

    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        sys.exit(
            f"cannot reach Redis at {redact_url(url)} ({exc}): start it, or leave out --redis-url"
        )
    finally:
        await client.aclose()


async def run(
    users: int, rate: float, database_url: str | None, redis_url: str | None
) -> dict[str, object]:
    """One broadcast to ``users`` recipients; a PostgreSQL ``database_url`` is dropped and
    recreated first, the default SQLite file removed after."""
    if redis_url is not None:
        await check_redis(redis_url)
    with tempfile.TemporaryDirectory(prefix="satshare-bench-broadcast-") as workdir:
        if database_url is not None:
            await recreate_database(database_url)
        url = database_url or f"sqlite+aiosqlite:///{workdir}/bench.db"
        return await _run_in(url, users, rate, redis_url)


async def _run_in(url: str, users: int, rate: float, redis_url: str | None) -> dict[str, object]:
    from satshare import migrate
    from satshare.bot.app import build_runtime
    from satshare.bot.broadcasts import BroadcastSender
    from satshare.broadcasts import service
    from satshare.broadcasts.compose import Content
    from satshare.broadcasts.segments import Segment, SegmentKind
    from satshare.config import Settings
    from satshare.container import build_container, prepare
    from satshare.db import Database

    db = Database(url)
    await migrate.upgrade(db)
    await db.dispose()
    port = free_port()
    emulator_url = f"http://127.0.0.1:{port}"
    process = await asyncio.create_subprocess_exec(
        *(
            sys.executable,
            "-m",
            "satshare",
            "sim",
            "telegram",
            "--port",
            str(port),
            "--token",
            TOKEN,
        ),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_http(f"{emulator_url}/_sim/limits")
        ids = await seed_emulator(emulator_url, users)
        await seed_database(url, ids)
        settings = Settings(
            database={"url": url, "pool_size": 20},
            telegram={
                "token": TOKEN,
                "api_base_url": emulator_url,
                "max_messages_per_second": rate,
            },
            redis={"url": redis_url},
            plans=[{"id": "bench", "title": "Bench", "price_sats": 1000, "duration_days": 30}],
        )
        container = build_container(settings)
        await prepare(container)
        runtime = build_runtime(container.bot_services(), token=TOKEN, api_base_url=emulator_url)
        await runtime.application.initialize()
        try:
            now = container.clock.now()
            async with container.db.transaction() as session:
                broadcast = await service.create(
                    session,
                    Content("<b>Bench</b> broadcast", text_ru="<b>Тест</b> рассылки"),
                    Segment(SegmentKind.ALL),
                    send_at=None,
                    author="bench",
                    now=now,
                )
                await service.request_send(session, broadcast.id, now)
            sender = BroadcastSender(container.db, container.clock, runtime.application.bot)
            started = time.perf_counter()
            delivery = await sender.deliver(broadcast.id)
            elapsed = time.perf_counter() - started
        finally:
            await runtime.application.shutdown()
            await container.aclose()
        async with httpx.AsyncClient(base_url=emulator_url, timeout=120) as client:
            limits = (await client.get("/_sim/limits")).json()
            calls = (await client.get("/_sim/calls")).json()
        per_chat = Counter(
            int(c["params"]["chat_id"]) for c in calls if c["method"] == "sendMessage"
        )
        duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
        achieved = delivery.sent / elapsed
        sample = REGISTRY.get_sample_value  # this process's counters (SatShare's metrics)
        return {
            "users": users,
            "configured_rate": rate,
            "sent": delivery.sent,
            "failed": delivery.failed,
            "blocked": delivery.blocked,
            "seconds": round(elapsed, 2),
            "achieved_rate": round(achieved, 3),
            "ratio": round(achieved / rate, 4),
            "too_many_requests": limits["refused"],
            "busiest_second": limits["busiest_second"],
            "recipients_reached": len(per_chat),
            "duplicates": duplicates,
            "rate_requests": sample(
                "satshare_telegram_rate_requests_total", {"outcome": "reserved"}
            ),
            "rate_tokens": sample("satshare_telegram_rate_tokens_total", {"use": "granted"}),
            "rate_tokens_unused": sample("satshare_telegram_rate_tokens_total", {"use": "unused"}),
        }
    finally:
        with contextlib.suppress(ProcessLookupError):  # it died first: keep the real error
            process.terminate()
        await process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=positive_int, default=10_000)
    parser.add_argument(
        "--rate", type=messages_per_second, default=25.0, help="max_messages_per_second"
    )
    add_postgresql_option(parser)
    parser.add_argument("--redis-url", type=redis_url, default=None, help="count the rate in Redis")
    args = parser.parse_args()
    result = asyncio.run(run(args.users, args.rate, args.database_url, args.redis_url))
    print(json.dumps(result, indent=2))
    ok = result["ratio"] >= 0.97 and result["too_many_requests"] == 0  # type: ignore[operator]
    ok = ok and result["duplicates"] == 0 and result["sent"] == args.users
    print("goal met" if ok else "goal NOT met")


if __name__ == "__main__":
    main()
