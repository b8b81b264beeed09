from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from satshare.security import hmac_sha256_hex


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


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


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
