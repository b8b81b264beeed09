"""Log lines (issue #11): text or JSON with the request, invoice and user ids known at the
time, and never a secret — checked on the formatter and on a real sandbox run with a bot."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from satshare import logs
from tests.conftest import Stack
from tests.helpers import buy, create_user, wait_until
from tests.servers import free_port

BOT_TOKEN = "7733570323:S9C7eKo2l3MSJG7xc6ivr1Dq132Bkl0Nw8s"
#: A bot token shape (also URL-encoded) and an API key shape, anywhere in a line.
RAW_TOKEN = re.compile(r"[0-9]{6,}(:|%3A)[A-Za-z0-9_-]{30,}", re.IGNORECASE)
API_KEY = re.compile(r"ss_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger sent to a buffer in JSON, as ``log_format: json`` does."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure("info", "json", secrets=["a-configured-secret-value"], stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_context_of_their_task(captured: io.StringIO) -> None:
    log = logging.getLogger("satshare.test")
    with logs.bound(request_id="r-1"):
        log.info("outside an invoice")
        with logs.bound(invoice_id="inv_1", user_id=7):
            log.warning("settling %s", "now")
    log.info("after the request")
    first, second, third = lines(captured)
    assert first["message"] == "outside an invoice"
    assert first["request_id"] == "r-1" and "invoice_id" not in first
    assert second == {
        "time": second["time"],
        "level": "WARNING",
        "logger": "satshare.test",
        "message": "settling now",
        "request_id": "r-1",
        "invoice_id": "inv_1",
        "user_id": 7,
    }
    assert "request_id" not in third


def test_secrets_never_reach_a_line(captured: io.StringIO) -> None:
    log = logging.getLogger("satshare.test")
    log.info("GET https://api.telegram.org/bot%s/getUpdates", BOT_TOKEN)
    log.info("encoded /bot%s/getMe", BOT_TOKEN.replace(":", "%3A"))
    log.info("key ss_%s used", "A" * 43)
    log.info("the secret is a-configured-secret-value")
    try:
        raise RuntimeError(f"token {BOT_TOKEN} refused")
    except RuntimeError:
        log.exception("failed")
    text = captured.getvalue()
    assert BOT_TOKEN not in text
    assert not RAW_TOKEN.search(text) and not API_KEY.search(text)
    assert "a-configured-secret-value" not in text
    found = lines(captured)
    assert [logs.REDACTED in str(line["message"]) for line in found] == [True] * 4 + [False]
    assert str(found[-1]["exc_info"]).endswith(f"RuntimeError: token {logs.REDACTED} refused")


def test_text_lines_show_the_context_at_the_end() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure("info", "text", stream=stream)
    try:
        with logs.bound(request_id="r-2", invoice_id="inv_2"):
            logging.getLogger("satshare.test").info("hello %s", BOT_TOKEN)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = stream.getvalue().strip()
    assert line.endswith("INFO satshare.test: hello <redacted> [request_id=r-2 invoice_id=inv_2]")


@pytest.mark.integration
@pytest.mark.slow
def test_a_sandbox_run_with_a_bot_logs_json_without_a_secret(tmp_path: Path) -> None:
    """`satshare serve` in the sandbox (its bot long-polls the Bot API emulator, whose URLs
    carry the token) at log level debug, in JSON: a user talks to the bot and buys, an API
    key is used; stderr (the log) is JSON lines with no bot token and no API key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    env["SATSHARE_DATABASE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'satshare.db'}"
    env["SATSHARE_LOG_FORMAT"] = "json"
    env["SATSHARE_LOG_LEVEL"] = "debug"
    satshare = [sys.executable, "-m", "satshare"]
    subprocess.run([*satshare, "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    created = subprocess.run(  # noqa: S603 - our own CLI
        [*satshare, "api-key", "create", "--name", "ops", "--scopes", "read"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    made_key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [*satshare, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner: list[str] = []
    log_lines: list[str] = []
    polling = threading.Event()

    def read_banner() -> None:
        assert process.stdout is not None
        banner.extend(process.stdout)

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log_lines.append(line)
            if "getUpdates" in line:
                polling.set()

    readers = [threading.Thread(target=f, daemon=True) for f in (read_banner, read_log)]
    for reader in readers:
        reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        assert polling.wait(120), "".join(log_lines)
        with httpx.Client(base_url=base, timeout=30) as client:
            user = client.post("/sandbox/api/users", json={"name": "Ann"}).json()
            telegram_id = user["id"]  # the page's new user has sent /start already
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                chat = client.get(f"/sandbox/api/chat/{telegram_id}").json()
                if chat.get("messages"):
                    break
                time.sleep(0.2)
            assert chat.get("messages"), chat
            keyed = client.get(
                "/api/v1/subscriptions/types", headers={"Authorization": f"Bearer {made_key}"}
            )
            assert keyed.status_code == 200
    finally:
        process.terminate()
        process.wait(60)
    for reader in readers:
        reader.join(10)
    sandbox_key = next(line.rsplit(" ", 1)[1].strip() for line in banner if "Admin API key" in line)
    text = "".join(log_lines)
    parsed = [json.loads(line) for line in log_lines if line.strip()]
    assert any(p.get("logger") == "uvicorn.access" for p in parsed)
    assert any("getUpdates" in str(p.get("message")) for p in parsed)  # the bot's calls
    assert any("telegram_user_id" in p for p in parsed)  # handling the user's update
    assert made_key not in text and sandbox_key not in text
    assert not RAW_TOKEN.search(text), RAW_TOKEN.search(text)
    assert not API_KEY.search(text)


async def test_a_settlement_line_names_the_request_invoice_and_buyer(
    stack: Stack, captured: io.StringIO
) -> None:
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])

    async def logged() -> bool:
        return any(
            str(line.get("message", "")).endswith("settled on btcpay") for line in lines(captured)
        )

    await wait_until(logged)
    line = next(p for p in lines(captured) if str(p.get("message")).endswith("settled on btcpay"))
    assert line["invoice_id"] == order["invoice"]["id"]
    assert line["user_id"] == buyer["user_id"]
    assert line["request_id"]  # the webhook's request


@pytest.mark.parametrize(
    ("error", "traceback"),
    [
        (ConnectionRefusedError("[Errno 111] Connect call failed"), False),  # a dependency down
        (KeyError("no such thing"), True),  # a bug: its traceback stays
    ],
    ids=["database-down", "bug"],
)
async def test_a_background_run_that_fails_says_why_in_one_line(
    caplog: pytest.LogCaptureFixture, error: Exception, traceback: bool
) -> None:
    """The outbox sender's and the other nudged runs' failures: one line naming the reason
    (the driver's first line), a traceback only for what is not an outage."""
    from satshare.background import CoalescingRunner

    async def work() -> int:
        raise error

    runner = CoalescingRunner(work, "sending the outbox")
    with caplog.at_level(logging.WARNING, logger="satshare.background"):
        runner.kick()
        await runner.aclose()
    [line] = [r for r in caplog.records if r.name == "satshare.background"]
    expected = f"sending the outbox failed; the periodic job will retry ({logs.error_line(error)})"
    assert line.getMessage() == expected
    assert "\n" not in line.getMessage()
    assert bool(line.exc_info) is traceback
