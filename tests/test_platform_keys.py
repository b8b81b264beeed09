"""Platform-bound API keys (#14): a key bound to the website platform registers website
users, lists only them, and meets every other platform's user, subscription, invoice and
payout exactly as it meets an id nobody has (0 leaks, walked over every user-scoped
operation of the OpenAPI document)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from satshare.apikeys import service as apikeys
from satshare.cli import app
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import assert_problem, buy, create_user, invoice_status, wait_until

ADDRESS = "bcrt1qqqqsyqcyq5rqwzqfpg9scrgwpugpzysnard0ew"  # P2WPKH of bytes 0..19
ABSENT_ID = 987654321
ABSENT_INVOICE = "inv_nobodyhasthisinvoice00"
#: Path parameter → how the answer names the resource.
PARAMETERS = ("user_id", "subscription_id", "payout_id", "invoice_id")


@pytest.fixture
async def platforms(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[Stack]:
    running = await open_stack(
        database_url,
        btcpay,
        payouts={"provider": "manual", "network": "regtest", "min_sats": 1_000},
    )
    yield running
    await close_stack(running)


async def bound_client(stack: Stack, platform: str, *scopes: str) -> httpx.AsyncClient:
    async with stack.db.transaction() as session:
        issued = await apikeys.create(
            session, "bound", scopes, stack.container.clock.now(), platform=platform
        )
    client = stack.anonymous()
    client.headers["Authorization"] = f"Bearer {issued.plaintext}"
    return client


async def telegram_world(stack: Stack) -> dict[str, Any]:
    """A telegram affiliate with a commission and a payout, and the buyer who paid."""
    affiliate = await create_user(stack.client, "tg-affiliate")
    buyer = await create_user(stack.client, "tg-buyer", referral_id=affiliate["user_id"])
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    accepted = await stack.client.post(
        f"/api/v1/affiliates/{affiliate['user_id']}/terms-acceptance",
        json={"version": stack.container.settings.affiliate.terms_version},
    )
    assert accepted.status_code == 201, accepted.text
    payout = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": affiliate["user_id"], "amount_sats": 5_000, "destination": ADDRESS},
    )
    assert payout.status_code == 201, payout.text
    return {
        "user_id": affiliate["user_id"],
        "buyer_id": buyer["user_id"],
        "subscription_id": order["subscription_id"],
        "invoice_id": order["invoice"]["id"],
        "payout_id": payout.json()["payout_id"],
    }


def _body(spec: dict[str, Any], operation: dict[str, Any]) -> Any:
    """The operation's own documented example body (every body has one)."""
    if "requestBody" not in operation:
        return None
    content = operation["requestBody"]["content"]["application/json"]
    if "examples" in content:
        return next(iter(content["examples"].values()))["value"]
    if "example" in content:
        return content["example"]
    name = content["schema"]["$ref"].split("/")[-1]
    return spec["components"]["schemas"][name]["examples"][0]


def _normalised(response: httpx.Response, ids: dict[str, str]) -> tuple[int, str]:
    """Status and detail with the ids replaced by placeholders, for comparing two answers."""
    detail = response.json().get("detail", "") if response.content else ""
    for name, value in ids.items():
        detail = re.sub(rf"\b{re.escape(value)}\b", f"<{name}>", str(detail))
    return response.status_code, detail


async def test_a_bound_key_reaches_no_other_platforms_user_anywhere(platforms: Stack) -> None:
    stack = platforms
    world = await telegram_world(stack)
    website = await bound_client(stack, "website", "admin")
    spec: dict[str, Any] = (await stack.client.get("/openapi.json")).json()
    before = await stack.counts()
    walked = leaks = 0
    try:
        for path, item in spec["paths"].items():
            used = [p for p in PARAMETERS if "{" + p + "}" in path]
            if not used:
                continue
            for method, operation in item.items():
                body = _body(spec, operation)
                theirs = path
                absent = path
                for name in used:
                    theirs = theirs.replace("{" + name + "}", str(world[name]))
                    absent_value = ABSENT_INVOICE if name == "invoice_id" else str(ABSENT_ID)
                    absent = absent.replace("{" + name + "}", absent_value)
                params = {"format": "csv"} if "statement" in path else None
                got = await website.request(method, theirs, json=body, params=params)
                nobody = await website.request(method, absent, json=body, params=params)
                walked += 1
                names = {n: str(world[n]) for n in used}
                absents = {n: ABSENT_INVOICE if n == "invoice_id" else str(ABSENT_ID) for n in used}
                if _normalised(got, names) != _normalised(nobody, absents):
                    leaks += 1
                    print("LEAK", method.upper(), path, got.status_code, got.text[:200])
                assert got.status_code in (404, 422), (method, path, got.text)
        # The ids a request names elsewhere than its path.
        user, absent_user = world["user_id"], ABSENT_ID

        def order(u: int) -> dict[str, Any]:
            return {"user_id": u, "subscription_type": "monthly"}

        def withdrawal(u: int) -> dict[str, Any]:
            return {"user_id": u, "amount_sats": 5_000, "destination": ADDRESS}

        for method, path, make in [
            ("POST", "/api/v1/subscriptions", order),
            ("POST", "/api/v1/payouts", withdrawal),
            ("GET", "/api/v1/subscriptions?user_id={}", None),
            ("GET", "/api/v1/payouts?user_id={}", None),
            ("GET", "/api/v1/users?referrer_id={}", None),
        ]:  # fmt: skip
            if make is None:
                got = await website.request(method, path.format(user))
                nobody = await website.request(method, path.format(absent_user))
            else:
                got = await website.request(method, path, json=make(user))
                nobody = await website.request(method, path, json=make(absent_user))
            walked += 1
            if _normalised(got, {"user_id": str(user)}) != _normalised(
                nobody, {"user_id": str(absent_user)}
            ):
                leaks += 1
                print("LEAK", method, path, got.status_code, got.text[:200])
    finally:
        await website.aclose()
    assert walked >= 25
    assert leaks == 0
    assert await stack.counts() == before


