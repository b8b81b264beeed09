"""Bad input never gives a 500 (issue #8, item 7): NUL bytes, oversize strings and
out-of-range integers in every parameter and body field of every operation are a 422
problem naming the field, with nothing written, the same on SQLite and PostgreSQL (where a
NUL would otherwise reach the database and fail there). Plus the webhook receivers' own
inputs: signature headers, delivery ids, body sizes."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from satshare.security import verify_callback_query, verify_sha256_signature
from satshare.telegram_contract import webhook_secret
from satshare.webhooks_out import service as webhooks_out
from satshare.webhooks_out.models import EventType
from tests.botkit import TOKEN, close_bot_stack, open_bot_stack
from tests.conftest import STORE_ID, WEBHOOK_SECRET, BTCPaySim, Stack
from tests.helpers import buy, create_user, signed

PROBLEM = "application/problem+json"
NUL = "a\x00b"
HUGE_INTS = (2**63, -(2**63) - 1)
#: Valid values for the parameters not under test (ids are filled in from seeded rows).
QUERY_DEFAULTS: dict[str, Any] = {"amount_sats": 25_000, "destination": "alice@example.com"}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def _alternatives(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null shapes a value may take (``X | None`` and unions are ``anyOf``)."""
    schema = _resolve(spec, schema)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    resolved = [_resolve(spec, option) for option in options]
    return [option for option in resolved if option.get("type") != "null"]


def _leaves(
    spec: dict[str, Any], schema: dict[str, Any], path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], list[dict[str, Any]]]]:
    """Every string or integer field of a body schema, with its path."""
    options = _alternatives(spec, schema)
    scalars = [o for o in options if o.get("type") in ("string", "integer")]
    if scalars and path:
        yield path, scalars
    for option in options:
        if option.get("type") == "object":
            for name, sub in option.get("properties", {}).items():
                yield from _leaves(spec, sub, (*path, name))
        elif option.get("type") == "array":
            yield from _leaves(spec, option["items"], (*path, 0))


