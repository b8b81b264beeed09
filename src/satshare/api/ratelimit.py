"""Rate limits on the HTTP API (#14): an ASGI middleware in front of the routes.

Every request counts against its client IP's limit and, with an API key, the key's
(``api.rate_limit``); ``POST /admin/login`` counts against the stricter login limit only.
Over a limit: 429 problem+json with ``Retry-After`` and the IETF ``RateLimit`` /
``RateLimit-Policy`` fields, before routing, authentication or an Idempotency-Key record;
other answers carry the two RateLimit fields too. Processor webhooks (verified by their
signatures instead, and retried by processors that must not be turned away) and the
sandbox's emulators are not limited.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satshare.api.problems import PROBLEM_JSON, PROBLEM_TYPES, problem
from satshare.ratelimits.service import RateLimiter

#: Paths never limited: processor webhooks (signed), the Telegram webhook (secret token),
#: and the sandbox's emulators, which SatShare itself calls.
EXEMPT_PREFIXES = ("/api/v1/webhooks/", "/telegram/webhook", "/sim/")
#: Where the admin panel takes passwords: the stricter ``api.rate_limit.login`` applies.
LOGIN_PATHS = frozenset({"/admin/login"})


def exempt(path: str) -> bool:
    return path.startswith(EXEMPT_PREFIXES)


def _bearer(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter | None) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.limiter
        if scope["type"] != "http" or limiter is None or not limiter.enabled:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if exempt(path):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        if path in LOGIN_PATHS and scope["method"] == "POST":
            verdict = await limiter.check_login(client_ip)
        else:
            verdict = await limiter.check(
                api_key=_bearer(Headers(scope=scope)), client_ip=client_ip
            )
        if not verdict.allowed:
            response = problem(
                429,
                "rate-limited",
                f"too many requests ({verdict.refused_by} limit); retry after "
                f"{verdict.retry_after} s",
                instance=path,
                headers=verdict.headers,
                limit=verdict.refused_by,
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in verdict.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


_HEADERS = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "RateLimit-Policy": {
        "description": "The limits that apply (IETF RateLimit header fields draft), e.g. "
        '`"per-key";q=100;w=10, "per-ip";q=300;w=10`: q requests per w seconds.',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of each limit, e.g. `"per-key";r=0;t=4`: r requests '
        "remaining, t seconds until the window resets.",
        "schema": {"type": "string"},
    },
}


def document(schema: dict[str, Any]) -> None:
    """Add the 429 answer, with its headers, to every operation that is limited."""
    title, _ = PROBLEM_TYPES["rate-limited"]
    for path, item in schema.get("paths", {}).items():
        if exempt(path):
            continue
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            responses["429"] = {
                "description": title + ": over `api.rate_limit` (per API key, per client IP).",
                "headers": _HEADERS,
                "content": {
                    PROBLEM_JSON: {
                        "schema": {"$ref": "#/components/schemas/Problem"},
                        "example": {
                            "type": "/problems/rate-limited",
                            "title": title,
                            "status": 429,
                            "detail": "too many requests (per-key limit); retry after 4 s",
                            "limit": "per-key",
                        },
                    }
                },
            }
            operation["responses"] = dict(sorted(responses.items()))