async def test_a_bound_key_registers_and_lists_its_platform_only(platforms: Stack) -> None:
    stack = platforms
    world = await telegram_world(stack)
    affiliate_code = (await stack.client.get(f"/api/v1/users/{world['user_id']}")).json()[
        "referral_code"
    ]
    website = await bound_client(stack, "website", "write")
    try:
        refused = await website.post(
            "/api/v1/users", json={"username": "mallory", "platform": "telegram"}
        )
        assert "bound to the website platform" in assert_problem(refused, 422)["detail"]
        by_id = await website.post(
            "/api/v1/users",
            json={"username": "x", "platform": "website", "referral_id": world["user_id"]},
        )
        nobody = await website.post(
            "/api/v1/users",
            json={"username": "x", "platform": "website", "referral_id": ABSENT_ID},
        )
        assert _normalised(by_id, {"r": str(world["user_id"])}) == _normalised(
            nobody, {"r": str(ABSENT_ID)}
        )
        # A referral code is shared publicly and works across platforms.
        created = await website.post(
            "/api/v1/users",
            json={"username": "wendy", "platform": "website", "referral_id": affiliate_code},
        )
        assert created.status_code == 201, created.text
        wendy = created.json()
        assert wendy["referrer_id"] == world["user_id"]
        shown = await website.get(f"/api/v1/users/{wendy['user_id']}")
        assert shown.status_code == 200 and shown.json()["platform"] == "website"
        order = await website.post(
            "/api/v1/subscriptions",
            json={"user_id": wendy["user_id"], "subscription_type": "monthly"},
        )
        assert order.status_code == 201, order.text
        users = (await website.get("/api/v1/users")).json()["items"]
        assert [u["user_id"] for u in users] == [wendy["user_id"]]
        assert (await website.get("/api/v1/users?platform=telegram")).json()["items"] == []
        subscriptions = (await website.get("/api/v1/subscriptions")).json()["items"]
        assert [s["user_id"] for s in subscriptions] == [wendy["user_id"]]
        assert (await website.get("/api/v1/payouts")).json()["items"] == []
        # What spans every platform needs an unbound key.
        for path in (
            "/api/v1/transactions",
            "/api/v1/webhook-endpoints",
            "/api/v1/reports/monthly",
        ):
            assert_problem(await website.get(path), 403)
    finally:
        await website.aclose()
    # An unbound key keeps seeing everyone.
    everyone = (await stack.client.get("/api/v1/users")).json()["items"]
    assert {u["platform"] for u in everyone} == {"telegram", "website"}


def test_the_cli_binds_a_key_to_a_platform_and_names_an_unknown_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SATSHARE_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    created = runner.invoke(
        app, ["api-key", "create", "--name", "site", "--scopes", "write", "--platform", "website"]
    )
    assert created.exit_code == 0, created.stdout
    assert "bound to platform website" in created.stdout
    assert created.stdout.strip().splitlines()[-1].startswith("ss_")
    listed = runner.invoke(app, ["api-key", "list"])
    assert "(website" in listed.stdout  # the name cell says "site (website only)", maybe wrapped
    as_json = runner.invoke(app, ["api-key", "list", "--json"])
    assert [(k["name"], k["platform"]) for k in json.loads(as_json.stdout)] == [("site", "website")]
    unknown = runner.invoke(app, ["api-key", "create", "--name", "x", "--platform", "myspace"])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip().splitlines() == [
        "satshare: unknown platform 'myspace'; use one of: telegram, discord, website, api"
    ]
