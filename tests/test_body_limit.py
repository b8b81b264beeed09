"""Request bodies over 1 MiB are a 413 problem before anything reads them: a declared
Content-Length up front (before routing, authentication, rate limiting or an
Idempotency-Key record), a chunked body as soon as it passes the mark; the processor
webhooks keep their own 256 KiB. Every valid body of the API fits well within the limit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from satshare.api.app import create_app
from satshare.api.problems import MAX_BODY_BYTES
from satshare.api.routes.webhooks import MAX_WEBHOOK_BYTES
from tests.conftest import WEBHOOK_SECRET, Stack
from tests.helpers import signed

PROBLEM = "application/problem+json"
USERS = "/api/v1/users"
WEBHOOK = "/api/v1/webhooks/btcpay"
CHUNK = 64 * 1024


def user_body(size: int, username: str = "padded") -> bytes:
    """A request to create a user, padded with JSON whitespace to ``size`` bytes: what
    reaches the route creates the user, so a body let through shows."""
    head, tail = b'{"username": "%s", "platform": "telegram"' % username.encode(), b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    """The body as a stream: httpx sends it without a Content-Length (chunked)."""
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


@contextmanager
def errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The ERROR records of the app and of uvicorn (whose loggers do not propagate to the
    root one caplog listens on): an exception that escaped to the server lands there."""
    server = logging.getLogger("uvicorn.error")
    server.addHandler(caplog.handler)
    found: list[logging.LogRecord] = []
    try:
        yield found
    finally:
        server.removeHandler(caplog.handler)
        found.extend(r for r in caplog.records if r.levelno >= logging.ERROR)


def assert_too_large(response: Any, limit: int, declared: int | None) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/payload-too-large")
    assert problem["status"] == 413
    expected = f"the body is at most {limit} bytes"
    if declared is not None:
        expected += f"; this one declares {declared}"
    assert problem["detail"] == expected


