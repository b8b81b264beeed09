"""Operations endpoints (issue #11): /health is liveness without the database, /ready checks
the database, the schema and the job queue, /metrics counts what happened and reads the
backlogs at scrape time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import procrastinate
import pytest
from procrastinate.testing import InMemoryConnector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from typer.testing import CliRunner

from satshare import metrics
from satshare.api.app import create_app
from satshare.cli import app as cli
from satshare.container import build_container
from satshare.jobqueue import Job, JobName, Queue, register
from satshare.jobs import catalogue
from satshare.jobs.catalogue import measured
from satshare.jobs.inline import InlineJobs
from satshare.payouts.models import PayoutStatus
from tests.botkit import BotStack, close_bot_stack, open_bot_stack
from tests.conftest import (
    PG_URL,
    BTCPaySim,
    Stack,
    close_stack,
    make_settings,
    open_stack,
)
from tests.helpers import assert_problem, buy, create_user, invoice_status, wait_until
from tests.servers import free_port, start_server

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_health_ready_and_their_openapi(stack: Stack) -> None:
    async with stack.anonymous() as anon:
        health = await anon.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.headers["x-request-id"]
        ready = await anon.get("/ready", headers={"X-Request-ID": "probe-1"})
        assert ready.status_code == 200, ready.text
        assert ready.headers["x-request-id"] == "probe-1"  # a caller's id is kept
        assert ready.json() == {
            "status": "ready",
            "checks": {
                "database": "ok",
                "migrations": "ok",
                "jobs": "no job queue in this process",
            },
        }
        paths = (await anon.get("/openapi.json")).json()["paths"]
    assert "503" in paths["/ready"]["get"]["responses"]
    assert "401" in paths["/metrics"]["get"]["responses"]
    assert "200" in paths["/health"]["get"]["responses"]


async def test_ready_is_503_when_the_schema_is_not_at_head(stack: Stack) -> None:
    async with stack.db.transaction() as session:
        head = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        await session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        async with stack.anonymous() as anon:
            problem = assert_problem(await anon.get("/ready"), 503)
            health = await anon.get("/health")
    finally:
        async with stack.db.transaction() as session:
            await session.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )
    assert problem["checks"]["database"] == "ok"
    assert problem["checks"]["migrations"].startswith("schema at revision 0001")
    assert "satshare migrate" in problem["detail"]
    assert health.status_code == 200  # liveness does not depend on the schema


async def test_without_a_database_health_answers_and_ready_says_why(
    btcpay: BTCPaySim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="satshare.api.routes.ops")
    port = free_port()
    # Nothing listens on port 1: every connection is refused.
    settings = make_settings("postgresql://postgres@127.0.0.1:1/none", btcpay.url, port)
    container = build_container(settings)
    server = await start_server(create_app(container.api_services()), port=port)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            health = await client.get("/health")
            problem = assert_problem(await client.get("/ready"), 503)
            metrics = await client.get("/metrics")  # still answers: counters are in memory
    finally:
        await server.stop()
        await container.aclose()
    assert health.status_code == 200
    assert problem["checks"]["database"] == "the database did not answer"
    assert "migrations" not in problem["checks"]
    assert problem["detail"] == "not ready: database: the database did not answer"
    assert metrics.status_code == 200
    # The log says why in one line per probe, without a traceback: the database is down,
    # which is no bug.
    warnings = [r for r in caplog.records if r.name == "satshare.api.routes.ops"]
    ready_line = next(r for r in warnings if r.getMessage().startswith("readiness:"))
    assert ready_line.getMessage().startswith("readiness: the database did not answer (")
    assert "refused" in ready_line.getMessage().lower(), ready_line.getMessage()
    assert "\n" not in ready_line.getMessage()
    assert all(not r.exc_info for r in warnings)


def job_queue(stack: Stack) -> procrastinate.App:
    """The catalogue on a procrastinate queue, as on PostgreSQL, kept in memory so that the
    test runs on either database."""
    app = procrastinate.App(connector=InMemoryConnector())
    register(app, catalogue(stack.container, None))
    return app


@pytest.fixture
async def served_with_jobs(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The stack's app served again with a job queue handed to it, as serve does."""
    job_app = job_queue(stack)
    app = create_app(replace(stack.container.api_services(), job_queue=job_app.job_manager))
    async with job_app.open_async():
        await (
            job_app.tasks["satshare.housekeeping"]
            .configure(schedule_in={"seconds": 3600}, task_kwargs={"timestamp": 0})
            .defer_async()
        )
        server = await start_server(app)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                yield client
        finally:
            await server.stop()


