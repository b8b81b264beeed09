"""Idempotency-Key on POSTs."""

from __future__ import annotations

import asyncio

from tests.conftest import Stack
from tests.helpers import assert_problem, create_user


async def test_same_key_replays_the_first_response(stack: Stack) -> None:
    body = {"username": "once", "platform": "website"}
    headers = {"Idempotency-Key": "signup-42"}
    first = await stack.client.post("/api/v1/users", json=body, headers=headers)
    second = await stack.client.post("/api/v1/users", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    users = (await stack.client.get("/api/v1/users")).json()["items"]
    assert len(users) == 1


async def test_same_key_different_body_is_409(stack: Stack) -> None:
    headers = {"Idempotency-Key": "k1"}
    await stack.client.post(
        "/api/v1/users", json={"username": "a", "platform": "api"}, headers=headers
    )
    before = await stack.counts()
    other = await stack.client.post(
        "/api/v1/users", json={"username": "b", "platform": "api"}, headers=headers
    )
    assert assert_problem(other, 409)["type"] == "/problems/idempotency-key-reused"
    assert await stack.counts() == before


async def test_checkout_with_key_creates_one_invoice(stack: Stack) -> None:
    user = await create_user(stack.client, "buyer")
    body = {"user_id": user["user_id"], "subscription_type": "monthly"}
    headers = {"Idempotency-Key": "order-7"}
    results = await asyncio.gather(
        *(stack.client.post("/api/v1/subscriptions", json=body, headers=headers) for _ in range(5))
    )
    # Which requests arrive while the first is still running is up to the scheduler; what is
    # determined is that exactly one runs (a fresh 201), and every other one is either
    # told to retry (409 in flight) or, once the first finished, given its stored answer.
    fresh = [r for r in results if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    replayed = [r for r in results if r.headers.get("idempotent-replayed") == "true"]
    busy = [r for r in results if r.status_code == 409]
    assert len(fresh) == 1, [r.text for r in results]
    assert len(fresh) + len(replayed) + len(busy) == len(results), [r.text for r in results]
    assert [r.status_code for r in replayed] == [201] * len(replayed)
    for response in busy:
        assert assert_problem(response, 409)["type"] == "/problems/idempotency-key-in-flight"
        assert response.headers["retry-after"] == "2"
    created = fresh + replayed
    assert len({r.json()["invoice"]["id"] for r in created}) == 1
    assert len(stack.btcpay.emulator.invoices) == 1
    replay = await stack.client.post("/api/v1/subscriptions", json=body, headers=headers)
    assert replay.json()["invoice"]["id"] == created[0].json()["invoice"]["id"]


async def test_keys_are_scoped_per_api_key_and_errors_are_replayed(stack: Stack) -> None:
    other_key = await stack.key("write")
    headers = {"Idempotency-Key": "shared"}
    bad = await stack.client.post(
        "/api/v1/users", json={"username": "x", "platform": "nope"}, headers=headers
    )
    assert bad.status_code == 422
    again = await stack.client.post(
        "/api/v1/users", json={"username": "x", "platform": "nope"}, headers=headers
    )
    assert again.status_code == 422 and again.headers.get("idempotent-replayed") == "true"
    async with stack.anonymous() as anon:
        theirs = await anon.post(
            "/api/v1/users",
            json={"username": "y", "platform": "api"},
            headers={**headers, "Authorization": f"Bearer {other_key}"},
        )
    assert theirs.status_code == 201


async def test_failed_processor_call_can_be_retried_with_the_same_key(stack: Stack) -> None:
    user = await create_user(stack.client, "buyer")
    body = {"user_id": user["user_id"], "subscription_type": "monthly"}
    headers = {"Idempotency-Key": "retry-me"}
    stack.btcpay.emulator.api_down = True
    assert (
        await stack.client.post("/api/v1/subscriptions", json=body, headers=headers)
    ).status_code == 502
    stack.btcpay.emulator.api_down = False
    retried = await stack.client.post("/api/v1/subscriptions", json=body, headers=headers)
    assert retried.status_code == 201


async def test_invalid_key_format_is_400(stack: Stack) -> None:
    response = await stack.client.post(
        "/api/v1/users",
        json={"username": "x", "platform": "api"},
        headers={"Idempotency-Key": "x" * 300},
    )
    assert_problem(response, 400)


async def test_a_client_gone_mid_body_leaves_the_key_unclaimed(stack: Stack) -> None:
    """The connection drops after part of the body: nothing is claimed, so the client's
    retry with the whole body under the same key is served, not refused as another request."""
    body = b'{"username": "halfway", "platform": "website"}'
    _reader, writer = await asyncio.open_connection("127.0.0.1", stack.server.port)
    writer.write(
        b"POST /api/v1/users HTTP/1.1\r\nHost: test\r\n"
        + f"Authorization: Bearer {stack.admin_key}\r\n".encode()
        + b"Idempotency-Key: dropped-1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    await writer.drain()
    await asyncio.sleep(0.2)  # the server has read the headers and part of the body
    writer.close()
    await writer.wait_closed()
    retry = await stack.client.post(
        "/api/v1/users",
        content=body,
        headers={"Idempotency-Key": "dropped-1", "Content-Type": "application/json"},
    )
    assert retry.status_code == 201, retry.text
    assert retry.json()["referral_code"]
