"""Telegram's bot-wide send rate, shared by every process (issue #11).

Several processes on one PostgreSQL (or one Redis) send at once through the Bot API
emulator: together they stay within ``telegram.max_messages_per_second`` as the emulator
counts it (messages accepted per whole second), and it answers no 429. The rest: the rate
as a ``limits`` item, tokens asked for in blocks, a storage that cannot count, and which
Bot API calls take a token (PTB's 429 handling kept)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import secrets
import socket
import string
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from limits.aio.storage import MemoryStorage, Storage
from prometheus_client import REGISTRY
from telegram.ext import ExtBot

from satshare.bot.ratelimiter import SharedRateLimiter
from satshare.ratelimits.shared import SharedRateLimit, rate_item
from satshare.sim.telegram import TelegramEmulator
from satshare.sim.telegram import build_app as telegram_app
from tests.conftest import PG_URL, truncate_all
from tests.servers import start_server

REPO = Path(__file__).resolve().parent.parent


def _requests(outcome: str) -> float:
    value = REGISTRY.get_sample_value("satshare_telegram_rate_requests_total", {"outcome": outcome})
    return value or 0.0


def _tokens(use: str = "granted") -> float:
    value = REGISTRY.get_sample_value("satshare_telegram_rate_tokens_total", {"use": use})
    return value or 0.0


def test_the_rate_is_a_whole_number_of_messages_per_whole_seconds() -> None:
    assert (rate_item(25).amount, rate_item(25).get_expiry()) == (25, 1)
    assert (rate_item(12.5).amount, rate_item(12.5).get_expiry()) == (25, 2)
    assert (rate_item(0.5).amount, rate_item(0.5).get_expiry()) == (1, 2)


async def test_a_send_alone_reserves_one_place_and_waiting_sends_a_block_each() -> None:
    shared = SharedRateLimit(MemoryStorage(), 25, identity="blocks")
    assert shared.block == 5
    reserved, tokens = _requests("reserved"), _tokens()
    await shared.acquire()
    assert (_requests("reserved") - reserved, _tokens() - tokens) == (1, 1)
    # 20 sends waiting: four requests of five places each.
    await asyncio.gather(*(shared.acquire() for _ in range(20)))
    assert (_requests("reserved") - reserved, _tokens() - tokens) == (5, 21)
    await shared.aclose()


async def test_places_are_spread_over_the_window_and_shared_through_the_storage() -> None:
    """Two limiters on one storage (two processes on one Redis or database): together at
    most the rate per window, each place at its time."""
    storage = MemoryStorage()
    first, second = (SharedRateLimit(storage, 10, identity="spread") for _ in range(2))
    times: list[float] = []

    async def send(shared: SharedRateLimit) -> None:
        await shared.acquire()
        times.append(time.time())

    await asyncio.gather(*(send(first) for _ in range(15)), *(send(second) for _ in range(15)))
    # Place p of a window starts p/10 s into it; shifted by half a place, each window's
    # places fall within its second. (One message of tolerance: a busy event loop may hand
    # a place out late.)
    per_window = Counter(math.floor(t - 0.05) for t in times)
    assert len(times) == 30 and max(per_window.values()) <= 10 + 1, per_window
    await first.aclose()
    await second.aclose()


class Failing(MemoryStorage):
    """A storage whose every count raises ``error``: Redis or the database down (a
    connection error), or a bug."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def incr(self, *args: Any, **kwargs: Any) -> int:
        raise self.error


async def test_a_storage_that_cannot_count_leaves_the_process_pacing_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage: Storage = Failing(ConnectionError("connection refused"))
    shared = SharedRateLimit(storage, 5, identity="down")
    failed = _requests("failed")
    with caplog.at_level(logging.WARNING, logger="satshare.ratelimits.shared"):
        await asyncio.gather(*(shared.acquire() for _ in range(5)))
    # Asked once, then counted in memory without asking again for a while.
    assert _requests("failed") - failed == 1
    assert "paces itself at 5 messages/s" in caplog.text
    # One line naming the reason, no traceback (unless DEBUG).
    [warning] = [r for r in caplog.records if r.name == "satshare.ratelimits.shared"]
    assert "/s for 5 s (ConnectionError: connection refused)" in warning.getMessage()
    assert not warning.exc_info
    await shared.aclose()