async def test_a_declared_length_over_the_limit_is_refused_before_anything(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    before = await stack.counts()
    thirty_mb = user_body(30 * 1024 * 1024)
    one_over = user_body(MAX_BODY_BYTES + 1)
    with errors_logged(caplog) as errors:
        # Without an API key it is 413, not 401: the size is judged before authentication
        # (a caller without a key learns nothing from it, and the server reads nothing).
        async with stack.anonymous() as anon:
            anonymous = await anon.post(
                USERS, content=thirty_mb, headers={"Content-Type": "application/json"}
            )
        authorised = await stack.client.post(
            USERS,
            content=one_over,
            headers={"Content-Type": "application/json", "Idempotency-Key": "big-1"},
        )
        # Any method: a GET declaring a body over the limit is refused all the same.
        listing = await stack.client.request("GET", USERS, content=one_over)
    assert_too_large(anonymous, MAX_BODY_BYTES, len(thirty_mb))
    assert_too_large(authorised, MAX_BODY_BYTES, len(one_over))
    assert_too_large(listing, MAX_BODY_BYTES, len(one_over))
    assert anonymous.json()["instance"] == USERS
    assert "www-authenticate" not in anonymous.headers
    assert "x-request-id" in anonymous.headers  # still inside the request-id middleware
    # No user, no Idempotency-Key record, no audit row: nothing written.
    assert await stack.counts() == before
    assert not errors


async def test_a_chunked_body_over_the_limit_is_cut_off_with_413(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    before = await stack.counts()
    body = user_body(2 * MAX_BODY_BYTES)
    with errors_logged(caplog) as errors:
        # Through the route's own body parsing (FastAPI), and through the Idempotency-Key
        # middleware's, which reads the body before the route.
        plain = await stack.client.post(
            USERS, content=chunked(body), headers={"Content-Type": "application/json"}
        )
        keyed = await stack.client.post(
            USERS,
            content=chunked(body),
            headers={"Content-Type": "application/json", "Idempotency-Key": "big-2"},
        )
        # Without a key: the body passes the mark before authentication is ever asked.
        async with stack.anonymous() as anon:
            anonymous = await anon.post(
                USERS, content=chunked(body), headers={"Content-Type": "application/json"}
            )
        # The admin panel's forms (Starlette's form parser, in a mounted app).
        form = b"username=admin&password=" + b"x" * (2 * MAX_BODY_BYTES)
        panel = await stack.client.post(
            "/admin/login",
            content=chunked(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    for response in (plain, keyed, anonymous, panel):
        assert_too_large(response, MAX_BODY_BYTES, None)
    assert await stack.counts() == before
    assert not errors  # no 500, no traceback
    # The connection the refused bodies came over still serves.
    assert (await stack.client.get(USERS)).status_code == 200


async def test_a_body_at_the_limit_reaches_the_route(stack: Stack) -> None:
    body = user_body(MAX_BODY_BYTES)
    declared = await stack.client.post(
        USERS, content=body, headers={"Content-Type": "application/json"}
    )
    streamed = await stack.client.post(
        USERS, content=chunked(body), headers={"Content-Type": "application/json"}
    )
    # The route read the whole body (a user was created twice) ...
    assert declared.status_code == 201, declared.text
    assert streamed.status_code == 201, streamed.text
    # ... and validated it: just under the limit, an oversize field is still a 422.
    invalid = await stack.client.post(
        USERS,
        content=user_body(MAX_BODY_BYTES - 1, username="x" * 65),
        headers={"Content-Type": "application/json"},
    )
    assert invalid.status_code == 422, invalid.text
    assert invalid.json()["errors"][0]["field"] == "username"


async def test_the_processor_webhooks_keep_their_256_kib(stack: Stack) -> None:
    before = await stack.counts()
    body, headers = signed(WEBHOOK_SECRET, b"{" + b" " * (300 * 1024) + b"}")
    async with stack.anonymous() as anon:
        declared = await anon.post(WEBHOOK, content=body, headers=headers)
        streamed = await anon.post(WEBHOOK, content=chunked(body), headers=headers)
    assert_too_large(declared, MAX_WEBHOOK_BYTES, len(body))
    assert_too_large(streamed, MAX_WEBHOOK_BYTES, None)
    assert await stack.counts() == before


async def test_gets_and_the_lifespan_are_untouched(stack: Stack) -> None:
    users = await stack.client.get(USERS)
    health = await stack.client.get("/health")
    assert users.status_code == 200, users.text
    assert health.status_code == 200, health.text
    # The lifespan protocol passes through every middleware to the app, and back.
    app = create_app(stack.container.api_services())
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


#: Bodies whose other members pass validation only to be refused by the route (409: a
#: transaction's amounts are corrected by a reversal, not an edit).
OTHER_MEMBERS_REFUSED = {"PUT /api/v1/transactions/{transaction_id}"}


def _worst_case(spec: dict[str, Any], schema: dict[str, Any], where: str) -> int:
    """The most bytes a valid value of ``schema`` can take as compact JSON: every character
    of a string written as a 12-byte surrogate-pair escape (a character outside the BMP
    counts once towards ``maxLength``). Fails on anything unbounded."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return max(_worst_case(spec, option, where) for option in options)
    if "enum" in schema or "const" in schema:
        values = schema.get("enum") or [schema["const"]]
        return max(len(str(value)) * 6 + 2 for value in values)
    kind = schema.get("type")
    if kind == "string":
        assert "maxLength" in schema, f"{where} has no maxLength"
        return 2 + 12 * int(schema["maxLength"])
    if kind in ("integer", "number"):
        return 24
    if kind in ("boolean", "null"):
        return 5
    if kind == "array":
        assert "maxItems" in schema, f"{where} has no maxItems"
        return 2 + int(schema["maxItems"]) * (1 + _worst_case(spec, schema["items"], where))
    assert kind == "object", f"{where}: {schema}"
    if where not in OTHER_MEMBERS_REFUSED:
        assert schema.get("additionalProperties") is False, f"{where} takes any member"
    return 2 + sum(
        len(name) + 4 + _worst_case(spec, sub, f"{where}.{name}")
        for name, sub in schema.get("properties", {}).items()
    )


async def test_every_valid_body_fits_well_within_the_limit(stack: Stack) -> None:
    spec: dict[str, Any] = (await stack.client.get("/openapi.json")).json()
    sizes = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "requestBody" not in operation or path.startswith("/api/v1/webhooks/"):
                continue  # the processor webhooks have their own cap (above)
            where = f"{method.upper()} {path}"
            content = operation["requestBody"]["content"]
            sizes[where] = max(_worst_case(spec, c["schema"], where) for c in content.values())
    assert len(sizes) >= 10
    largest = max(sizes, key=sizes.__getitem__)
    # A broadcast: two texts of 20,000 characters, a photo, eight buttons.
    assert largest == "POST /api/v1/broadcasts", sizes
    assert sizes[largest] < 0.75 * MAX_BODY_BYTES, sizes
