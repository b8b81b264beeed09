"""Idempotency keys survive a crash (issue: after kill -9 mid-burst, keys answered 409 "in
flight" for good, some with their effect committed). A request's last write commits together
with its stored answer, so after a crash a retry finds either nothing (it runs again once the
dead claim is older than the request timeout) or the committed answer (replayed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from satshare.db import Database
from satshare.idempotency.models import IdempotencyRecord
from satshare.users.models import User
from tests.conftest import PG_URL, Stack, truncate_all
from tests.servers import free_port
from tests.test_api import assert_problem

REQUEST_TIMEOUT = 4  # server.request_timeout_seconds for the subprocess: dead claims age fast
TAKEOVER_AFTER = REQUEST_TIMEOUT + 5 + 1  # + the takeover margin, + a second of slack
BURST = 200  # keyed POSTs in flight...
KILL_AFTER = 10  # ...and the server is killed once this many were answered


async def _stale_record(stack: Stack, key: str, body: bytes, *, effect: bool) -> None:
    """What a process killed mid-request leaves: a claimed key with no answer."""
    import hashlib

    api_key_id = await _admin_key_id(stack)
    digest = hashlib.sha256(b"\n".join([b"POST", b"/api/v1/users", b"", body])).hexdigest()
    long_ago = stack.container.clock.now() - timedelta(hours=1)
    async with stack.db.transaction() as session:
        session.add(
            IdempotencyRecord(
                api_key_id=api_key_id,
                key=key,
                method="POST",
                path="/api/v1/users",
                request_hash=digest,
                created_at=long_ago,
                claimed_at=long_ago,
                effect_committed_at=long_ago if effect else None,
            )
        )


async def _admin_key_id(stack: Stack) -> int:
    from satshare.apikeys import service as apikeys

    async with stack.db.reading() as session:
        key = await apikeys.authenticate(session, stack.admin_key)
    assert key is not None
    return key.id


async def test_a_dead_claim_with_nothing_committed_is_taken_over(stack: Stack) -> None:
    body = b'{"username": "late", "platform": "website", "external_id": "e-1"}'
    await _stale_record(stack, "k-dead", body, effect=False)
    headers = {"Idempotency-Key": "k-dead", "Content-Type": "application/json"}
    first = await stack.client.post("/api/v1/users", content=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await stack.client.post("/api/v1/users", content=body, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    async with stack.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_a_dead_claim_whose_effect_committed_is_never_run_again(stack: Stack) -> None:
    body = b'{"username": "half", "platform": "website", "external_id": "e-2"}'
    await _stale_record(stack, "k-half", body, effect=True)
    before = await stack.counts()
    answer = await stack.client.post(
        "/api/v1/users",
        content=body,
        headers={"Idempotency-Key": "k-half", "Content-Type": "application/json"},
    )
    assert assert_problem(answer, 409)["type"] == "/problems/idempotency-key-incomplete"
    assert await stack.counts() == before


async def test_a_live_claim_is_409_with_retry_after(stack: Stack) -> None:
    body = b'{"username": "busy", "platform": "website"}'
    await _stale_record(stack, "k-live", body, effect=False)
    async with stack.db.transaction() as session:  # claimed just now: its holder is alive
        record = (
            await session.execute(
                select(IdempotencyRecord).where(IdempotencyRecord.key == "k-live")
            )
        ).scalar_one()
        record.claimed_at = stack.container.clock.now()
    answer = await stack.client.post(
        "/api/v1/users",
        content=body,
        headers={"Idempotency-Key": "k-live", "Content-Type": "application/json"},
    )
    assert assert_problem(answer, 409)["type"] == "/problems/idempotency-key-in-flight"
    assert answer.headers["retry-after"] == "2"


async def test_the_answer_is_stored_in_the_effects_transaction(stack: Stack) -> None:
    """The user and the key's stored answer are committed together."""
    seen: list[tuple[int, int]] = []
    headers = {"Idempotency-Key": "atomic"}
    created = await stack.client.post(
        "/api/v1/users", json={"username": "a", "platform": "website"}, headers=headers
    )
    assert created.status_code == 201
    async with stack.db.reading() as session:
        record = (
            await session.execute(
                select(IdempotencyRecord).where(IdempotencyRecord.key == "atomic")
            )
        ).scalar_one()
        seen.append((record.status_code or 0, 1 if record.effect_committed_at else 0))
    assert seen == [(201, 1)]


@pytest.fixture
def serve_env(tmp_path: Path, migrated_template: str) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    if PG_URL:
        url = migrated_template
        asyncio.run(truncate_all(url))
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    env.update(
        SATSHARE_DATABASE__URL=url,
        SATSHARE_SERVER__REQUEST_TIMEOUT_SECONDS=str(REQUEST_TIMEOUT),
        SATSHARE_SANDBOX__PRINT_API_KEY="false",
        SATSHARE_API__RATE_LIMIT__ENABLED="false",  # the burst is one key: not what is tested
    )
    yield env