async def test_the_job_queue_in_ready_and_metrics(served_with_jobs: httpx.AsyncClient) -> None:
    ready = await served_with_jobs.get("/ready")
    assert ready.json()["checks"]["jobs"] == "ok"
    found = await scrape(served_with_jobs)
    assert value(found, "satshare_job_queue_jobs", queue="upkeep", status="todo") == 1


@pytest.mark.skipif(PG_URL is None, reason="the job queue is PostgreSQL's")
async def test_serve_hands_its_postgresql_job_queue_to_ready(stack: Stack) -> None:
    """What ``serve`` does: ``api_services(job_queue=True)``; the queue answers once open."""
    queue = stack.container.job_queue
    assert queue is not None
    app = create_app(stack.container.api_services(job_queue=True))
    server = await start_server(app)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            closed = assert_problem(await client.get("/ready"), 503)
            async with queue.open_async():
                ready = await client.get("/ready")
    finally:
        await server.stop()
    assert closed["checks"]["jobs"] == "the job queue did not answer"
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["jobs"] == "ok"


async def test_an_unreachable_job_queue_is_not_ready(stack: Stack) -> None:
    # A PostgreSQL job queue on a port where nothing listens, never opened.
    unreachable = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo="postgresql://postgres@127.0.0.1:1/x")
    )
    app = create_app(replace(stack.container.api_services(), job_queue=unreachable.job_manager))
    server = await start_server(app)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            problem = assert_problem(await client.get("/ready"), 503)
    finally:
        await server.stop()
    assert problem["checks"]["jobs"] == "the job queue did not answer"
    assert problem["checks"]["database"] == "ok"


async def test_metrics_count_a_sale_and_read_the_backlogs(stack: Stack) -> None:
    async with stack.anonymous() as anon:
        before = await scrape(anon)
    affiliate = await create_user(stack.client, "affiliate")
    buyer = await create_user(stack.client, "buyer", referral_id=affiliate["referral_code"])
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    await stack.btcpay.emulator.wait_idle(timeout=10)
    async with stack.anonymous() as anon:
        after = await scrape(anon)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("satshare_settlements_total", rail="btcpay", outcome="settled") == 1
    # Every webhook the emulator delivered was timed; at least the settling one answered 200.
    assert grew("satshare_webhook_duration_seconds_count", provider="btcpay", status="200") >= 1
    # No bot runs here, so the buyer's and the affiliate's messages wait in the outbox.
    assert value(after, "satshare_outbox_backlog", status="pending") >= 2
    assert value(after, "satshare_outbox_lag_seconds") > 0
    for state in PayoutStatus:
        assert ("satshare_payouts", (("state", state.value),)) in after
    assert value(after, "satshare_payouts", state="paid") == 0
    assert value(after, "satshare_db_pool_connections", state="size") >= 1


async def test_metrics_token_is_required_when_set(database_url: str, btcpay: BTCPaySim) -> None:
    stack = await open_stack(database_url, btcpay, metrics={"token": METRICS_TOKEN})
    try:
        async with stack.anonymous() as anon:
            missing = assert_problem(await anon.get("/metrics"), 401)
            wrong = await anon.get("/metrics", headers={"Authorization": "Bearer nope"})
            right = await anon.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    finally:
        await close_stack(stack)
    assert "metrics.token" in missing["detail"]
    assert_problem(wrong, 401)
    assert right.status_code == 200
    assert "# TYPE satshare_settlements_total counter" in right.text


async def test_job_runs_are_counted_on_the_queue(stack: Stack) -> None:
    async with stack.anonymous() as anon:
        before = await scrape(anon)
    job_app = job_queue(stack)
    async with job_app.open_async():
        await (
            job_app.tasks["satshare.seal_ledger"]
            .configure(task_kwargs={"timestamp": 0})
            .defer_async()
        )
        # Runs what is due (this job) and returns.
        await job_app.run_worker_async(wait=False, install_signal_handlers=False, queues=["money"])
    with pytest.raises(RuntimeError), metrics.job_run("failing"):
        raise RuntimeError("a job that fails")
    async with stack.anonymous() as anon:
        after = await scrape(anon)
    runs = "satshare_job_runs_total"
    assert value(after, runs, task="seal_ledger", result="succeeded") >= (
        value(before, runs, task="seal_ledger", result="succeeded") + 1
    )
    assert value(after, runs, task="failing", result="failed") == (
        value(before, runs, task="failing", result="failed") + 1
    )
    assert value(after, "satshare_job_duration_seconds_count", task="seal_ledger") >= 1


