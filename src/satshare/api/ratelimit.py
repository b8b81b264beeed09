"""Rate limits on the HTTP API (#14): an ASGI middleware in front of the routes.

Every request counts against its client IP's limit and, with an API key, the key's
(``api.rate_limit``); ``POST /admin/login`` counts against the stricter login limit only.
Over a limit: 429 problem+json with ``Retry-After`` and the IETF ``RateLimit`` /
``RateLimit-Policy`` fields (a browser opening a page gets the same 429 as a short page in
its language), before routing, authentication or an Idempotency-Key record;
other answers carry the two RateLimit fields too. Processor webhooks (verified by their
signatures instead, and retried by processors that must not be turned away) and the
sandbox's emulators are not limited.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satshare.api import texts
from satshare.api.pages import page_language
from satshare.api.problems import PROBLEM_JSON, PROBLEM_TYPES, problem
from satshare.i18n import translate
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
            if _wants_page(scope):
                await _page(scope, verdict.retry_after, verdict.headers)(scope, receive, send)
                return
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


def _wants_page(scope: Scope) -> bool:
    """A person's browser opening a page (not the API, not a script asking for JSON)."""
    if scope["path"].startswith("/api/"):
        return False
    accept = Headers(scope=scope).get("accept", "")
    return "text/html" in accept


PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;margin:0;padding:0 1rem;background:#f5f5f7;
color:#222}}
main{{max-width:32rem;margin:15vh auto;padding:1.5rem;background:#fff;border-radius:12px;
box-shadow:0 1px 3px #0002}}h1{{font-size:1.4rem;margin:0 0 .5rem}}</style></head>
<body><main><h1>{title}</h1><p id="wait">{text}</p></main></body></html>"""


def _page(scope: Scope, seconds: int, headers: dict[str, str]) -> Response:
    """The 429 as a page in the visitor's language."""
    language = page_language(Request(scope))
    html = PAGE.format(
        lang=language,
        title=escape(translate(language, texts.RATE_LIMITED_TITLE)),
        text=escape(translate(language, texts.RATE_LIMITED, seconds=seconds)),
    )
    return HTMLResponse(html, status_code=429, headers=headers)


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