async def test_a_storage_bug_is_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug, not its backend down: its traceback must stay in the log."""
    shared = SharedRateLimit(Failing(TypeError("a bug\nwith a second line")), 5, identity="bug")
    with caplog.at_level(logging.WARNING, logger="satshare.ratelimits.shared"):
        await asyncio.gather(*(shared.acquire() for _ in range(3)))
    [warning] = [r for r in caplog.records if r.name == "satshare.ratelimits.shared"]
    assert warning.getMessage().endswith("s (TypeError: a bug)")  # its first line only
    assert warning.exc_info and warning.exc_info[0] is TypeError
    assert warning.levelno == logging.ERROR
    await shared.aclose()


async def test_calls_to_a_chat_take_a_token_and_a_429_is_waited_out_and_retried() -> None:
    token = "7000000005:AAH-rate-test-token-0123456789abcdef"
    emulator = TelegramEmulator(token)
    emulator.add_user(501, first_name="Ann").started = True
    server = await start_server(telegram_app(emulator))
    shared = SharedRateLimit(MemoryStorage(), 25, identity="calls")
    bot: ExtBot[int] = ExtBot(
        token, base_url=f"{server.url}/bot", rate_limiter=SharedRateLimiter(shared)
    )
    try:
        await bot.initialize()  # getMe: no chat, no token
        tokens = _tokens()
        await bot.get_me()
        assert _tokens() == tokens
        # The chat's burst is 3: the fourth message is answered 429 (retry after 1 s);
        # PTB waits it out and sends again, which takes another token.
        for n in range(4):
            await bot.send_message(501, f"message {n}")
        assert _tokens() - tokens == 5
        assert emulator.limits.refused == 1
        assert [m.text for m in emulator.messages[501]] == [f"message {n}" for n in range(4)]
    finally:
        await bot.shutdown()
        await shared.aclose()
        await emulator.aclose()
        await server.stop()


# -- several processes -------------------------------------------------------------------

RATE = 10
#: What the emulator accepts: a little over the configured rate, far under three processes
#: sending at it each.
EMULATOR_RATE = 12
PROCESSES = 3
MESSAGES_EACH = 25
#: Messages one whole second may hold over the rate: a send granted just before a second
#: ends may reach the emulator just after (counted in messages, never in time).
TOLERANCE = 2
FIRST_CHAT = 610_000_000


def _redis_running() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _secret(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(PG_URL is None, reason="several processes share PostgreSQL")
@pytest.mark.parametrize(
    "counted_in",
    [
        "postgresql",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(not _redis_running(), reason="no Redis on 127.0.0.1:6379"),
        ),
    ],
)
async def test_processes_sending_at_once_share_the_rate(
    migrated_template: str, tmp_path: Path, counted_in: str
) -> None:
    await truncate_all(migrated_template)
    token = f"7{secrets.randbelow(10**9):09d}:{_secret(35)}"
    emulator = TelegramEmulator(token, global_rate=EMULATOR_RATE)
    chats = range(FIRST_CHAT, FIRST_CHAT + PROCESSES * MESSAGES_EACH)
    for chat in chats:
        emulator.add_user(chat, first_name=f"U{chat}").started = True
    server = await start_server(telegram_app(emulator))
    config: dict[str, Any] = {
        "database": {"url": migrated_template},
        "btcpay": {
            "url": "http://127.0.0.1:9",
            "api_key": _secret(40),
            "store_id": "Store" + _secret(12),
            "webhook_secret": _secret(32),
        },
        "payouts": {"provider": "manual"},
        "telegram": {
            "token": token,
            "api_base_url": server.url,
            "max_messages_per_second": RATE,
        },
    }
    if counted_in == "redis":
        config["redis"] = {"url": "redis://127.0.0.1:6379/0"}
    config_path = tmp_path / "satshare.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    env["SATSHARE_CONFIG"] = str(config_path)
    senders = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.telegram_sender",
            str(FIRST_CHAT + n * MESSAGES_EACH),
            str(MESSAGES_EACH),
            cwd=REPO,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(PROCESSES)
    ]
    try:
        for sender in senders:
            assert sender.stdout is not None and sender.stderr is not None
            line = await asyncio.wait_for(sender.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise AssertionError((line + await sender.stderr.read()).decode())
        for sender in senders:  # every process starts sending at once
            assert sender.stdin is not None
            sender.stdin.write(b"go\n")
        results = []
        for sender in senders:
            out, errors = await asyncio.wait_for(sender.communicate(), 120)
            assert sender.returncode == 0, errors.decode()
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        for sender in senders:
            if sender.returncode is None:
                sender.kill()
                await sender.wait()
        await emulator.aclose()
        await server.stop()

    assert sum(r["sent"] for r in results) == PROCESSES * MESSAGES_EACH
    assert sorted(chat for chat, sent in emulator.messages.items() if sent) == list(chats)
    assert emulator.limits.refused == 0
    busiest = emulator.limits.busiest_second
    per_second = emulator.limits.per_second
    # Over the run the shared rate holds: the seconds from the first send to the last carried
    # at most RATE each. A loaded machine can stall sends due in one second into the next
    # (seen in CI: 2 then 16), so a single second is only held to twice the rate — three
    # processes counting alone would send 30 a second and be refused. Stalled that way, the
    # first second's sends can all arrive in the next one (seen in CI: 19, then 10 a second
    # for six seconds), so the run is held to one second more than it spans: three processes
    # counting alone would send the 75 in three seconds, far over 10 a second for four.
    span = max(per_second) - min(per_second) + 1
    assert sum(per_second.values()) <= RATE * (span + 1) + TOLERANCE, per_second
    assert busiest <= 2 * RATE, per_second
    # (Three processes at the rate each would have sent 30 a second: the emulator would
    # have answered 429s.) And the rate was used, not wasted:
    assert busiest >= RATE - TOLERANCE
    # What the sharing cost: requests to the storage per message, printed for the record.
    requests = sum(sum(r["rate_requests"].values()) for r in results)
    tokens = sum(r["rate_tokens"].get("granted", 0) for r in results)
    seconds = sorted(emulator.limits.per_second.items())
    print(f"{counted_in}: {requests} requests for {tokens} tokens; per second {seconds}")
    assert tokens == PROCESSES * MESSAGES_EACH


def test_a_database_error_is_named_by_its_first_line() -> None:
    """SQLAlchemy's message spans lines (the SQL, a link): the driver's own reason is kept."""
    from sqlalchemy.exc import OperationalError

    from satshare.logs import error_line

    error = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    assert "\n" in str(error)
    assert error_line(error) == "ConnectionRefusedError: connection refused"
    assert error_line(TimeoutError()) == "TimeoutError"