def _satshare(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "satshare", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


@contextlib.contextmanager
def _serving(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "satshare", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        else:
            raise AssertionError("serve did not start: " + log.read_text()[-3000:])
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


@pytest.mark.slow
def test_kill_9_mid_burst_every_key_ends_with_one_effect(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    _satshare(serve_env, "migrate")
    key = _satshare(serve_env, "api-key", "create", "--name", "t", "--scopes", "admin")
    token = key.rstrip("\n").split("\n")[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    bodies = {
        f"burst-{n}": {"username": f"u{n}", "platform": "website", "external_id": f"x-{n}"}
        for n in range(BURST)
    }

    async def post(client: httpx.AsyncClient, name: str) -> httpx.Response | None:
        try:
            return await client.post(
                "/api/v1/users", json=bodies[name], headers={**auth, "Idempotency-Key": name}
            )
        except httpx.HTTPError:
            return None  # the server died under it

    async def burst_and_kill(process: subprocess.Popen[bytes]) -> dict[str, httpx.Response]:
        answered: dict[str, httpx.Response] = {}
        async with httpx.AsyncClient(
            base_url=base, timeout=30, limits=httpx.Limits(max_connections=100)
        ) as client:
            enough = asyncio.Event()
            tasks = {name: asyncio.create_task(post(client, name)) for name in bodies}
            for task in tasks.values():
                task.add_done_callback(
                    lambda _: (
                        enough.set()
                        if sum(t.done() for t in tasks.values()) >= KILL_AFTER
                        else None
                    )
                )
            await enough.wait()
            os.kill(process.pid, signal.SIGKILL)  # mid-burst: some done, some half-way
            for name, task in tasks.items():
                reply = await task
                if reply is not None:
                    answered[name] = reply
        return answered

    log = tmp_path / "serve.log"
    with _serving(serve_env, port, log) as process:
        answered = asyncio.run(burst_and_kill(process))
        process.wait(timeout=30)
    assert KILL_AFTER <= len(answered) < len(bodies), len(answered)
    # Before the kill, a request is either done (201) or was stopped at the request timeout
    # with nothing saved (503; a loaded machine does that to a burst of 200).
    for reply in answered.values():
        assert reply.status_code == 201 or reply.json()["detail"].endswith(
            "nothing of it was saved: send it again"
        ), reply.text
    answered = {name: r for name, r in answered.items() if r.status_code == 201}
    killed_at = time.monotonic()

    async def retry_all() -> dict[str, httpx.Response]:
        """As a client does: a 503 (stopped at the request timeout, nothing saved) or a 409
        in-flight is sent again after a moment; every other answer is final."""
        final: dict[str, httpx.Response] = {}
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(20):
                waiting = [name for name in bodies if name not in final]
                if not waiting:
                    break
                replies = await asyncio.gather(*(post(client, name) for name in waiting))
                for name, reply in zip(waiting, replies, strict=True):
                    retry = (
                        reply is None
                        or reply.status_code == 503
                        or (
                            reply.status_code == 409
                            and reply.json()["type"] == "/problems/idempotency-key-in-flight"
                        )
                    )
                    if not retry:
                        final[name] = reply
                await asyncio.sleep(1)
        return final

    with _serving(serve_env, port, log):
        time.sleep(max(0.0, TAKEOVER_AFTER - (time.monotonic() - killed_at)))
        retried = asyncio.run(retry_all())
    assert len(retried) == len(bodies)
    statuses = {name: r.status_code for name, r in retried.items()}
    assert set(statuses.values()) == {201}, {
        name: retried[name].text for name, code in statuses.items() if code != 201
    }
    for name, first in answered.items():  # what was answered before the crash is replayed
        assert retried[name].json() == first.json()
        assert retried[name].headers.get("idempotent-replayed") == "true"

    async def users() -> list[str]:
        db = Database(serve_env["SATSHARE_DATABASE__URL"])
        try:
            async with db.reading() as session:
                rows = await session.execute(select(User.external_id))
                return sorted(str(x) for x in rows.scalars())
        finally:
            await db.dispose()

    assert asyncio.run(users()) == sorted(f"x-{n}" for n in range(BURST))  # each exactly once


async def test_a_keyed_request_stopped_at_the_timeout_saves_nothing(stack: Stack) -> None:
    """A keyed request is stopped at server.request_timeout_seconds: 503, nothing of it kept,
    the key freed at once, and the same request with the same key then succeeds once."""
    stack.container.settings.server.request_timeout_seconds = 2
    buyer = (
        await stack.client.post("/api/v1/users", json={"username": "slow", "platform": "website"})
    ).json()
    body = {"user_id": buyer["user_id"], "subscription_type": "monthly"}
    headers = {"Idempotency-Key": "slow-order"}
    stack.btcpay.emulator.faults.create_invoice.delay = 3  # BTCPay slower than our timeout
    before = await stack.counts()
    stopped = await stack.client.post("/api/v1/subscriptions", json=body, headers=headers)
    assert assert_problem(stopped, 503)["detail"].endswith("nothing of it was saved: send it again")
    after = await stack.counts()
    assert after == before
    stack.btcpay.emulator.faults.create_invoice.delay = 0
    done = await stack.client.post("/api/v1/subscriptions", json=body, headers=headers)
    assert done.status_code == 201, done.text
    replay = await stack.client.post("/api/v1/subscriptions", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["invoice"]["id"] == done.json()["invoice"]["id"]
