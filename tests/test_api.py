"""Every endpoint, including bad input: problem+json and nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Stack
from tests.helpers import assert_problem, buy, create_user, wait_until


async def test_welcome_and_health_need_no_key(stack: Stack) -> None:
    async with stack.anonymous() as anon:
        welcome = (await anon.get("/")).json()
        assert welcome["name"] == "SatShare"
        assert welcome["links"]["docs"].endswith("/docs")
        health = await anon.get("/health")
        assert health.json()["status"] == "ok"
        assert (await anon.get("/docs")).status_code == 200
        assert (await anon.get("/openapi.json")).json()["info"]["title"] == "SatShare API"
        assert (await anon.get("/problems/validation-failed")).status_code == 200


ENDPOINTS = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"username": "x", "platform": "api"}),
    ("GET", "/api/v1/users/1", None),
    ("PUT", "/api/v1/users/1", {"username": "y"}),
    ("GET", "/api/v1/subscriptions/types", None),
    ("GET", "/api/v1/subscriptions", None),
    ("POST", "/api/v1/subscriptions", {"user_id": 1, "subscription_type": "monthly"}),
    ("GET", "/api/v1/subscriptions/1", None),
    ("PUT", "/api/v1/subscriptions/1", {"status": "canceled"}),
    ("GET", "/api/v1/transactions", None),
    ("POST", "/api/v1/transactions", {"memo": "m", "postings": []}),
    ("GET", "/api/v1/transactions/1", None),
    ("PUT", "/api/v1/transactions/1", {"memo": "m"}),
    ("POST", "/api/v1/transactions/1/reversal", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_missing_and_invalid_keys_are_401(
    stack: Stack, method: str, path: str, body: Any
) -> None:
    before = await stack.counts()
    async with stack.anonymous() as anon:
        missing = await anon.request(method, path, json=body)
        body_401 = assert_problem(missing, 401)
        assert "Bearer" in missing.headers["www-authenticate"]
        assert "missing" in body_401["detail"]
        wrong = await anon.request(
            method, path, json=body, headers={"Authorization": "Bearer ss_not_a_key"}
        )
        assert_problem(wrong, 401)
    assert await stack.counts() == before


WRITES = [e for e in ENDPOINTS if e[0] != "GET"]
ADMIN_ONLY = [e for e in ENDPOINTS if e[1].startswith("/api/v1/transactions") and e[0] != "GET"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_read_scope_cannot_write(stack: Stack, method: str, path: str, body: Any) -> None:
    key = await stack.key("read")
    before = await stack.counts()
    async with stack.anonymous() as anon:
        response = await anon.request(
            method, path, json=body, headers={"Authorization": f"Bearer {key}"}
        )
    problem = assert_problem(response, 403)
    # Writing the ledger takes the admin scope; every other write takes the write scope.
    assert problem["required_scope"] == ("admin" if (method, path, body) in ADMIN_ONLY else "write")
    assert await stack.counts() == before


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
async def test_write_scope_cannot_touch_the_ledger(
    stack: Stack, method: str, path: str, body: Any
) -> None:
    key = await stack.key("write")
    async with stack.anonymous() as anon:
        response = await anon.request(
            method, path, json=body, headers={"Authorization": f"Bearer {key}"}
        )
    assert assert_problem(response, 403)["required_scope"] == "admin"


async def test_revoked_key_is_refused(stack: Stack) -> None:
    from satshare.apikeys import service as apikeys

    key = await stack.key("read")
    headers = {"Authorization": f"Bearer {key}"}
    async with stack.anonymous() as anon:
        assert (await anon.get("/api/v1/users", headers=headers)).status_code == 200
        async with stack.db.transaction() as session:
            keys = await apikeys.list_keys(session)
            await apikeys.revoke(session, str(keys[-1].id), stack.container.clock.now())
        assert_problem(await anon.get("/api/v1/users", headers=headers), 401)


BAD_USER_BODIES = [
    b"{not json",
    b"",
    b"[]",
    b'"string"',
    b'{"username": "x"}',
    b'{"username": "x", "platform": "myspace"}',
    b'{"username": 5, "platform": "telegram"}',
    b'{"username": "", "platform": "telegram"}',
    b'{"username": "x", "platform": "telegram", "referral_id": "nobody"}',
    b'{"username": "x", "platform": "telegram", "referral_id": 999999}',
    b'{"username": "x", "platform": "telegram", "language": "de"}',
    b'{"username": "x", "platform": "telegram", "unexpected": 1}',
    b'{"username": "' + b"a" * 65 + b'", "platform": "telegram"}',
]


@pytest.mark.parametrize("raw", BAD_USER_BODIES)
async def test_bad_user_bodies(stack: Stack, raw: bytes) -> None:
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/users", content=raw, headers={"Content-Type": "application/json"}
    )
    status = 400 if raw in (b"{not json",) else 422
    assert_problem(response, status)
    assert await stack.counts() == before


BAD_SUBSCRIPTION_BODIES: list[Any] = [
    {"user_id": "1", "subscription_type": "monthly"},
    {"user_id": -1, "subscription_type": "monthly"},
    {"user_id": 0, "subscription_type": "monthly"},
    {"user_id": 2**70, "subscription_type": "monthly"},
    {"user_id": 1.5, "subscription_type": "monthly"},
    {"user_id": True, "subscription_type": "monthly"},
    {"user_id": 1, "subscription_type": "no-such-plan"},
    {"user_id": 1},
    {"user_id": 424242, "subscription_type": "monthly"},
    {"user_id": 1, "subscription_type": "monthly", "provider": "paypal"},
    {"user_id": 1, "subscription_type": "monthly", "amount_sats": 1},
]


@pytest.mark.parametrize("body", BAD_SUBSCRIPTION_BODIES)
async def test_bad_subscription_bodies(stack: Stack, body: Any) -> None:
    await create_user(stack.client, "exists")
    before = await stack.counts()
    invoices_before = len(stack.btcpay.emulator.invoices)
    response = await stack.client.post("/api/v1/subscriptions", json=body)
    problem = assert_problem(response, 422)
    if body.get("subscription_type") == "no-such-plan":
        assert "monthly" in problem["detail"]  # names what is available
    assert await stack.counts() == before
    assert len(stack.btcpay.emulator.invoices) == invoices_before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users/999",
        "/api/v1/subscriptions/999",
        "/api/v1/transactions/999",
        "/api/v1/nothing-here",
    ],
)
async def test_unknown_ids_are_404(stack: Stack, path: str) -> None:
    assert_problem(await stack.client.get(path), 404)


@pytest.mark.parametrize("path", ["/api/v1/users/abc", "/api/v1/subscriptions/1.5"])
async def test_wrong_path_types_are_422(stack: Stack, path: str) -> None:
    assert_problem(await stack.client.get(path), 422)


async def test_wrong_method_is_405_problem(stack: Stack) -> None:
    assert_problem(await stack.client.delete("/api/v1/users"), 405)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        # A limit out of range or not a number fails validation of the query: 422.
        ({"limit": 0}, 422),
        ({"limit": 201}, 422),
        ({"limit": "many"}, 422),
        # A cursor is a string of any shape; one that does not decode is a malformed request.
        ({"cursor": "!!!"}, 400),
        ({"cursor": "aWQ6eA"}, 400),  # "id:x"
    ],
)
async def test_bad_pagination(stack: Stack, params: dict[str, Any], status: int) -> None:
    response = await stack.client.get("/api/v1/users", params=params)
    assert_problem(response, status)


async def test_user_registration_referral_rules(stack: Stack) -> None:
    referrer = await create_user(stack.client, "ref", external_id="1")
    by_code = await create_user(stack.client, "a", referral_id=referrer["referral_code"].upper())
    by_id = await create_user(stack.client, "b", referral_id=str(referrer["user_id"]))
    assert by_code["referrer_id"] == by_id["referrer_id"] == referrer["user_id"]
    assert not referrer["referral_code"].isdigit()

    duplicate = await stack.client.post(
        "/api/v1/users", json={"username": "again", "platform": "telegram", "external_id": "1"}
    )
    assert assert_problem(duplicate, 409)["existing_user_id"] == referrer["user_id"]
    # The same external id on another platform is another person.
    await create_user(stack.client, "other", platform="discord", external_id="1")

    before = await stack.counts()
    change = await stack.client.put(
        f"/api/v1/users/{by_code['user_id']}", json={"referral_id": by_id["user_id"]}
    )
    assert "set once" in assert_problem(change, 409)["detail"]
    assert await stack.counts() == before

    updated = await stack.client.put(
        f"/api/v1/users/{by_code['user_id']}", json={"username": "renamed", "language": "ru"}
    )
    assert updated.status_code == 200
    assert updated.json()["username"] == "renamed"
    assert updated.json()["language"] == "ru"
    assert updated.json()["referrer_id"] == referrer["user_id"]


async def test_user_listing_pagination_and_filters(stack: Stack) -> None:
    root = await create_user(stack.client, "root")
    created = [
        await create_user(stack.client, f"u{i}", referral_id=root["user_id"]) for i in range(7)
    ]
    await create_user(stack.client, "web", platform="website")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "referrer_id": root["user_id"]}
        if cursor:
            params["cursor"] = cursor
        page = (await stack.client.get("/api/v1/users", params=params)).json()
        seen += [u["user_id"] for u in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(u["user_id"] for u in created)
    assert seen == sorted(seen, reverse=True)  # newest first
    web = (await stack.client.get("/api/v1/users", params={"platform": "website"})).json()
    assert [u["username"] for u in web["items"]] == ["web"]


async def test_subscription_listing_filters_and_cancel(stack: Stack) -> None:
    a = await create_user(stack.client, "a")
    b = await create_user(stack.client, "b")
    order_a = await buy(stack.client, a["user_id"])
    await buy(stack.client, b["user_id"], "yearly")
    await stack.btcpay.pay(order_a["invoice"]["provider_invoice_id"])
    sub_id = order_a["subscription_id"]

    async def active() -> bool:
        got = await stack.client.get(f"/api/v1/subscriptions/{sub_id}")
        return bool(got.json()["status"] == "active")

    await wait_until(active)
    listed = (await stack.client.get("/api/v1/subscriptions", params={"status": "active"})).json()
    assert [s["subscription_id"] for s in listed["items"]] == [sub_id]
    mine = (
        await stack.client.get("/api/v1/subscriptions", params={"user_id": b["user_id"]})
    ).json()
    assert [s["subscription_type"] for s in mine["items"]] == ["yearly"]
    assert_problem(await stack.client.get("/api/v1/subscriptions", params={"status": "x"}), 422)

    canceled = await stack.client.put(
        f"/api/v1/subscriptions/{sub_id}", json={"status": "canceled"}
    )
    assert canceled.json()["status"] == "canceled"
    back = await stack.client.put(f"/api/v1/subscriptions/{sub_id}", json={"status": "active"})
    assert back.json()["status"] == "active"  # paid time left
    pending = (await stack.client.get("/api/v1/subscriptions", params={"status": "pending"})).json()
    pending_id = pending["items"][0]["subscription_id"]
    refused = await stack.client.put(
        f"/api/v1/subscriptions/{pending_id}", json={"status": "active"}
    )
    assert_problem(refused, 409)
    assert_problem(
        await stack.client.put(f"/api/v1/subscriptions/{sub_id}", json={"status": "expired"}),
        422,
    )


async def test_types_list_plans_with_prices(stack: Stack) -> None:
    types = (await stack.client.get("/api/v1/subscriptions/types")).json()
    assert {t["subscription_type"]: t["price_sats"] for t in types} == {
        "monthly": 50_000,
        "yearly": 500_001,
    }


async def test_processor_down_gives_502_and_writes_nothing(stack: Stack) -> None:
    user = await create_user(stack.client, "u")
    stack.btcpay.emulator.api_down = True
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/subscriptions", json={"user_id": user["user_id"], "subscription_type": "monthly"}
    )
    assert "btcpay" in assert_problem(response, 502)["detail"]
    assert await stack.counts() == before
