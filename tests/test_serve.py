"""`satshare serve` starting and stopping as a person meets it (issue #10): a taken port is
one line with the fix, Ctrl+C stops the jobs and the bot before the web server without a
traceback, and the access log never shows the bot token."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from satshare.cli import app
from satshare.cli.serving import GRACEFUL_SECONDS, RedactBotTokens, Server, port_problem
from tests.servers import free_port

RAW_TOKEN = re.compile(r"/bot[0-9]+(:|%3A)[A-Za-z0-9_-]{20,}", re.IGNORECASE)


@pytest.fixture(autouse=True)
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SATSHARE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_a_taken_port_is_one_line_naming_the_way_out(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"satshare: port {port} on 127.0.0.1 is already in use (is SatShare already running?); "
        f"stop that process or choose another port: satshare serve --port {port + 1} (make "
        f"run PORT={port + 1}, or server.port in satshare.yaml)"
    ]
    assert not (tmp_path / "satshare.db").exists()  # refused before anything was opened
    assert gc.isenabled()  # paused for the start only, even one that fails


def test_a_host_that_is_not_this_machine_is_named() -> None:
    problem = port_problem("203.0.113.7", 8000)  # TEST-NET-3: never a local address
    assert problem == (
        "server.host 203.0.113.7 is not an address of this machine; use 127.0.0.1 (this "
        "machine only) or 0.0.0.0 (every interface)"
    )
    assert port_problem("127.0.0.1", 0) is None


def test_the_access_log_hides_bot_tokens() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "POST",
            "/sim/telegram/bot7733570323%3AS9C7eKo2l3MSJG7xc6ivr1Dq132Bkl0Nw8s/getUpdates",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactBotTokens().filter(record)
    assert record.getMessage() == (
        '127.0.0.1:5000 - "POST /sim/telegram/bot<token>/getUpdates HTTP/1.1" 200'
    )


@pytest.mark.integration
def _satshare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    env["SATSHARE_DATABASE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'satshare.db'}"
    env.update(extra)
    return env


SATSHARE = [sys.executable, "-m", "satshare"]


class Serving:
    """``satshare serve`` in a child process, its output read as it comes."""

    def __init__(self, env: dict[str, str], ready: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI
            [*SATSHARE, "serve", "--port", str(free_port())],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()  # ``ready`` was printed
        self._reader = threading.Thread(target=self._read, args=(ready,), daemon=True)
        self._reader.start()

    def _read(self, ready: str) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if ready in line:
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> None:
        assert self.ready.wait(120), self.output

    def stop(self, presses: int = 1) -> int:
        """Ctrl+C (twice: the second while it stops), then its exit code once it ended."""
        try:
            self.process.send_signal(signal.SIGINT)
            if presses == 2:
                time.sleep(0.05)
                self.process.send_signal(signal.SIGINT)
            return self.process.wait(60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._reader.join(10)


@pytest.mark.parametrize("presses", [1, 2], ids=["once", "twice"])
def test_ctrl_c_stops_the_bot_before_the_server_without_a_traceback(
    tmp_path: Path, presses: int
) -> None:
    """Once: in order. Twice (the second while the bot is still stopping): at once, and
    still without the lifespan's CancelledError traceback uvicorn's forced exit left."""
    env = _satshare_env(tmp_path)
    subprocess.run([*SATSHARE, "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    serving = Serving(env, ready="Application started")  # PTB: once polling has begun
    # The sandbox bot is long-polling the emulator: a poll is open now (waiting for a poll
    # to finish would wait out its 30-second timeout). Stopping answers that open poll, so
    # its access-log line is checked below.
    serving.wait_ready()
    time.sleep(1)
    assert serving.stop(presses) == 0, serving.output
    output = serving.output
    assert "Traceback" not in output
    assert "Error" not in output
    bot_stopped = output.index("Application.stop() complete")
    assert bot_stopped < output.index("Shutting down")  # the bot first, then the web server
    assert "/bot<token>/getUpdates" in output
    assert not RAW_TOKEN.search(output)


async def _lifespan(receive: Any, send: Any) -> None:
    """An app's ASGI lifespan with nothing to start or stop."""
    while (await receive())["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def _stop_slowly() -> None:
    """A ``before_exit`` that outlasts a second Ctrl+C pressed 50 ms after the first."""
    await asyncio.sleep(GRACEFUL_SECONDS * 3)


def test_a_forced_exit_answers_the_long_poll_left_open(caplog: pytest.LogCaptureFixture) -> None:
    """A second Ctrl+C while the bot still stops: uvicorn's forced exit does not wait for the
    requests left open, so the sandbox's long poll was cancelled mid-request (a traceback and
    a 500, once in CI); ``answer_waiting`` answers it first. Deterministic: ``before_exit``
    here outlasts the second press, which the real bot's stop rarely does."""
    polling, woken = asyncio.Event(), asyncio.Event()

    async def long_poll_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        polling.set()
        await woken.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def answer() -> None:
        woken.set()

    async def scenario() -> int:
        listening = socket.create_server(("127.0.0.1", 0))  # connections wait in its backlog
        port = listening.getsockname()[1]
        # log_config=None: uvicorn's own would stop its records before caplog.
        server = Server(uvicorn.Config(long_poll_app, log_level="info", log_config=None))
        server.config.timeout_graceful_shutdown = GRACEFUL_SECONDS
        server.before_exit = _stop_slowly
        server.answer_waiting = answer
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        async with httpx.AsyncClient() as client:
            poll = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/", timeout=2))
            await polling.wait()
            server.handle_exit(signal.SIGINT, None)
            await asyncio.sleep(0.05)
            server.handle_exit(signal.SIGINT, None)  # impatient: at once
            await serving
            return (await poll).status_code

    with caplog.at_level(logging.INFO):
        assert asyncio.run(scenario()) == 200
    logged = caplog.text
    assert "Shutting down" in logged  # uvicorn's records do reach caplog
    assert "Exception in ASGI application" not in logged
    assert "timeout graceful shutdown exceeded" not in logged


def test_a_forced_exit_still_stops_when_answering_fails(caplog: pytest.LogCaptureFixture) -> None:
    """The hook failing must not keep the server up: a warning, then uvicorn's own exit."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def broken() -> None:
        raise RuntimeError("the emulator is gone")

    async def scenario() -> None:
        listening = socket.create_server(("127.0.0.1", 0))
        server = Server(uvicorn.Config(app, log_level="info", log_config=None))
        server.before_exit = _stop_slowly
        server.answer_waiting = broken
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        await asyncio.sleep(0.2)
        server.handle_exit(signal.SIGINT, None)
        await asyncio.sleep(0.05)
        server.handle_exit(signal.SIGINT, None)
        await asyncio.wait_for(serving, GRACEFUL_SECONDS * 2)  # not the 3 s of stop_slowly

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    assert "could not answer the open requests before stopping" in caplog.text
    assert "Shutting down" in caplog.text


def _serve_until_it_exits(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A ``satshare serve`` expected to refuse to start: its exit code and output."""
    return subprocess.run(  # noqa: S603 - our own CLI
        [*SATSHARE, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _api_keys(tmp_path: Path) -> list[tuple[int, bool]]:
    """(id, revoked) of every API key in the test's SQLite database."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "satshare.db")) as db:
        rows = db.execute("SELECT id, revoked_at IS NOT NULL FROM api_keys ORDER BY id")
        return [(int(key_id), bool(revoked)) for key_id, revoked in rows]


def test_a_second_serve_on_the_same_sqlite_database_is_refused(tmp_path: Path) -> None:
    """SQLite is one process's database: a second serve on it would revoke the running
    sandbox's admin key and mark that process's open invoices invalid."""
    env = _satshare_env(tmp_path)
    subprocess.run([*SATSHARE, "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    first = Serving(env, ready="Admin API key for this session")  # the banner: all started
    try:
        first.wait_ready()
        keys = _api_keys(tmp_path)
        assert keys and not keys[-1][1]  # the running sandbox's admin key
        second = _serve_until_it_exits(env)
        assert first.process.poll() is None  # still serving
    finally:
        code = first.stop()
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"satshare: another `satshare serve` (pid {first.process.pid}) is already running on the "
        f"SQLite database {tmp_path / 'satshare.db'}; SQLite serves one process: stop that "
        "one first, or use PostgreSQL (database.url) to run several"
    ]
    assert _api_keys(tmp_path) == keys  # nothing issued, nothing revoked
    assert code == 0


def test_a_bot_api_that_cannot_be_reached_is_one_line_and_changes_no_key(
    tmp_path: Path,
) -> None:
    env = _satshare_env(
        tmp_path,
        SATSHARE_TELEGRAM__TOKEN="123456:AAHk3J9dQp2Lr7Xw4Zt8Vb1Nm5Cy6Gf0Hsq",
        SATSHARE_TELEGRAM__API_BASE_URL="http://127.0.0.1:9",
    )
    subprocess.run([*SATSHARE, "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    done = _serve_until_it_exits(env)
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "Traceback" not in output  # the web server is stopped before the line, not cut off
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("satshare: cannot reach the Bot API at http://127.0.0.1:9 (")
    )
    assert _api_keys(tmp_path) == []  # the sandbox's key is issued only once all has started


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_a_port_out_of_range_is_refused_before_anything_starts(tmp_path: Path, port: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", port])
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output
    assert not (tmp_path / "satshare.db").exists()
