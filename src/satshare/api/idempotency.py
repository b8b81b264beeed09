"""``Idempotency-Key`` on POSTs: the first response is stored and replayed for repeats.

Runs as ASGI middleware because it must see the raw request body and the full response.
The key is scoped to the API key that sent it. A different body under the same key is a
409; a repeat while the first is still running is a 409 too (retry later). Responses with
a 5xx status are not stored, so a failed attempt can be retried with the same key.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satshare.api.problems import problem
from satshare.apikeys import service as apikeys
from satshare.idempotency import repository

HEADER = "idempotency-key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_EXEMPT_PREFIXES = ("/api/v1/webhooks/",)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None or not path.startswith("/api/") or path.startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if not _VALID_KEY.match(key):
            response = problem(
                400,
                "bad-request",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                instance=path,
            )
            await response(scope, receive, send)
            return
        container = scope["app"].state.container
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            await self.app(scope, receive, send)  # authentication fails downstream
            return
        async with container.db.reading() as session:
            api_key = await apikeys.authenticate(session, token.strip())
        if api_key is None:
            await self.app(scope, receive, send)
            return

        body = await _read_body(receive)
        digest = hashlib.sha256(
            b"\n".join(
                [scope["method"].encode(), path.encode(), scope.get("query_string", b""), body]
            )
        ).hexdigest()
        async with container.db.transaction() as session:
            claim = await repository.claim(
                session,
                api_key_id=api_key.id,
                key=key,
                method=scope["method"],
                path=path,
                request_hash=digest,
                now=container.clock.now(),
            )
            record_id = claim.record.id
            stored = (
                claim.record.status_code,
                claim.record.content_type,
                claim.record.response_body,
            )
        if claim.state == "mismatch":
            response = problem(
                409,
                "idempotency-key-reused",
                "this Idempotency-Key was already used with a different request; use a new key",
                instance=path,
            )
            await response(scope, receive, send)
            return
        if claim.state == "in_flight":
            response = problem(
                409,
                "idempotency-key-in-flight",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                instance=path,
            )
            await response(scope, receive, send)
            return
        if claim.state == "replay":
            status, content_type, text = stored
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", (content_type or "application/json").encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": (text or "").encode()})
            return

        captured: dict[str, Any] = {"status": 500, "content_type": None, "chunks": []}

        async def replay_receive() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["content_type"] = Headers(raw=message.get("headers", [])).get(
                    "content-type"
                )
            elif message["type"] == "http.response.body":
                captured["chunks"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            async with container.db.transaction() as session:
                if captured["status"] >= 500:
                    await repository.abandon(session, record_id)
                else:
                    await repository.complete(
                        session,
                        record_id,
                        captured["status"],
                        captured["content_type"],
                        b"".join(captured["chunks"]).decode("utf-8", errors="replace"),
                    )


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
