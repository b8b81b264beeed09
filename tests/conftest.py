"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when
SATSHARE_TEST_DATABASE_URL is set), the BTCPay emulator and SatShare itself on real
loopback HTTP, and an admin API client. Every test that uses the stack ends by verifying
the ledger: chain intact, every entry balanced, balances equal to their postings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from satshare import migrate
from satshare.api.app import create_app
from satshare.apikeys import service as apikeys
from satshare.clock import Clock, SystemClock
from satshare.config import Settings
from satshare.container import Container, build_container, prepare
from satshare.db import Database, normalise_url
from satshare.ledger.verify import verify_ledger
from satshare.models import Base
from satshare.reports.recompute import check as check_figures
from satshare.sim.btcpay import BTCPayEmulator, build_app
from tests.lightningkit import lightning  # noqa: F401 - a fixture for payout tests
from tests.sandboxkit import sandbox, sandbox_with_bot  # noqa: F401 - sandbox-mode fixtures
from tests.servers import RunningServer, free_port, start_server

PG_URL = os.environ.get("SATSHARE_TEST_DATABASE_URL") or None
STORE_ID = "test-store"
BTCPAY_KEY = "test-btcpay-api-key"
WEBHOOK_SECRET = "test-webhook-secret-0123456789"

PLANS: list[dict[str, Any]] = [
    {
        "id": "monthly",
        "title": "Premium, 30 days",
        "description": "The private channel for a month",
        "price_sats": 50_000,
        "duration_days": 30,
        "channels": [-1001000000001],
    },
    {
        "id": "yearly",
        "title": "Premium, 365 days",
        "description": "",
        "price_sats": 500_001,
        "duration_days": 365,
        "channels": [-1001000000001, -1001000000002],
    },
]


def pytest_report_header() -> str:
    if PG_URL:
        shown = make_url(PG_URL).render_as_string(hide_password=True)
        return f"satshare database: PostgreSQL ({shown})"
    return "satshare database: SQLite (set SATSHARE_TEST_DATABASE_URL to run on PostgreSQL)"


#: Fixtures that start a database or a server: a test that uses any of them (directly or
#: through another fixture) is an integration test, left out of `make test-fast`. A test that
#: starts a server of its own (an emulator on loopback) carries the mark itself.
INTEGRATION_FIXTURES = frozenset(
    {"migrated_template", "database_url", "stack", "btcpay", "lightning"}
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Never report success having run nothing (judged once, by the xdist controller).
    if hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    passed = len(reporter.stats.get("passed", [])) if reporter else 0
    if exitstatus == 0 and passed == 0 and not session.config.option.collectonly:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED


async def _reset_postgres(url: str) -> None:
    name = make_url(url).database or ""
    if "test" not in name:
        raise RuntimeError(
            f"refusing to drop the schema of database {name!r}: its name must contain 'test'"
        )
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await migrate.upgrade(db)
    finally:
        await db.dispose()


def worker_database_url(base: str, worker: str) -> str:
    """Each pytest-xdist worker gets its own PostgreSQL database next to the given one."""
    if worker in ("master", ""):
        return base
    url = make_url(base)
    return url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)


async def _create_database(url: str) -> None:
    parsed = make_url(url)
    admin = Database(parsed.set(database="postgres").render_as_string(hide_password=False))
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            exists = await conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            )
            if exists.first() is None:
                await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    """SQLite: a migrated file copied per test. PostgreSQL: the schema, migrated once (one
    database per xdist worker)."""
    if PG_URL:
        url = worker_database_url(normalise_url(PG_URL), worker_id)
        if url != normalise_url(PG_URL):
            asyncio.run(_create_database(url))
        asyncio.run(_reset_postgres(url))
        return url
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def build() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(build())
    return str(path)


