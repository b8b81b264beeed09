"""Mistakes a new integrator makes, found by driving a sandbox by hand (curl, httpx): each
answer says which field is wrong, in the request's own names, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Stack
from tests.helpers import assert_problem, create_user


@pytest.mark.parametrize(
    ("external_id", "messages"),
    [
        (12.5, {"Input should be a valid integer", "Input should be a valid string"}),
        (True, {"Input should be a valid integer", "Input should be a valid string"}),
        (2**64, {"Input should be less than or equal to 9223372036854775807"}),
        ("x" * 129, {"String should have at most 128 characters"}),
    ],
    ids=["float", "bool", "beyond-64-bits", "too-long"],
)
async def test_a_wrong_value_of_a_number_or_string_field_is_named_as_sent(
    stack: Stack, external_id: Any, messages: set[str]
) -> None:
    # external_id is a number or a string: pydantic names each alternative it tried
    # ("constrained-int"), which is no field of the request.
    before = await stack.counts()
    answer = await stack.client.post(
        "/api/v1/users",
        json={"username": "dora", "platform": "website", "external_id": external_id},
    )
    problem = assert_problem(answer, 422)
    assert {e["field"] for e in problem["errors"]} == {"external_id"}, problem
    assert messages <= {e["message"] for e in problem["errors"]}, problem
    assert "constrained" not in problem["detail"]
    assert await stack.counts() == before


async def test_a_wrong_referral_reference_is_named_as_sent(stack: Stack) -> None:
    answer = await stack.client.post(
        "/api/v1/users",
        json={"username": "erin", "platform": "website", "referral_id": ["k7m2xq9p"]},
    )
    problem = assert_problem(answer, 422)
    assert {e["field"] for e in problem["errors"]} == {"referral_id"}, problem


async def test_fields_inside_lists_and_missing_fields_keep_their_names(stack: Stack) -> None:
    # What the union clean-up must not lose: list indexes, a field left out, an unknown one.
    answer = await stack.client.post(
        "/api/v1/broadcasts",
        json={"text": "hi", "segment": {"kind": "all"}, "buttons": [{"text": 1}], "x-y": 1},
    )
    problem = assert_problem(answer, 422)
    assert {e["field"] for e in problem["errors"]} == {
        "buttons.0.text",
        "buttons.0.url",
        "x-y",
    }, problem


async def test_an_integer_of_thousands_of_digits_is_a_malformed_request_saying_so(
    stack: Stack,
) -> None:
    user = await create_user(stack.client, "alice")
    before = await stack.counts()
    body = f'{{"user_id": {user["user_id"]}, "amount_sats": 1{"0" * 5000}}}'
    answer = await stack.client.post(
        "/api/v1/payouts", content=body, headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(answer, 400)
    assert problem["type"] == "/problems/malformed-request"
    assert "digits" in problem["detail"] and "ValueError" not in problem["detail"], problem
    assert await stack.counts() == before


async def test_a_promo_list_cursor_that_no_page_gave_is_400_not_an_empty_page(
    stack: Stack,
) -> None:
    for code in ("ALPHA", "BRAVO"):
        created = await stack.client.post(
            "/api/v1/promo-codes", json={"code": code, "kind": "percent", "value": 10}
        )
        assert created.status_code == 201, created.text
    first = (await stack.client.get("/api/v1/promo-codes", params={"limit": 1})).json()
    assert [p["code"] for p in first["items"]] == ["ALPHA"] and first["next_cursor"] == "ALPHA"
    second = await stack.client.get(
        "/api/v1/promo-codes", params={"limit": 1, "cursor": first["next_cursor"]}
    )
    assert [p["code"] for p in second.json()["items"]] == ["BRAVO"]
    # Another list's cursor, or a typo: every code sorts before it, so the page was empty.
    for cursor in ("aWQ6NA", "garbage", "a b"):
        answer = await stack.client.get("/api/v1/promo-codes", params={"cursor": cursor})
        problem = assert_problem(answer, 400)
        assert "next_cursor" in problem["detail"], problem


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://localhost:8443/hooks",
        "https://api.localhost/hooks",
        "https://10.0.0.5/hooks",
        "https://192.168.1.20/hooks",
        "https://169.254.169.254/latest",
        "https://[::1]/hooks",
        "https://[64:ff9b::a00:1]/hooks",  # 10.0.0.1 through NAT64
        "https://[::ffff:10.0.0.1]/hooks",
    ],
)
async def test_an_endpoint_on_a_private_address_is_refused_when_added(
    stack: Stack, url: str
) -> None:
    # Outside the sandbox the sender never connects there: accepted, the endpoint would
    # only collect "refused" attempts for 24 hours and then be marked failing.
    before = await stack.counts()
    answer = await stack.client.post("/api/v1/webhook-endpoints", json={"url": url})
    problem = assert_problem(answer, 422)
    assert problem["field"] == "url" and "public" in problem["detail"], problem
    assert "webhooks.allow_insecure_urls" in problem["detail"]
    assert await stack.counts() == before
    assert (await stack.client.get("/api/v1/webhook-endpoints")).json() == []


async def test_an_endpoint_on_a_public_address_or_name_is_accepted(stack: Stack) -> None:
    for url in (
        "https://203.0.113.7.nip.io/hooks",
        "https://8.8.8.8/hooks",
        "https://crm.example.com/",
    ):
        answer = await stack.client.post("/api/v1/webhook-endpoints", json={"url": url})
        assert answer.status_code == 201, (url, answer.text)


async def test_the_hint_for_testing_a_disabled_endpoint_is_a_put_that_works(stack: Stack) -> None:
    created = await stack.client.post(
        "/api/v1/webhook-endpoints",
        json={"url": "https://crm.example.com/hooks", "enabled": False},
    )
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["endpoint_id"]
    problem = assert_problem(
        await stack.client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/test"), 409
    )
    # PUT replaces the endpoint: {"enabled": true} alone is a 422 (url is required).
    alone = await stack.client.put(
        f"/api/v1/webhook-endpoints/{endpoint_id}", json={"enabled": True}
    )
    assert_problem(alone, 422)
    assert "url" in problem["detail"] and "events" in problem["detail"], problem
    again = await stack.client.put(
        f"/api/v1/webhook-endpoints/{endpoint_id}",
        json={"url": "https://crm.example.com/hooks", "events": ["*"], "enabled": True},
    )
    assert again.status_code == 200 and again.json()["enabled"] is True, again.text