def _bad_values(options: list[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    for option in options:
        if option.get("type") == "string":
            yield "NUL byte", NUL
            if "maxLength" in option:
                yield "oversize string", "x" * (option["maxLength"] + 1)
        if option.get("type") == "integer":
            for number in HUGE_INTS:
                yield f"integer {number}", number


def _example_body(spec: dict[str, Any], operation: dict[str, Any]) -> Any:
    content = operation["requestBody"]["content"]["application/json"]
    if "example" in content:
        return content["example"]
    if "examples" in content:
        return next(iter(content["examples"].values()))["value"]
    schema = _resolve(spec, content["schema"])
    return schema["examples"][0]


def _with(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    changed = copy.deepcopy(body)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def _names_field(problem: dict[str, Any], field: str) -> bool:
    fields = [e["field"] for e in problem.get("errors") or []]
    if problem.get("field"):
        fields.append(problem["field"])
    return any(f == field or f.startswith(f"{field}.") for f in fields)


async def _seed(stack: Stack) -> dict[str, Any]:
    user = await create_user(stack.client, "alice", external_id="1001")
    order = await buy(stack.client, user["user_id"])
    delivery = await _webhook_delivery(stack)
    return {
        **delivery,
        "user_id": user["user_id"],
        "subscription_id": order["subscription_id"],
        "invoice_id": order["invoice"]["id"],
        "transaction_id": 1,
        "payout_id": 1,
        "provider": "btcpay",
        "broadcast_id": 1,
        "code": "SPRING20",
    }


async def _webhook_delivery(stack: Stack) -> dict[str, int]:
    """An outgoing webhook endpoint with one delivery; disabled, so nothing is sent (and no
    attempt is logged) while the bad requests run."""
    created = await stack.client.post(
        "/api/v1/webhook-endpoints", json={"url": "https://crm.example.com/", "enabled": False}
    )
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["endpoint_id"]
    async with stack.db.transaction() as session:
        endpoint = await webhooks_out.require_endpoint(session, endpoint_id)
        now = stack.container.clock.now()
        data = {"endpoint_id": endpoint_id}
        await webhooks_out.record(
            session, EventType.TEST, data, dedupe_key="seed", now=now, only=endpoint
        )
    deliveries = await stack.client.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries")
    return {"endpoint_id": endpoint_id, "delivery_id": deliveries.json()["items"][0]["delivery_id"]}


def _requests(
    spec: dict[str, Any], ids: dict[str, Any]
) -> Iterator[tuple[str, str, str, dict[str, Any], Any, str]]:
    """(what, method, url, query, json body, field) for every bad value of every input."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            parameters = [p for p in operation.get("parameters", []) if p["in"] != "header"]
            path_values = {p["name"]: ids[p["name"]] for p in parameters if p["in"] == "path"}
            query = {
                p["name"]: QUERY_DEFAULTS[p["name"]]
                for p in parameters
                if p["in"] == "query" and p.get("required")
            }
            body = _example_body(spec, operation) if "requestBody" in operation else None
            where = f"{method.upper()} {path}"
            for parameter in parameters:
                name = parameter["name"]
                for label, value in _bad_values(_alternatives(spec, parameter["schema"])):
                    if parameter["in"] == "path":
                        values = {**path_values, name: quote(str(value), safe="")}
                        url = path.format(**values)
                        yield f"{where} {name}: {label}", method, url, query, body, name
                    else:
                        url = path.format(**path_values)
                        bad = {**query, name: value}
                        yield f"{where} {name}: {label}", method, url, bad, body, name
            if body is None:
                continue
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            for field, options in _leaves(spec, schema):
                dotted = ".".join(str(step) for step in field)
                for label, value in _bad_values(options):
                    url = path.format(**path_values)
                    yield (
                        f"{where} body {dotted}: {label}",
                        method,
                        url,
                        query,
                        _with(body, field, value),
                        dotted,
                    )


async def test_every_input_of_every_operation_refuses_bad_values(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    spec: dict[str, Any] = (await stack.client.get("/openapi.json")).json()
    ids = await _seed(stack)
    before = await stack.counts()
    tried = 0
    for what, method, url, query, body, field in _requests(spec, ids):
        response = await stack.client.request(method, url, params=query, json=body)
        assert response.status_code == 422, f"{what}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == PROBLEM, what
        problem = response.json()
        assert problem["status"] == 422, what
        assert _names_field(problem, field), f"{what}: {problem}"
        tried += 1
    assert tried > 150  # the walk really covered the API
    assert await stack.counts() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("GET", "/api/v1/users?external_id=a%00b", "external_id"),
        ("GET", "/api/v1/users?platform=telegram&x%00=1", "x\x00"),
        ("GET", "/api/v1/subscriptions/types?anything=%00", "anything"),
        ("POST", "/api/v1/invoices/inv%00x/refund", "invoice_id"),
        ("GET", "/pay/inv%00x", "invoice_id"),
        ("POST", "/api/v1/webhooks/btc%00pay", "provider"),
    ],
)
async def test_nul_anywhere_in_the_url_is_422_before_anything_else(
    stack: Stack, method: str, url: str, field: str
) -> None:
    before = await stack.counts()
    # Unauthenticated, and with an Idempotency-Key that would otherwise be recorded.
    async with stack.anonymous() as anon:
        response = await anon.request(method, url, headers={"Idempotency-Key": "nul-test"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert _names_field(response.json(), field), response.json()
    assert await stack.counts() == before


async def test_nul_under_an_idempotency_key_is_refused_and_not_recorded(stack: Stack) -> None:
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/invoices/inv%00x/refund", headers={"Idempotency-Key": "nul-refund"}
    )
    assert response.status_code == 422, response.text
    assert await stack.counts() == before


ARABIC_INDIC_MONTH = "\u0662\u0660\u0662\u0666-\u0661\u0661"  # 2026-11 in another script


@pytest.mark.parametrize(
    "month",
    ["9999-12", "0000-01", "1999-12", "2026-00", "2026-13", ARABIC_INDIC_MONTH, "2026-1", "x" * 99],
)
async def test_out_of_range_months_are_422(stack: Stack, month: str) -> None:
    for path in ("/api/v1/reports/monthly", "/api/v1/reports/chart"):
        response = await stack.client.get(path, params={"month": month})
        assert response.status_code == 422, f"{path} {month!r}: {response.text}"
        assert response.headers["content-type"] == PROBLEM
        assert _names_field(response.json(), "month"), response.json()


async def test_the_last_and_first_reportable_months_work(stack: Stack) -> None:
    for month in ("2000-01", "9998-12"):
        response = await stack.client.get("/api/v1/reports/monthly", params={"month": month})
        assert response.status_code == 200, response.text
        assert response.json()["month"] == month


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"referral_id": 2**63}, "referral_id"),
        ({"referral_id": "9223372036854775808"}, "referral_id"),
        ({"referral_id": "²"}, "referral_id"),  # str.isdigit() says yes, int() says no
        ({"referral_id": "x" * 10_000}, "referral_id"),
        ({"external_id": "x" * 10_000}, "external_id"),
        ({"external_id": 2**63}, "external_id"),
        ({"username": "a\x00b"}, "username"),
    ],
)
async def test_registration_values_beyond_the_columns_are_422(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/users", json={"username": "bob", "platform": "telegram", **body}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert _names_field(response.json(), field), response.json()
    assert await stack.counts() == before


async def test_a_cursor_beyond_bigint_is_400(stack: Stack) -> None:
    import base64

    cursor = base64.urlsafe_b64encode(f"id:{2**63}".encode()).decode().rstrip("=")
    response = await stack.client.get("/api/v1/users", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_memo_edit_refuses_nul(stack: Stack) -> None:
    user = await create_user(stack.client, "carol")
    created = await stack.client.post(
        "/api/v1/transactions",
        json={
            "memo": "bonus",
            "postings": [
                {"account": "revenue:owner", "amount_sats": 10},
                {"account": f"payable:affiliate:{user['user_id']}", "amount_sats": -10},
            ],
        },
    )
    assert created.status_code == 201, created.text
    path = f"/api/v1/transactions/{created.json()['transaction_id']}"
    before = await stack.counts()
    response = await stack.client.put(path, json={"memo": "a\x00b"})
    assert response.status_code == 422, response.text
    assert _names_field(response.json(), "memo"), response.json()
    assert await stack.counts() == before


# --- webhooks -------------------------------------------------------------------------------

WEBHOOK = "/api/v1/webhooks/btcpay"


def _event(invoice_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "deliveryId": "d-1",
        "type": "InvoiceSettled",
        "storeId": STORE_ID,
        "invoiceId": invoice_id,
        **extra,
    }


@pytest.mark.parametrize(
    "signature",
    [b"sha256=\xe9\xe9", b"sha256=" + "é".encode() * 32, b"\xff", b"sha256=\x80" * 10],
)
async def test_non_ascii_signature_header_is_401_without_a_traceback(
    stack: Stack, caplog: pytest.LogCaptureFixture, signature: bytes
) -> None:
    stack.btcpay.emulator.drop_webhooks = True
    user = await create_user(stack.client, "dave")
    order = await buy(stack.client, user["user_id"])
    body = json.dumps(_event(order["invoice"]["provider_invoice_id"])).encode()
    before = await stack.counts()
    async with stack.anonymous() as anon:
        response = await anon.post(
            WEBHOOK,
            content=body,
            headers={"BTCPay-Sig": signature, "Content-Type": "application/json"},
        )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert await stack.counts() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_signature_checks_answer_false_for_non_ascii_input() -> None:
    assert verify_sha256_signature("secret", b"{}", "sha256=" + "é" * 64) is False
    assert verify_sha256_signature("secret", b"{}", "sha256=\udcff") is False
    assert verify_callback_query("secret", {"ref": "inv_1", "sig": "é" * 64}) is False
    assert verify_callback_query("secret", {"ref": "inv\udcff", "sig": "00"}) is False


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"deliveryId": "d" * 129}, "deliveryId"),
        ({"deliveryId": "d\x00"}, "deliveryId"),
        ({"invoiceId": "i\x00"}, "invoiceId"),
        ({"invoiceId": "i" * 129}, "invoiceId"),
    ],
)
async def test_signed_webhook_with_unstorable_ids_is_400(
    stack: Stack, caplog: pytest.LogCaptureFixture, fields: dict[str, Any], needle: str
) -> None:
    stack.btcpay.emulator.drop_webhooks = True
    user = await create_user(stack.client, "erin")
    order = await buy(stack.client, user["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    before = await stack.counts()
    body, headers = signed(
        WEBHOOK_SECRET, _event(order["invoice"]["provider_invoice_id"], **fields)
    )
    async with stack.anonymous() as anon:
        response = await anon.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert needle in response.json()["detail"]
    assert await stack.counts() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_chunked_webhook_body_over_the_cap_is_413(stack: Stack) -> None:
    async def chunks() -> Any:
        for _ in range(300):
            yield b" " * 1024

    before = await stack.counts()
    async with stack.anonymous() as anon:
        response = await anon.post(
            WEBHOOK,
            content=chunks(),
            headers={"BTCPay-Sig": "sha256=" + "0" * 64, "Content-Type": "application/json"},
        )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    assert await stack.counts() == before


async def test_telegram_webhook_body_over_one_megabyte_is_413(
    database_url: str, btcpay: BTCPaySim
) -> None:
    bot = await open_bot_stack(database_url, btcpay, telegram={"webhook_url": "https://x.invalid/"})
    try:
        secret = webhook_secret(bot.container.settings.telegram, TOKEN)
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
        big = b'{"update_id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'

        async def chunked() -> Any:
            for start in range(0, len(big), 65536):
                yield big[start : start + 65536]

        async with httpx.AsyncClient(base_url=bot.url, timeout=30) as client:
            declared = await client.post("/telegram/webhook", content=big, headers=headers)
            streamed = await client.post("/telegram/webhook", content=chunked(), headers=headers)
            small = await client.post(
                "/telegram/webhook",
                json={"update_id": 7, "pad": "x" * 1000},
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
            )
        for response in (declared, streamed):
            assert response.status_code == 413, response.text
            assert response.headers["content-type"] == PROBLEM
        assert small.status_code == 200, small.text
    finally:
        await close_bot_stack(bot)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            b'{"platform": "api", "username": "caf\xe9"}',
            "the body is not UTF-8 text (byte 0xe9 at offset 36); send JSON encoded as UTF-8",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "the body's JSON is nested too deeply to read"),
        # Two readers must not see two requests: a key named twice is refused, not the last
        # one taken (a proxy's log or a WAF may take the first).
        (
            b'{"platform": "api", "username": "bob", "username": "eve"}',
            "the body is not valid JSON: the key 'username' appears twice in one object",
        ),
        (
            b'{"platform": "api", "username": "bob", "x": [{"a": 1, "a": 1}]}',
            "the body is not valid JSON: the key 'a' appears twice in one object",
        ),
        (
            b'{"platform": "api", "username": "bob", "external_id": NaN}',
            "the body is not valid JSON: NaN is not valid JSON",
        ),
    ],
    ids=["latin-1", "nested", "key-twice", "key-twice-deep", "nan"],
)
async def test_an_unreadable_body_is_a_malformed_request_naming_why(
    stack: Stack, body: bytes, detail: str
) -> None:
    answer = await stack.client.post(
        "/api/v1/users", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"] == "/problems/malformed-request"
    assert answer.json()["detail"] == detail
    listed = await stack.client.get("/api/v1/users")
    assert all(u["username"] not in ("bob", "eve") for u in listed.json()["items"])


@pytest.mark.parametrize(
    ("headers", "sent"),
    [
        (
            {"Content-Type": "application/x-www-form-urlencoded"},
            "Content-Type application/x-www-form-urlencoded",
        ),
        ({}, "no Content-Type"),
    ],
    ids=["curl -d", "none"],
)
async def test_json_sent_without_its_content_type_is_told_which_to_send(
    stack: Stack, headers: dict[str, str], sent: str
) -> None:
    answer = await stack.client.post(
        "/api/v1/users", content=b'{"platform": "api", "username": "bob"}', headers=headers
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "the body must be a JSON object sent with Content-Type: application/json "
        f"(this one came with {sent})"
    )
    listed = await stack.client.get("/api/v1/users")
    assert all(u["username"] != "bob" for u in listed.json()["items"])


@pytest.mark.parametrize(
    ("url", "status", "text"),
    [
        ("/pay/inv%00x", 404, "There is no page at this address."),
        ("/admin/%00", 404, "There is no page at this address."),
        ("/does%00/not?lang=ru", 404, "По этому адресу нет страницы."),
        ("/admin/login?next=%00", 400, "Part of this link cannot be read"),
        ("/?lang=ru&x=%00", 400, "Часть этой ссылки невозможно прочитать"),
    ],
)
async def test_a_browser_on_a_link_with_a_nul_gets_the_sites_page(
    stack: Stack, url: str, status: int, text: str
) -> None:
    """A garbled link opened in a browser is answered with the site's not-found page (a NUL
    in the path: no page has one) or broken-link page (in the query) in the reader's
    language, not a JSON problem; under /api/ it stays a problem."""
    before = await stack.counts()
    browser = {"Accept": "text/html,application/xhtml+xml"}
    async with stack.anonymous() as anon:
        page = await anon.get(url, headers=browser)
        api = await anon.get("/api/v1/users/%00", headers=browser)
    assert page.status_code == status, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="not-found"' in page.text and text in page.text
    assert ("Broken link" in page.text or "Ссылка повреждена" in page.text) == (status == 400)
    assert api.status_code == 422 and api.headers["content-type"] == PROBLEM
    assert await stack.counts() == before