async def truncate_all(url: str) -> None:
    """Empty every table of the shared PostgreSQL test database."""
    db = Database(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    try:
        async with db.engine.begin() as conn:
            # The ledger tables refuse TRUNCATE; as superuser the harness may skip that guard.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()


@pytest.fixture
def no_satshare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SATSHARE_ variable of the shell running the tests (the test database's URL kept)
    and an empty working directory (no ./satshare.yaml): a test's configuration is what it
    sets itself."""
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def database_url(migrated_template: str, tmp_path: Path) -> str:
    if PG_URL:
        await truncate_all(migrated_template)
        return migrated_template
    target = tmp_path / "satshare.db"
    shutil.copyfile(migrated_template, target)
    return f"sqlite+aiosqlite:///{target}"


@dataclass
class BTCPaySim:
    emulator: BTCPayEmulator
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    async def control(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            response = await client.request(method, path, **kwargs)
            response.raise_for_status()
            return response.json()

    async def pay(self, provider_invoice_id: str, **body: Any) -> Any:
        return await self.control("POST", f"/_sim/invoices/{provider_invoice_id}/pay", json=body)


@pytest.fixture
async def btcpay() -> AsyncIterator[BTCPaySim]:
    emulator = BTCPayEmulator(api_key=BTCPAY_KEY, store_id=STORE_ID, retry_delays=(0.05, 0.1, 0.2))
    server = await start_server(build_app(emulator))
    emulator.base_url = server.url
    yield BTCPaySim(emulator=emulator, server=server)
    await server.stop()
    await emulator.aclose()


def make_settings(database_url: str, btcpay_url: str, port: int, **overrides: Any) -> Settings:
    sections: dict[str, Any] = {
        "database": {"url": database_url},
        "server": {"host": "127.0.0.1", "port": port},
        "btcpay": {
            "url": btcpay_url,
            "api_key": BTCPAY_KEY,
            "store_id": STORE_ID,
            "webhook_secret": WEBHOOK_SECRET,
        },
        "plans": PLANS,
        # The suite's bursts would trip the API's rate limits: the tests of the limits
        # (test_rate_limits.py) turn them on with their own numbers.
        "api": {"rate_limit": {"enabled": False}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(sections.get(key), dict):
            sections[key] = {**sections[key], **value}
        else:
            sections[key] = value
    return Settings(**sections)


@dataclass
class Stack:
    container: Container
    server: RunningServer
    btcpay: BTCPaySim
    client: httpx.AsyncClient
    admin_key: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def db(self) -> Database:
        return self.container.db

    async def key(self, *scopes: str) -> str:
        async with self.db.transaction() as session:
            issued = await apikeys.create(session, "test", scopes, self.container.clock.now())
        return issued.plaintext

    def anonymous(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)

    async def counts(self) -> dict[str, int]:
        """Row counts of every table: for asserting that bad input changed nothing.

        Waits first for the emulator's own webhook deliveries and the ledger sealer, which
        would otherwise land in the middle of the comparison."""
        with contextlib.suppress(TimeoutError):
            await self.btcpay.emulator.wait_idle(timeout=30)
        # The sealer moves entries from the seal queue into the chain in the background.
        await self.container.sealer.flush()
        result = {}
        async with self.db.reading() as session:
            for table in Base.metadata.sorted_tables:
                result[table.name] = (
                    await session.execute(select(func.count()).select_from(table))
                ).scalar_one()
        return result


async def open_stack(
    database_url: str, btcpay: BTCPaySim, clock: Clock | None = None, **overrides: Any
) -> Stack:
    port = free_port()
    settings = make_settings(database_url, btcpay.url, port, **overrides)
    container = build_container(settings, clock=clock or SystemClock())
    await prepare(container)
    server = await start_server(create_app(container.api_services()), port=port)
    btcpay.emulator.add_webhook(STORE_ID, f"{server.url}/api/v1/webhooks/btcpay", WEBHOOK_SECRET)
    async with container.db.transaction() as session:
        issued = await apikeys.create(session, "test-admin", ("admin",), container.clock.now())
    client = httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {issued.plaintext}"},
        timeout=60,
        limits=httpx.Limits(max_connections=200),
    )
    return Stack(container, server, btcpay, client, issued.plaintext)


async def close_stack(stack: Stack, *, verify: bool = True) -> None:
    with contextlib.suppress(TimeoutError):
        await stack.btcpay.emulator.wait_idle(timeout=5)
    await stack.client.aclose()
    await stack.server.stop()
    # The payout runner may be writing an entry right now: let it finish before the sealer's
    # last flush, or that entry would be left unsealed for the check below.
    await stack.container.payout_runner.aclose()
    if verify:
        await stack.container.sealer.flush()
        async with stack.db.reading() as session:
            report = await verify_ledger(session)
        assert report.ok, report.problems
        assert report.unsealed == 0
        # The ledger's figures (#15) equal their recomputation from the ledger, after
        # whatever the test did.
        async with stack.db.reading() as session:
            figures = await check_figures(session, stack.container.clock.now(), months=False)
        assert figures.ok, figures.differences
    await stack.container.aclose()


@pytest.fixture
async def stack(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[Stack]:
    running = await open_stack(database_url, btcpay)
    yield running
    await close_stack(running)
