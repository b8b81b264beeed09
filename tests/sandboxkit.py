"""SatShare in sandbox mode on a real loopback port (the BTCPay and Telegram emulators
mounted inside it), optionally with the bot running against the Telegram emulator: the
fixtures the sandbox and page tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from satshare.api.app import create_app
from satshare.cli import SANDBOX_PLANS
from satshare.config import Settings
from satshare.container import Container, build_container, prepare
from satshare.ledger.verify import verify_ledger
from satshare.sandbox import SANDBOX_TELEGRAM_PATH, issue_sandbox_key
from tests.helpers import wait_until
from tests.servers import RunningServer, free_port, start_server


@dataclass
class Sandbox:
    container: Container
    server: RunningServer
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.server.url


async def open_sandbox(database_url: str, **sections: Any) -> Sandbox:
    port = free_port()
    settings = Settings(
        database={"url": database_url},
        server={"host": "127.0.0.1", "port": port},
        plans=sections.pop("plans", [p.model_dump() for p in SANDBOX_PLANS]),
        **sections,
    )
    assert settings.sandbox_mode
    container = build_container(settings)
    await prepare(container)
    server = await start_server(create_app(container.api_services()), port=port)
    key = await issue_sandbox_key(container.db, container.clock)
    client = httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    return Sandbox(container, server, client)


async def close_sandbox(sandbox: Sandbox) -> None:
    await sandbox.client.aclose()
    await sandbox.server.stop()
    await sandbox.container.sealer.flush()
    async with sandbox.container.db.reading() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems
    await sandbox.container.aclose()


@pytest.fixture
async def sandbox(database_url: str) -> AsyncIterator[Sandbox]:
    running = await open_sandbox(database_url)
    yield running
    await close_sandbox(running)


@pytest.fixture
async def sandbox_with_bot(sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    from satshare.bot.app import build_runtime, start_bot, stop_bot

    container = sandbox.container
    assert container.sandbox is not None and container.sandbox.telegram is not None
    runtime = build_runtime(
        container.bot_services(),
        token=container.telegram_token,
        api_base_url=sandbox.server.url + SANDBOX_TELEGRAM_PATH,
    )
    dispatcher = await start_bot(runtime)
    yield sandbox
    await stop_bot(runtime, dispatcher)


async def pay_in_sandbox(sandbox: Sandbox, invoice_id: str) -> None:
    """Pay an invoice with the checkout page's sandbox button and wait until it settles."""
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.url) as anonymous:
        assert (await anonymous.post(f"/pay/{invoice_id}/simulate")).status_code == 200

        async def settled() -> bool:
            status = (await anonymous.get(f"/pay/{invoice_id}/status")).json()
            return bool(status["status"] == "settled")

        await wait_until(settled, timeout=15)