async def test_job_runs_and_failures_are_counted_inline(stack: Stack) -> None:
    """SQLite's runner (serve without a queue) counts through the same catalogue entries."""
    runs = "satshare_job_runs_total"
    async with stack.anonymous() as anon:
        before = await scrape(anon)
    seal = next(j for j in catalogue(stack.container, None) if j.name == JobName.SEAL_LEDGER)

    async def fails() -> None:
        raise RuntimeError("a job that fails")

    failing = measured(Job(JobName.QUEUE_REMINDERS, Queue.TELEGRAM, 3600, fails))
    runner = asyncio.create_task(InlineJobs([seal, failing]).run())

    def grew(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], **labels: str) -> bool:
        return value(found, runs, **labels) > value(before, runs, **labels)

    async def counted() -> bool:
        async with stack.anonymous() as anon:
            found = await scrape(anon)
        return grew(found, task="seal_ledger", result="succeeded") and grew(
            found, task="queue_reminders", result="failed"
        )

    try:
        await wait_until(counted)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    """The bot in webhook mode: the emulator pushes every delivery, duplicates included (a
    long poll never sees an update again once its offset is confirmed)."""
    stack = await open_bot_stack(
        database_url, btcpay, telegram={"webhook_url": "https://x.invalid/"}
    )
    stack.telegram.webhook_url = f"{stack.url}/telegram/webhook"
    yield stack
    await close_bot_stack(stack)


async def test_bot_updates_outbox_and_telegram_errors_are_counted(bot: BotStack) -> None:
    async with httpx.AsyncClient(base_url=bot.url, timeout=30) as client:
        before = await scrape(client)

        async def grown(name: str, **labels: str) -> float:
            return value(await scrape(client), name, **labels) - value(before, name, **labels)

        alice = bot.new_user("alice")
        update_id = bot.telegram.user_sends(alice, "/start")
        await bot.wait_messages(alice, 1)
        bot.telegram.redeliver(update_id)

        async def duplicate_seen() -> bool:
            return await grown("satshare_bot_updates_total", result="duplicate") >= 1

        await wait_until(duplicate_seen)
        # Alice blocks the bot; the notice of Bob's sign-up through her link cannot reach her.
        code = (await bot.user_row(alice)).referral_code
        bot.telegram.users[alice].blocked_bot = True
        bob = bot.new_user("bob")
        await bot.say(bob, f"/start ref_{code}")
        await bot.notify()
        after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("satshare_bot_updates_total", result="duplicate") == 1
    assert grew("satshare_bot_updates_total", result="handled") == 2  # Alice's and Bob's /start
    assert grew("satshare_telegram_errors_total", code="403") == 1
    assert grew("satshare_outbox_messages_total", result="skipped") == 1


def test_a_worker_serves_its_own_metrics() -> None:
    """``satshare worker`` has no web server: ``metrics.worker_port`` serves its counters."""
    port = free_port()
    stop = metrics.serve_http("127.0.0.1", port)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    finally:
        stop()
    assert answer.status_code == 200
    assert "# TYPE satshare_job_runs_total counter" in answer.text
    with pytest.raises(httpx.TransportError):  # stopped: nothing listens any more
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


@pytest.mark.skipif(PG_URL is None, reason="satshare worker needs PostgreSQL")
def test_a_worker_whose_metrics_port_is_taken_says_so(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for name, setting in {
            "SATSHARE_DATABASE__URL": database_url,
            "SATSHARE_BTCPAY__URL": "http://127.0.0.1:1",
            # Random, so that the configuration's placeholder checks pass.
            "SATSHARE_BTCPAY__API_KEY": secrets.token_hex(20),
            "SATSHARE_BTCPAY__STORE_ID": "store",
            "SATSHARE_BTCPAY__WEBHOOK_SECRET": secrets.token_hex(20),
            "SATSHARE_METRICS__WORKER_PORT": str(port),
        }.items():
            monkeypatch.setenv(name, setting)
        result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 1, result.output
    assert f"cannot serve the worker's metrics on 127.0.0.1:{port}" in result.stderr
    assert "metrics.worker_port" in result.stderr
    assert "Traceback" not in result.output
