"""API rate limits (#14): per API key and per client IP, counted by the ``limits`` library
(in memory with SQLite, in the database with PostgreSQL, in Redis with redis.url); 429
problem+json with Retry-After and the IETF RateLimit fields; processor webhooks exempt."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from limits.aio.storage import MemoryStorage, RedisStorage
from pydantic import ValidationError

from satshare.api.app import create_app
from satshare.config import Settings
from satshare.container import build_container, prepare
from satshare.db import Database
from satshare.ratelimits.service import RateLimiter
from satshare.ratelimits.storage import DatabaseStorage
from tests.browser import chromium
from tests.conftest import PG_URL, BTCPaySim, Stack, close_stack, make_settings, open_stack
from tests.helpers import assert_problem
from tests.servers import free_port, start_server

LIMITED = {"api": {"rate_limit": {"per_key": "5/hour", "per_ip": "8/hour", "login": "3/hour"}}}


@pytest.fixture
async def limited(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[Stack]:
    running = await open_stack(database_url, btcpay, **LIMITED)
    yield running
    await close_stack(running)


def test_the_defaults_are_the_issues_numbers_and_a_bad_rate_is_named() -> None:
    limits = Settings().api.rate_limit
    assert limits.enabled
    limiter = RateLimiter(
        MemoryStorage(), per_key=limits.per_key, per_ip=limits.per_ip, login=limits.login
    )
    assert (limiter.per_key.quota, limiter.per_key.window_seconds) == (100, 10)
    assert (limiter.per_ip.quota, limiter.per_ip.window_seconds) == (300, 10)
    assert limiter.login.quota < limiter.per_key.quota
    with pytest.raises(ValidationError, match="is not a rate; write it as COUNT/PERIOD"):
        Settings(api={"rate_limit": {"per_key": "lots"}})
    with pytest.raises(ValidationError, match="redis:// or rediss://"):
        Settings(redis={"url": "http://cache:6379"})


async def test_a_burst_past_the_key_limit_gets_429_with_retry_after_and_ratelimit_fields(
    database_url: str, btcpay: BTCPaySim
) -> None:
    stack = await open_stack(
        database_url,
        btcpay,
        api={"rate_limit": {"per_key": "100/hour", "per_ip": "1000/hour"}},
    )
    in_flight = asyncio.Semaphore(20)  # a burst, but no more connections than a client keeps

    async def get() -> httpx.Response:
        async with in_flight:
            return await stack.client.get("/api/v1/users")

    try:
        answers = await asyncio.gather(*(get() for _ in range(300)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(200) == 100 and statuses.count(429) == 200
        passed = next(a for a in answers if a.status_code == 200)
        assert '"per-key";q=100;w=3600' in passed.headers["RateLimit-Policy"]
        assert '"per-ip";q=1000;w=3600' in passed.headers["RateLimit-Policy"]
        assert passed.headers["RateLimit"].startswith('"per-key";r=')
        refused = next(a for a in answers if a.status_code == 429)
        problem = assert_problem(refused, 429)
        assert problem["type"] == "/problems/rate-limited" and problem["limit"] == "per-key"
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        assert '"per-key";r=0;t=' in refused.headers["RateLimit"]
    finally:
        await close_stack(stack)


async def test_per_ip_across_keys_processor_webhooks_exempt_and_login_stricter(
    limited: Stack,
) -> None:
    stack = limited
    other = await stack.key("read")
    first = [await stack.client.get("/api/v1/subscriptions/types") for _ in range(6)]
    assert [a.status_code for a in first] == [200] * 5 + [429]
    assert first[-1].json()["limit"] == "per-key"
    async with stack.anonymous() as client:
        client.headers["Authorization"] = f"Bearer {other}"
        second = [await client.get("/api/v1/subscriptions/types") for _ in range(4)]
        assert [a.status_code for a in second] == [200] * 3 + [429]
        assert second[-1].json()["limit"] == "per-ip"
        client.headers.pop("Authorization")
        assert_problem(await client.get("/health"), 429)
        # Processor webhooks are verified by their signature, never turned away here.
        webhook = await client.post("/api/v1/webhooks/btcpay", content=b"{}")
        assert webhook.status_code != 429 and webhook.status_code < 500
    # The admin panel's login has its own, stricter limit (the panel may not exist yet).
    async with stack.anonymous() as client:
        logins = [await client.post("/admin/login", data={"password": "x"}) for _ in range(4)]
        assert [a.status_code == 429 for a in logins] == [False, False, False, True]
        assert logins[-1].json()["limit"] == "login"


async def test_database_counters_are_shared_by_every_process(database_url: str) -> None:
    """Two limiters over two connections to one database (two processes) count together."""
    first, second = Database(database_url), Database(database_url)
    try:
        limiters = [
            RateLimiter(DatabaseStorage(db), per_key="5/hour", per_ip="100/hour", login="1/hour")
            for db in (first, second)
        ]
        key = "ss_" + secrets.token_hex(8)
        verdicts = [
            await limiters[n % 2].check(api_key=key, client_ip="192.0.2.1") for n in range(7)
        ]
        assert [v.allowed for v in verdicts] == [True] * 5 + [False, False]
        assert {v.refused_by for v in verdicts[5:]} == {"per-key"}
        assert await limiters[0].storage.check()
        # Concurrent hits never let more through than the limit.
        other = "ss_" + secrets.token_hex(8)
        burst = await asyncio.gather(
            *(limiters[n % 2].check(api_key=other, client_ip="192.0.2.2") for n in range(12))
        )
        assert sum(v.allowed for v in burst) == 5
    finally:
        await first.dispose()
        await second.dispose()


@pytest.mark.skipif(not PG_URL, reason="several processes share counters on PostgreSQL")
async def test_two_servers_on_one_postgresql_share_the_limits(
    limited: Stack, btcpay: BTCPaySim
) -> None:
    port = free_port()
    settings = make_settings(limited.db.url, btcpay.url, port, **LIMITED)
    container = build_container(settings)
    await prepare(container)
    server = await start_server(create_app(container.api_services()), port=port)
    try:
        headers = {"Authorization": limited.client.headers["Authorization"]}
        async with httpx.AsyncClient(timeout=30, base_url=server.url, headers=headers) as second:
            statuses = []
            for n in range(6):
                client: Any = limited.client if n % 2 else second
                statuses.append((await client.get("/api/v1/subscriptions/types")).status_code)
        assert statuses == [200] * 5 + [429]
    finally:
        await server.stop()
        await container.aclose()


def _redis_running() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.skipif(not _redis_running(), reason="no Redis on 127.0.0.1:6379")
async def test_redis_counters_are_shared_by_every_process() -> None:
    limiters = [
        RateLimiter(
            RedisStorage("async+redis://127.0.0.1:6379/0", implementation="redispy"),
            per_key="3/hour",
            per_ip="100/hour",
            login="1/hour",
        )
        for _ in range(2)
    ]
    key, ip = "ss_" + secrets.token_hex(8), f"test-{secrets.token_hex(6)}"
    verdicts = [await limiters[n % 2].check(api_key=key, client_ip=ip) for n in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[-1].retry_after >= 1


async def test_a_storage_that_is_down_lets_requests_through_with_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis down: the API keeps answering, and the log says why in one line per request
    (a traceback on every request buried the reason)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    limiter = RateLimiter(
        RedisStorage(f"async+redis://127.0.0.1:{closed}/0", implementation="redispy"),
        per_key="1/hour",
        per_ip="1/hour",
        login="1/hour",
    )
    with caplog.at_level(logging.WARNING, logger="satshare.ratelimits.service"):
        verdicts = [await limiter.check(api_key=None, client_ip="192.0.2.9") for _ in range(2)]
    assert all(v.allowed for v in verdicts)
    lines = [r for r in caplog.records if r.name == "satshare.ratelimits.service"]
    assert len(lines) == 2
    for line in lines:
        message = line.getMessage()
        assert message.startswith("rate limit storage failed; the request is let through (")
        assert str(closed) in message and "\n" not in message
        assert not line.exc_info


async def test_the_openapi_documents_429_with_its_headers(stack: Stack) -> None:
    spec: dict[str, Any] = (await stack.client.get("/openapi.json")).json()
    users = spec["paths"]["/api/v1/users"]["get"]["responses"]["429"]
    assert set(users["headers"]) == {"Retry-After", "RateLimit", "RateLimit-Policy"}
    assert "rate-limited" in users["content"]["application/problem+json"]["example"]["type"]
    assert "429" not in spec["paths"]["/api/v1/webhooks/{provider}"]["post"]["responses"]
    # The platform guard on every router reads the key without marking public operations.
    assert "security" not in spec["paths"]["/health"]["get"]
    assert "security" not in spec["paths"]["/api/v1/webhooks/{provider}"]["post"]


@pytest.mark.browser
async def test_a_browser_over_the_limit_gets_a_page_in_its_language(
    database_url: str, btcpay: BTCPaySim
) -> None:
    shots = os.environ.get("SATSHARE_SCREENSHOTS")  # a directory to keep the screenshots in
    stack = await open_stack(
        database_url, btcpay, api={"rate_limit": {"per_ip": "2/hour", "per_key": "9/hour"}}
    )
    try:
        async with chromium() as browser:
            for language, words in (("en", "Too many requests"), ("ru", "Слишком много")):
                context = await browser.new_context(locale=language)
                page = await context.new_page()
                for _ in range(2):
                    await page.goto(f"{stack.url}/transparency")
                answer = await page.goto(f"{stack.url}/transparency")
                assert answer is not None and answer.status == 429
                assert int(answer.headers["retry-after"]) >= 1
                assert words in await page.inner_text("h1")
                assert any(c.isdigit() for c in await page.inner_text("#wait"))
                for width in (1280, 390):
                    await page.set_viewport_size({"width": width, "height": 800})
                    where = os.path.join(shots, f"429-{language}-{width}.png") if shots else None
                    picture = await page.screenshot(path=where)
                    assert picture.startswith(b"\x89PNG")
                await context.close()
                await stack.container.rate_limiter.storage.reset()  # type: ignore[union-attr]
        # The API answers scripts with problem+json, whatever they accept.
        async with stack.anonymous() as client:
            for _ in range(3):
                answer = await client.get("/api/v1/transparency", headers={"accept": "text/html"})
            assert_problem(answer, 429)
    finally:
        await close_stack(stack)
