"""Many processes on one PostgreSQL database (issue #11): three `serve` processes in
``jobs.mode: workers`` and two `satshare worker` processes, against the BTCPay emulator
(every webhook delivered to all three servers) and the Bot API emulator, which answers a
second concurrent getUpdates with 409 Conflict as Telegram does.

A storm of sales settles once each; every buyer gets one "payment received" message and
every affiliate one commission message per sale, sent by the workers; no Conflict. Then the
process that polls Telegram is killed -9: another one takes over and new users are answered
once each."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from satshare.sim.telegram import TelegramEmulator
from tests.conftest import PG_URL
from tests.processkit import (
    CHANNEL,
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
    pytest.mark.skipif(PG_URL is None, reason="several processes share PostgreSQL"),
]

AFFILIATES = 3
BUYERS_PER_AFFILIATE = 4


def _sample(body: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text page (0 when absent)."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@pytest.fixture
async def emulators() -> AsyncIterator[Emulators]:
    running = Emulators()
    await running.start()
    yield running
    await running.stop()


def _bot_texts(tg: TelegramEmulator, user_id: int, needle: str) -> list[str]:
    return [
        m.text or m.caption or ""
        for m in tg.messages.get(user_id, [])
        if m.from_bot and needle in (m.text or m.caption or "")
    ]


async def test_three_servers_and_two_workers_share_one_database(
    migrated_template: str, tmp_path: Path, emulators: Emulators
) -> None:
    url = migrated_template
    admin_key = await empty_database_with_admin_key(url, "multi")
    ports = [free_port() for _ in range(3)]
    for port in ports:  # BTCPay delivers every event to all three: duplicates by design
        emulators.btcpay.add_webhook(
            emulators.store_id,
            f"http://127.0.0.1:{port}/api/v1/webhooks/btcpay",
            emulators.webhook_secret,
        )
    config = {
        "database": {"url": url},
        "btcpay": {
            "url": emulators.servers[0].url,
            "api_key": emulators.api_key,
            "store_id": emulators.store_id,
            "webhook_secret": emulators.webhook_secret,
        },
        "telegram": {"token": emulators.token, "api_base_url": emulators.servers[1].url},
        "payouts": {"provider": "manual"},
        "jobs": {"mode": "workers"},
        "plans": [
            {
                "id": "monthly",
                "title": "Premium, 30 days",
                "price_sats": 50_000,
                "duration_days": 30,
                "channels": [CHANNEL],
            }
        ],
    }
    config_path = tmp_path / "satshare.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    env["SATSHARE_CONFIG"] = str(config_path)
    servers = [
        Process(f"serve-{n}", ["serve", "--port", str(port)], env, tmp_path / f"serve-{n}.log")
        for n, port in enumerate(ports)
    ]
    worker_ports = [free_port() for _ in range(2)]  # each worker's own /metrics
    workers = [
        Process(
            f"worker-{n}",
            ["worker"],
            {**env, "SATSHARE_METRICS__WORKER_PORT": str(worker_ports[n])},
            tmp_path / f"worker-{n}.log",
        )
        for n in range(2)
    ]
    processes = [*servers, *workers]
    tg = emulators.telegram
    try:
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
        ) as client:

            async def all_up() -> bool:
                for port in ports:
                    try:
                        health = await client.get(f"http://127.0.0.1:{port}/health")
                    except httpx.TransportError:
                        return False
                    if health.status_code != 200:
                        return False
                return True

            await eventually(all_up, "three servers answering", seconds=300)
            leaders = await eventually(
                lambda: [s for s in servers if LEADER_LINE in s.output()], "a poller"
            )
            assert len(leaders) == 1

            asking = [ports[0]]  # the server the test asks (one that is alive)

            async def registered(telegram_id: int) -> dict[str, Any] | None:
                listed = await client.get(
                    f"http://127.0.0.1:{asking[0]}/api/v1/users",
                    params={"platform": "telegram", "external_id": str(telegram_id)},
                )
                items: list[dict[str, Any]] = listed.json()["items"]
                return items[0] if items else None

            affiliates: list[tuple[int, dict[str, Any]]] = []
            for n in range(AFFILIATES):
                person = tg.add_user(first_name=f"Affiliate{n}")
                tg.user_sends(person.id, "/start")
                affiliates.append(
                    (person.id, await eventually(lambda i=person.id: registered(i), "sign-up"))
                )
            buyers: list[tuple[int, int, dict[str, Any]]] = []
            for index, (affiliate_tg, affiliate) in enumerate(affiliates):
                for n in range(BUYERS_PER_AFFILIATE):
                    person = tg.add_user(first_name=f"Buyer{index}x{n}")
                    tg.user_sends(person.id, f"/start ref_{affiliate['referral_code']}")
                    user = await eventually(lambda i=person.id: registered(i), "sign-up")
                    assert user["referrer_id"] == affiliate["user_id"]
                    buyers.append((person.id, affiliate_tg, user))

            async def buy_and_pay(n: int, user: dict[str, Any]) -> None:
                base = f"http://127.0.0.1:{ports[n % 3]}/api/v1"
                order = await client.post(
                    f"{base}/subscriptions",
                    json={"user_id": user["user_id"], "subscription_type": "monthly"},
                )
                assert order.status_code == 201, order.text
                invoice = order.json()["invoice"]["provider_invoice_id"]
                paid = await client.post(
                    f"{emulators.servers[0].url}/_sim/invoices/{invoice}/pay", json={}
                )
                assert paid.status_code == 200, paid.text

            await asyncio.gather(*(buy_and_pay(n, u) for n, (_, _, u) in enumerate(buyers)))

            def everyone_told() -> bool:
                return all(_bot_texts(tg, b, "Payment received") for b, _, _ in buyers)

            await eventually(everyone_told, "every buyer told by a worker", seconds=180)
            await eventually(
                lambda: all(
                    len(_bot_texts(tg, a, "You earned")) == BUYERS_PER_AFFILIATE
                    for a, _ in affiliates
                ),
                "every commission told",
            )
            await asyncio.sleep(3)  # time for any duplicate to show up
            for buyer, _, _ in buyers:
                assert len(_bot_texts(tg, buyer, "Payment received")) == 1
            for affiliate_tg, _ in affiliates:
                assert len(_bot_texts(tg, affiliate_tg, "You earned")) == BUYERS_PER_AFFILIATE
            assert tg.updates.conflicts == 0
            active = await client.get(
                f"http://127.0.0.1:{ports[1]}/api/v1/subscriptions",
                params={"status": "active", "limit": 200},
            )
            assert len(active.json()["items"]) == len(buyers)

            # The messages went out in the workers' job runs, which each worker's own
            # /metrics counts; serve (workers mode) checks the queue it feeds in /ready.
            sender_runs = 0.0
            for port in worker_ports:
                scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
                sender_runs += _sample(
                    scraped.text,
                    "satshare_job_runs_total",
                    task="send_notifications",
                    result="succeeded",
                )
            assert sender_runs >= 1
            ready = await client.get(f"http://127.0.0.1:{ports[1]}/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["jobs"] == "ok"

            # The poller dies: another server takes over; nobody is lost or answered twice.
            (leader,) = leaders
            leader.popen.kill()
            leader.popen.wait()
            asking[0] = next(p for p, s in zip(ports, servers, strict=True) if s is not leader)
            latecomers = [tg.add_user(first_name=f"Late{n}").id for n in range(3)]
            for person in latecomers:
                tg.user_sends(person, "/start")
            survivors = [s for s in servers if s is not leader]
            await eventually(
                lambda: any(LEADER_LINE in s.output() for s in survivors), "a new poller", 60
            )
            for person in latecomers:
                await eventually(lambda p=person: registered(p), "a latecomer's sign-up")
            await eventually(
                lambda: all(any(m.from_bot for m in tg.messages.get(p, [])) for p in latecomers),
                "latecomers answered",
            )
            await asyncio.sleep(2)
            for person in latecomers:
                welcomes = [m for m in tg.messages.get(person, []) if m.from_bot]
                assert len(welcomes) == 1, [m.text for m in welcomes]
    finally:
        for process in processes:
            process.stop()
    for process in processes:
        if process is not leader:
            assert "Traceback" not in process.output(), process.name + process.output()
