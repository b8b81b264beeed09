"""The sandbox survives restarts on the same database (issue #10): old chat users are still
listed and usable, new users are new people, and the bot answers every new message (the
emulator's update ids continue after the ones the bot remembers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Served:
    """`satshare serve` in the sandbox on a given SQLite file, until ``stop``."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "satshare", "serve", "--port", str(self.port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(180), "serve printed no banner"
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("Sandbox chat:"):
                self.ready.set()

    def stop(self) -> None:
        self.client.close()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def chat(self, telegram_id: int) -> dict[str, Any]:
        response = self.client.get(f"/sandbox/api/chat/{telegram_id}")
        assert response.status_code == 200, response.text
        chat: dict[str, Any] = response.json()
        return chat

    def answered(self, telegram_id: int, replies: int) -> dict[str, Any]:
        """Wait until the bot has sent ``replies`` messages to this user (it runs on its own)."""
        deadline = time.monotonic() + 60
        while True:
            chat = self.chat(telegram_id)
            if sum(m["from_bot"] for m in chat["messages"]) >= replies:
                return chat
            assert time.monotonic() < deadline, chat
            time.sleep(0.2)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    env["SATSHARE_DATABASE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'satshare.db'}"
    subprocess.run(
        [sys.executable, "-m", "satshare", "migrate"], env=env, check=True, capture_output=True
    )
    yield env


def test_old_users_stay_and_new_ones_are_new_after_restarts(
    env: dict[str, str], tmp_path: Path
) -> None:
    first = Served(env, tmp_path)
    try:
        ann = first.client.post("/sandbox/api/users", json={"name": "Ann"}).json()
        ann_user_id = first.answered(ann["id"], 1)["summary"]["user_id"]
    finally:
        first.stop()

    for restart in range(2):
        served = Served(env, tmp_path)
        try:
            listed = {u["id"] for u in served.client.get("/sandbox/api/users").json()}
            assert ann["id"] in listed
            newcomer = served.client.post(
                "/sandbox/api/users", json={"name": f"Bob{restart}"}
            ).json()
            assert newcomer["id"] not in listed  # a new person, not an old account
            summary = served.answered(newcomer["id"], 1)["summary"]
            assert summary["registered"] and summary["user_id"] != ann_user_id
            # Ann is still herself: her message is answered and her account is hers.
            before = sum(m["from_bot"] for m in served.chat(ann["id"])["messages"])
            sent = served.client.post(
                f"/sandbox/api/chat/{ann['id']}/send", json={"text": "/start"}
            )
            assert sent.status_code == 200, sent.text
            chat = served.answered(ann["id"], before + 1)
            assert chat["summary"]["user_id"] == ann_user_id
        finally:
            served.stop()
