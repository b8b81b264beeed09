"""Promo codes (#13) through the API and the BTCPay emulator: the invoice bills the discounted
price and carries the original price, the discount and the code; the split and the stats use
what was paid; every limit refuses with a 422 that changes nothing; max_uses holds under
concurrency and a use comes back when its invoice expires unpaid."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from satshare.payments import flows
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, buy, create_user, invoice_status, wait_until


@pytest.fixture
async def stack(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[Stack]:
    running = await open_stack(database_url, btcpay)
    yield running
    await close_stack(running)


async def promo(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/promo-codes", json=fields)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def order(
    client: httpx.AsyncClient, user_id: int, code: str | None, plan: str = "monthly"
) -> httpx.Response:
    body: dict[str, Any] = {"user_id": user_id, "subscription_type": plan}
    if code is not None:
        body["promo_code"] = code
    return await client.post("/api/v1/subscriptions", json=body)


async def pay(stack: Stack, created: dict[str, Any]) -> None:
    await stack.btcpay.pay(created["invoice"]["provider_invoice_id"], method="BTC-LN")

    async def settled() -> bool:
        return await invoice_status(stack.client, created["subscription_id"]) == "settled"

    await wait_until(settled)


def refused(response: httpx.Response, reason: str) -> None:
    problem = assert_problem(response, 422)
    assert problem["reason"] == reason, problem
    assert problem["field"] == "promo_code"


async def test_a_percent_code_bills_less_and_the_split_is_of_what_was_paid(stack: Stack) -> None:
    client = stack.client
    await promo(client, code="spring20", kind="percent", value=20, plans=["monthly"])
    affiliate = await create_user(client, "affiliate", external_id="100")
    buyer = await create_user(
        client, "buyer", external_id="200", referral_id=affiliate["referral_code"]
    )
    created = (await order(client, buyer["user_id"], "Spring20")).json()
    invoice = created["invoice"]
    assert (invoice["amount_sats"], invoice["original_sats"], invoice["discount_sats"]) == (
        40_000,
        50_000,
        10_000,
    )
    assert invoice["promo_code"] == "SPRING20" and invoice["bonus_days"] == 0
    await pay(stack, created)
    earned = (await client.get(f"/api/v1/users/{affiliate['user_id']}")).json()
    assert earned["balance_sats"] == 20_000  # half of what was paid, not of the list price
    entries = (await client.get("/api/v1/transactions", params={"kind": "sale"})).json()
    [sale] = entries["items"]
    assert sum(p["amount_sats"] for p in sale["postings"] if p["amount_sats"] > 0) == 40_000
    stats = (await client.get("/api/v1/promo-codes/spring20")).json()["stats"]
    assert stats == {"uses": 1, "pending": 0, "revenue_sats": 40_000, "discount_sats": 10_000}

    other = await create_user(client, "other", external_id="300")
    before = await stack.counts()
    refused(await order(client, buyer["user_id"], "SPRING20"), "already_used")
    refused(await order(client, other["user_id"], "SPRING20", plan="yearly"), "wrong_plan")
    refused(await order(client, other["user_id"], "NOSUCH"), "unknown")
    assert await stack.counts() == before


async def test_extra_days_fixed_sats_and_never_below_one_sat(stack: Stack) -> None:
    client = stack.client
    await promo(client, code="WEEK", kind="extra_days", value=7)
    await promo(client, code="HUGE", kind="fixed_sats", value=10_000_000)
    alice = await create_user(client, "alice", external_id="100")
    bob = await create_user(client, "bob", external_id="200")
    week = (await order(client, alice["user_id"], "week")).json()
    assert week["invoice"]["amount_sats"] == 50_000 and week["invoice"]["bonus_days"] == 7
    assert week["invoice"]["discount_sats"] == 0
    await pay(stack, week)
    ends = (await client.get(f"/api/v1/subscriptions/{week['subscription_id']}")).json()["ends_at"]
    days = (datetime.fromisoformat(ends) - datetime.now(UTC)) / timedelta(days=1)
    assert 36.9 < days <= 37
    huge = (await order(client, bob["user_id"], "HUGE")).json()
    assert huge["invoice"]["amount_sats"] == 1 and huge["invoice"]["discount_sats"] == 49_999


async def test_limits_refuse_with_their_reason(stack: Stack) -> None:
    client = stack.client
    now = datetime.now(UTC)
    await promo(
        client,
        code="LATER",
        kind="percent",
        value=10,
        valid_from=(now + timedelta(days=1)).isoformat(),
    )
    await promo(
        client,
        code="GONE",
        kind="percent",
        value=10,
        valid_until=(now - timedelta(seconds=1)).isoformat(),
    )
    await promo(client, code="FIRST", kind="percent", value=10, first_purchase_only=True)
    await promo(client, code="OFF", kind="percent", value=10)
    changed = await client.put("/api/v1/promo-codes/off", json={"active": False})
    assert changed.status_code == 200 and changed.json()["active"] is False
    veteran = await create_user(client, "veteran", external_id="100")
    await pay(stack, await buy(client, veteran["user_id"]))
    before = await stack.counts()
    refused(await order(client, veteran["user_id"], "LATER"), "not_yet")
    refused(await order(client, veteran["user_id"], "GONE"), "expired")
    refused(await order(client, veteran["user_id"], "FIRST"), "first_purchase_only")
    refused(await order(client, veteran["user_id"], "OFF"), "disabled")
    assert await stack.counts() == before
    newcomer = await create_user(client, "newcomer", external_id="200")
    first = await order(client, newcomer["user_id"], "FIRST")
    assert first.status_code == 201 and first.json()["invoice"]["amount_sats"] == 45_000


async def test_max_uses_holds_under_concurrency_and_an_expired_invoice_gives_its_use_back(
    stack: Stack,
) -> None:
    client = stack.client
    await promo(client, code="FIVE", kind="percent", value=50, max_uses=5)
    buyers = [
        (await create_user(client, f"b{i}", external_id=str(1000 + i)))["user_id"]
        for i in range(20)
    ]
    answers = await asyncio.gather(*(order(client, user, "FIVE") for user in buyers))
    made = [a.json() for a in answers if a.status_code == 201]
    assert len(made) == 5
    assert all(m["invoice"]["amount_sats"] == 25_000 for m in made)
    for answer in answers:
        if answer.status_code != 201:
            refused(answer, "used_up")
    stats = (await client.get("/api/v1/promo-codes/FIVE")).json()["stats"]
    assert stats["pending"] == 5 and stats["uses"] == 0
    # One of the five expires unpaid: its use is free again, for someone else.
    lapsed = made[0]
    await stack.btcpay.control(
        "POST", f"/_sim/invoices/{lapsed['invoice']['provider_invoice_id']}/expire"
    )
    await flows.reconcile(stack.container.payments)
    assert await invoice_status(client, lapsed["subscription_id"]) == "expired"
    late = [b for b, a in zip(buyers, answers, strict=True) if a.status_code != 201]
    again = await order(client, late[0], "FIVE")
    assert again.status_code == 201, again.text
    refused(await order(client, late[1], "FIVE"), "used_up")
    await pay(stack, made[1])
    stats = (await client.get("/api/v1/promo-codes/FIVE")).json()["stats"]
    assert stats == {"uses": 1, "pending": 4, "revenue_sats": 25_000, "discount_sats": 25_000}


async def test_the_promo_code_api_refuses_bad_codes(stack: Stack) -> None:
    client = stack.client
    before = await stack.counts()
    bad = [
        ({"code": "X!", "kind": "percent", "value": 10}, "code"),
        ({"code": "TOOMUCH", "kind": "percent", "value": 101}, "value"),
        ({"code": "NOPLAN", "kind": "percent", "value": 5, "plans": ["nope"]}, "plans"),
        ({"code": "DAYS", "kind": "extra_days", "value": 4000}, "value"),
        (
            {
                "code": "WINDOW",
                "kind": "percent",
                "value": 5,
                "valid_from": "2026-12-02T00:00:00Z",
                "valid_until": "2026-12-01T00:00:00Z",
            },
            "valid_until",
        ),
        ({"code": "NAIVE", "kind": "percent", "value": 5, "valid_until": "2026-12-01"}, "valid"),
        ({"code": "KIND", "kind": "free", "value": 5}, "kind"),
    ]
    for body, field in bad:
        problem = assert_problem(await client.post("/api/v1/promo-codes", json=body), 422)
        assert field in str(problem), (body, problem)
    assert await stack.counts() == before
    await promo(client, code="ONCE", kind="percent", value=10)
    assert_problem(
        await client.post(
            "/api/v1/promo-codes", json={"code": "once", "kind": "percent", "value": 5}
        ),
        409,
    )
    assert_problem(await client.get("/api/v1/promo-codes/NOPE"), 404)
    assert_problem(await client.put("/api/v1/promo-codes/ONCE", json={}), 422)
    assert_problem(await client.put("/api/v1/promo-codes/ONCE", json={"active": None}), 422)
    listed = (await client.get("/api/v1/promo-codes", params={"limit": 1})).json()
    assert [p["code"] for p in listed["items"]] == ["ONCE"] and listed["next_cursor"] is None


@pytest.fixture
async def bonus_stack(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[Stack]:
    running = await open_stack(database_url, btcpay, affiliate={"referee_bonus_days": 5})
    yield running
    await close_stack(running)


async def test_referee_bonus_days_on_the_first_paid_subscription_only(
    bonus_stack: Stack,
) -> None:
    client = bonus_stack.client
    affiliate = await create_user(client, "affiliate", external_id="100")
    referred = await create_user(
        client, "referred", external_id="200", referral_id=affiliate["referral_code"]
    )
    loner = await create_user(client, "loner", external_id="300")
    first = await buy(client, referred["user_id"])
    assert first["invoice"]["bonus_days"] == 5 and first["invoice"]["amount_sats"] == 50_000
    assert (await buy(client, loner["user_id"]))["invoice"]["bonus_days"] == 0
    await pay(bonus_stack, first)
    sub = (await client.get(f"/api/v1/subscriptions/{first['subscription_id']}")).json()
    days = (datetime.fromisoformat(sub["ends_at"]) - datetime.now(UTC)) / timedelta(days=1)
    assert 34.9 < days <= 35
    # The commission is a share of what was paid, bonus or not.
    earned = (await client.get(f"/api/v1/users/{affiliate['user_id']}")).json()
    assert earned["balance_sats"] == 25_000
    assert (await buy(client, referred["user_id"]))["invoice"]["bonus_days"] == 0


async def test_a_purchase_with_a_code_under_an_idempotency_key_is_made_once(stack: Stack) -> None:
    client = stack.client
    await promo(client, code="ONCE10", kind="percent", value=10, max_uses=3)
    buyer = await create_user(client, "buyer", external_id="100")
    body = {"user_id": buyer["user_id"], "subscription_type": "monthly", "promo_code": "ONCE10"}
    headers = {"Idempotency-Key": "order-1"}
    first = await client.post("/api/v1/subscriptions", json=body, headers=headers)
    again = await client.post("/api/v1/subscriptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["invoice"]["id"] == again.json()["invoice"]["id"]
    assert first.json()["invoice"]["amount_sats"] == 45_000
    stats = (await client.get("/api/v1/promo-codes/ONCE10")).json()["stats"]
    assert stats["pending"] == 1
