"""``Idempotency-Key`` on POSTs: the first response is stored and replayed for repeats.

Runs as ASGI middleware because it must see the raw request body and the full response.
The key is scoped to the API key that sent it. A different body under the same key is a
409; a repeat while the first is still running is a 409 too (retry later).

Crash safety: the request's last write commits in the same transaction as its stored answer
(``Database.deferred_commit``), and the answer is sent only after that commit; an earlier
write of the same request marks the record "effect committed" in its own transaction. So a
retry after a crash finds either nothing committed (the claim, once older than
the request timeout, is taken over and the request runs again) or the committed answer
(replayed). Requests under a key are cut off at ``server.request_timeout_seconds``, so a
live one is never taken over. A 5xx answer is not stored when nothing was committed, so it
can be retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satshare.aftercommit import Produced
from satshare.api.deps import ApiServices
from satshare.api.problems import problem
from satshare.apikeys import service as apikeys
from satshare.idempotency import repository
from satshare.idempotency.repository import ClaimState

HEADER = "idempotency-key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_EXEMPT_PREFIXES = ("/api/v1/webhooks/",)
#: A claim still in flight this long after the request timeout (``server.
#: request_timeout_seconds``: no request under a key runs longer) belongs to a dead process.
TAKEOVER_MARGIN = timedelta(seconds=5)


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
        services = scope["app"].state.services
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            await self.app(scope, receive, send)  # authentication fails downstream
            return
        async with services.db.reading() as session:
            api_key = await apikeys.authenticate(session, token.strip())
        if api_key is None:
            await self.app(scope, receive, send)
            return

        body = await _read_body(receive)
        if body is None:
            return  # nobody to answer, nothing claimed
        digest = hashlib.sha256(
            b"\n".join(
                [scope["method"].encode(), path.encode(), scope.get("query_string", b""), body]
            )
        ).hexdigest()
        now = services.clock.now()
        async with services.db.transaction() as session:
            claim = await repository.claim(
                session,
                api_key_id=api_key.id,
                key=key,
                method=scope["method"],
                # The request hash covers the whole path; the column keeps a readable prefix.
                path=path[:255],
                request_hash=digest,
                now=now,
                in_flight_ttl=_timeout(services) + TAKEOVER_MARGIN,
            )
            record_id = claim.record.id
            stored = (
                claim.record.status_code,
                claim.record.content_type,
                claim.record.response_body,
            )
        if claim.state is ClaimState.MISMATCH:
            response = problem(
                409,
                "idempotency-key-reused",
                "this Idempotency-Key was already used with a different request; use a new key",
                instance=path,
            )
            await response(scope, receive, send)
            return
        if claim.state is ClaimState.IN_FLIGHT:
            response = problem(
                409,
                "idempotency-key-in-flight",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                instance=path,
                headers={"Retry-After": "2"},
            )
            await response(scope, receive, send)
            return
        if claim.state is ClaimState.INCOMPLETE:
            response = problem(
                409,
                "idempotency-key-incomplete",
                "the first request with this Idempotency-Key stopped after part of its effect "
                "was saved and before its answer was; check the resources it creates or "
                "changes, then continue with a new key",
                instance=path,
            )
            await response(scope, receive, send)
            return
        if claim.state is ClaimState.REPLAY:
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
        await self._run(services, record_id, body, scope, send)

    async def _run(
        self, services: ApiServices, record_id: int, body: bytes, scope: Scope, send: Send
    ) -> None:
        """Run the request; its last write commits together with the stored answer, and the
        answer is sent only after that commit. A crash before it leaves nothing committed
        (a retry runs again) or everything (a retry gets this answer)."""

        async def replay_receive() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        held: list[Message] = []

        async def hold_send(message: Message) -> None:
            held.append(message)

        async def mark_effect(session: AsyncSession) -> None:
            await repository.mark_effect(session, record_id, services.clock.now())

        status, content_type, chunks = 500, None, []
        async with services.db.deferred_commit(mark_effect) as deferred:
            try:
                async with asyncio.timeout(_timeout(services).total_seconds()):
                    await self.app(scope, replay_receive, hold_send)
            except TimeoutError:
                # Stopped: its unfinished last write is dropped, so the answer below (not
                # stored) is true: a retry finds nothing of it (or, if an earlier write had
                # committed, the key answers "incomplete").
                await deferred.rollback_pending()
                if not deferred.wrote:
                    async with services.db.transaction(effect=False) as session:
                        await repository.abandon(session, record_id)
                saved = (
                    "part of it had been saved: check before sending it again"
                    if deferred.wrote
                    else "nothing of it was saved: send it again"
                )
                too_slow = problem(
                    503,
                    "service-unavailable",
                    f"the request took longer than {_timeout(services).seconds} s and was "
                    f"stopped; {saved}",
                    instance=scope["path"],
                )
                await too_slow(scope, replay_receive, send)
                return
            except BaseException:
                # Whatever was written before the failure is kept (as without a key), and
                # so is the key's record then: a retry must not do it twice.
                await deferred.commit_pending()
                if not deferred.wrote:
                    async with services.db.transaction(effect=False) as session:
                        await repository.abandon(session, record_id)
                raise
            for message in held:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    content_type = Headers(raw=message.get("headers", [])).get("content-type")
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))
            text = b"".join(chunks).decode("utf-8", errors="replace")

            async def store_answer(session: AsyncSession) -> None:
                await repository.complete(session, record_id, status, content_type, text)

            if not await deferred.commit_pending(store_answer):
                async with services.db.transaction(effect=False) as session:
                    if status >= 500 and not deferred.wrote:
                        await repository.abandon(session, record_id)  # retry runs again
                    else:
                        await repository.complete(session, record_id, status, content_type, text)
        if deferred.wrote:
            # What the request wrote is committed only now (a payout it approved included).
            services.after_commit.committed(Produced(ledger=True, outbox=True, payouts=True))
        for message in held:
            await send(message)


def _timeout(services: ApiServices) -> timedelta:
    return timedelta(seconds=services.settings.server.request_timeout_seconds)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None when the client went away before sending all of it (a
    truncated body must never claim the key: the client's retry with the whole body would
    then be refused as a different request)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
