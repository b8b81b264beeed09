"""``server.workers: 2`` (issue #15): one ``satshare serve`` command, two processes answering
on one port, on PostgreSQL. Both answer; a payment notified many times over, to both,
settles once; the bot is polled by one of them; a worker that dies is started again; Ctrl+C
stops them all without a traceback. (SQLite and the sandbox refuse more than one worker:
tests/test_config.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text

from satshare.db import Database
from satshare.sim.loadclient import Request, send_all
from tests.conftest import PG_URL
from tests.helpers import signed
from tests.processkit import (
    LEADER_LINE,
    Emulators,
    Process,
    empty_database_with_admin_key,
    eventually,
)
from tests.servers import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(PG_URL is None, reason="server.workers needs PostgreSQL"),
]


@pytest.fixture
async def emulators() -> Any:
    running = Emulators()
    await running.start()
    yield running
    await running.stop()


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _pids(url: str, tries: int = 200) -> set[int]:
    """The processes that answer ``/health`` on ``url``, each asked on a new connection
    (the kernel gives each connection to one of them)."""
    seen: set[int] = set()
    for _ in range(tries):
        async with httpx.AsyncClient(timeout=30) as fresh:
            seen.add((await fresh.get(f"{url}/health")).json()["pid"])
        if len(seen) >= 2:
            break
    return seen


async def test_two_workers_answer_on_one_port_and_settle_once(
    migrated_template: str, tmp_path: Path, emulators: Emulators
) -> None:
    url = migrated_template
    admin_key = await empty_database_with_admin_key(url, "workers")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    emulators.btcpay.add_webhook(
        emulators.store_id, f"{base}/api/v1/webhooks/btcpay", emulators.webhook_secret
    )
    config = {
        "database": {"url": url},
        "server": {"port": port, "workers": 2},
        "btcpay": {
            "url": emulators.servers[0].url,
            "api_key": emulators.api_key,
            "store_id": emulators.store_id,
            "webhook_secret": emulators.webhook_secret,
        },
        "telegram": {"token": emulators.token, "api_base_url": emulators.servers[1].url},
        "payouts": {"provider": "manual"},
        "plans": [{"id": "monthly", "title": "M", "price_sats": 50_000, "duration_days": 30}],
    }
    config_path = tmp_path / "satshare.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    env["SATSHARE_CONFIG"] = str(config_path)
    serve = Process("serve", ["serve"], env, tmp_path / "serve.log")
    try:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
        ) as client:

            async def answers() -> bool:
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answers, "serve answering", seconds=300)
            first = serve.popen.pid
            pids = await eventually(lambda: _pids(base), "both workers answering", 120)
            assert len(pids) == 2, pids
            assert first in pids
            (other,) = pids - {first}
            assert _parent_of(other) == first  # started by serve, on its socket

            # One of the two polls Telegram (the advisory lock), not both.
            await eventually(lambda: LEADER_LINE in serve.output(), "a poller")

            buyer = await client.post("/api/v1/users", json={"username": "b", "platform": "api"})
            order = await client.post(
                "/api/v1/subscriptions",
                json={"user_id": buyer.json()["user_id"], "subscription_type": "monthly"},
            )
            assert order.status_code == 201, order.text
            invoice = order.json()["invoice"]["provider_invoice_id"]
            emulators.btcpay.drop_webhooks = True  # the copies below are the deliveries
            paid = await client.post(
                f"{emulators.servers[0].url}/_sim/invoices/{invoice}/pay", json={}
            )
            assert paid.status_code == 200, paid.text
            event = {
                "deliveryId": "d",
                "webhookId": "w",
                "originalDeliveryId": "d",
                "isRedelivery": False,
                "type": "InvoiceSettled",
                "timestamp": 1_795_000_000,
                "storeId": emulators.store_id,
                "invoiceId": invoice,
                "metadata": {},
            }
            body, headers = signed(emulators.webhook_secret, json.dumps(event).encode())
            copy = Request("POST", "/api/v1/webhooks/btcpay", body, tuple(headers.items()))
            # 40 copies at once on 40 connections, shared by the two processes; those
            # answered "retry later" (the other holds the claim) are sent again.
            statuses: list[str] = []
            pending = 40
            for _ in range(100):
                replies = await send_all(base, [copy] * pending, concurrency=pending)
                statuses += [json.loads(r.body)["status"] for r in replies if r.status == 200]
                assert {r.status for r in replies} <= {200, 503}
                pending = sum(r.status == 503 for r in replies)
                if not pending:
                    break
                await asyncio.sleep(0.05)
            assert pending == 0
            assert statuses.count("settled") == 1
            assert set(statuses) == {"settled", "duplicate"}
            check = Database(url)
            try:
                async with check.reading() as session:
                    counts = (
                        await session.execute(
                            text(
                                "SELECT (SELECT count(*) FROM payments), "
                                "(SELECT count(*) FROM ledger_entries), "
                                "(SELECT count(*) FROM subscriptions WHERE status = 'active')"
                            )
                        )
                    ).one()
            finally:
                await check.dispose()
            assert tuple(counts) == (1, 1, 1)

            # A worker that dies is started again, on the same port.
            os.kill(other, signal.SIGKILL)

            async def replaced() -> bool:
                found = await _pids(base, tries=50)
                return len(found - {first, other}) == 1

            await eventually(replaced, "a new worker answering", 120)
            (newcomer,) = (await _pids(base)) - {first}
            assert emulators.telegram.updates.conflicts == 0
    finally:
        serve.stop()  # Ctrl+C to the first process: it stops the workers
    assert serve.popen.returncode == 0, serve.output()
    assert not _alive(newcomer)
    output = serve.output()
    assert "Traceback" not in output, output
    assert output.count(LEADER_LINE) == 1, output
