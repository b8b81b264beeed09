"""Helpers shared by the test modules (a test module never imports another one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx

from satshare.security import hmac_sha256_hex

PROBLEM = "application/problem+json"

REGTEST_TPUB = (
    # BIP84 account key of the "abandon ... about" seed on the test networks (m/84'/1'/0').
    "vpub5Y6cjg78GGuNLsaPhmYsiw4gYX3HoQiRBiSwDaBXKUafCt9bNwWQiitDk5VZ5BVxYnQdwoTyXSs2JHRPAgjAvtbBrf8ZhDYe2jWAqvZVnsc"
)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """An RFC 9457 problem answer with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert body["title"] and body["detail"]
    return body


async def create_user(
    client: httpx.AsyncClient, username: str = "user", **fields: Any
) -> dict[str, Any]:
    body = {"username": username, "platform": "telegram", **fields}
    response = await client.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def buy(client: httpx.AsyncClient, user_id: int, plan: str = "monthly") -> dict[str, Any]:
    response = await client.post(
        "/api/v1/subscriptions", json={"user_id": user_id, "subscription_type": plan}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


# Waits are generous: CI shares its two cores with other work, and only a failing test
# waits this long.
async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 30.0, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


async def expire_due_until(db: Any, now: datetime, expected: int, timeout: float = 10.0) -> None:
    """Run the expiry until ``expected`` subscriptions were expired. It skips a row another
    transaction still holds (SKIP LOCKED on PostgreSQL: a late webhook's settlement check,
    the bot recording a member) and the job takes it at its next run; a test runs it again
    the same way instead of failing on that timing."""
    from satshare.subscriptions import service as subscriptions

    done = 0

    async def expired_all() -> bool:
        nonlocal done
        async with db.transaction() as session:
            done += await subscriptions.expire_due(session, now)
        return done >= expected

    await wait_until(expired_all, timeout=timeout, interval=0.05)
    assert done == expected, done


async def invoice_status(client: httpx.AsyncClient, subscription_id: int) -> str:
    response = await client.get(f"/api/v1/subscriptions/{subscription_id}")
    status: str = response.json()["latest_invoice"]["status"]
    return status


def signed(secret: str, event: dict[str, Any] | bytes) -> tuple[bytes, dict[str, str]]:
    import json

    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return body, {
        "BTCPay-Sig": "sha256=" + hmac_sha256_hex(secret, body),
        "Content-Type": "application/json",
    }
