"""Running SatShare as separate processes against the emulators: the BTCPay and Bot API
emulators on their own servers, `satshare` commands as subprocesses with their output in a
file, and waiting for what those processes do on their own (tests/test_multiprocess.py,
tests/test_serve_workers.py)."""

from __future__ import annotations

import asyncio
import inspect
import secrets
import signal
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from satshare.apikeys import service as apikeys
from satshare.clock import SystemClock
from satshare.db import Database
from satshare.sim.btcpay import BTCPayEmulator
from satshare.sim.btcpay import build_app as btcpay_app
from satshare.sim.telegram import TelegramEmulator
from satshare.sim.telegram import build_app as telegram_app
from tests.conftest import truncate_all
from tests.servers import RunningServer, start_server

CHANNEL = -1001000000001
#: What the process that takes the bot's long poll logs (one process at a time).
LEADER_LINE = "now receives the bot's updates"


async def empty_database_with_admin_key(url: str, name: str) -> str:
    """Empty the PostgreSQL test database (its job queue too) and issue an admin API key for
    the processes about to share it; the key's plaintext."""
    await truncate_all(url)
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM procrastinate_jobs"))
        async with db.transaction() as session:
            issued = await apikeys.create(session, name, ("admin",), SystemClock().now())
    finally:
        await db.dispose()
    return issued.plaintext


def _secret(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._file = log.open("w")
        self.popen = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "satshare", *args],
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._file.close()


async def eventually(check: Any, what: str, seconds: float = 120) -> Any:
    """Wait for ``check()`` to return something truthy (the processes work on their own)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


class Emulators:
    def __init__(self) -> None:
        self.api_key = _secret(40)
        self.webhook_secret = _secret(32)
        self.store_id = "Store" + _secret(12)
        self.token = f"7{secrets.randbelow(10**9):09d}:{_secret(35)}"
        self.btcpay = BTCPayEmulator(
            api_key=self.api_key, store_id=self.store_id, retry_delays=(0.05, 0.1, 0.2)
        )
        self.telegram = TelegramEmulator(self.token)
        self.telegram.add_chat(CHANNEL, "Premium", "channel")
        self.servers: list[RunningServer] = []

    async def start(self) -> None:
        self.servers = [
            await start_server(btcpay_app(self.btcpay)),
            await start_server(telegram_app(self.telegram)),
        ]
        self.btcpay.base_url = self.servers[0].url

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()
        await self.btcpay.aclose()
        await self.telegram.aclose()
