"""RFC 9457 problem details for every 4xx/5xx the API returns."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satshare.errors import DomainError, RetryLater
from satshare.schemas import NUL_MESSAGE

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "code", "headers"})

#: code -> (title, explanation) ; served at /problems/{code} and used in the OpenAPI.
PROBLEM_TYPES: dict[str, tuple[str, str]] = {
    "malformed-request": ("Malformed request", "The body is not valid JSON or cannot be read."),
    "validation-failed": (
        "Validation failed",
        "A field or parameter is missing, has the wrong type, is out of range, is longer than "
        "its documented `maxLength`, or holds a NUL character (refused anywhere: in the path, "
        "the query and every string of the body); `errors` lists each field.",
    ),
    "invalid-request": (
        "Unprocessable request",
        "The request refers to something that does not exist or breaks a business rule.",
    ),
    "unauthorized": (
        "Unauthorized",
        "Send `Authorization: Bearer <api key>`; create a key with `satshare api-key create`.",
    ),
    "forbidden": ("Forbidden", "The API key lacks the scope this operation needs."),
    "not-found": ("Not found", "No resource exists at this URL."),
    "method-not-allowed": ("Method not allowed", "This URL does not support that HTTP method."),
    "conflict": ("Conflict", "The request conflicts with the resource's current state."),
    "idempotency-key-reused": (
        "Idempotency-Key reused",
        "The same Idempotency-Key was sent with a different request; use a new key.",
    ),
    "idempotency-key-in-flight": (
        "Request still in progress",
        "A request with this Idempotency-Key is still being processed; retry after "
        "`Retry-After` seconds. If the process handling it died, the key is freed once "
        "`server.request_timeout_seconds` has passed.",
    ),
    "idempotency-key-incomplete": (
        "Request under this key stopped half-way",
        "The first request with this Idempotency-Key died after saving part of its effect and "
        "before its answer was stored; repeating it could do that part twice. Check the "
        "resources it touches, then go on with a new key.",
    ),
    "provider-unavailable": (
        "Payment processor unavailable",
        "The payment processor could not be reached or refused the request; nothing was written.",
    ),
    "retry-later": (
        "Try again shortly",
        "The request is being handled by another worker, or its effect is not visible yet; "
        "nothing was committed by this answer. Send it again after `Retry-After` seconds.",
    ),
    "service-unavailable": ("Service unavailable", "A dependency (such as the database) is down."),
    "payload-too-large": (
        "Payload too large",
        "The request body is larger than accepted: 1 MiB, or 256 KiB for a payment processor "
        "webhook; `detail` names the limit. Nothing was read past it, nothing written.",
    ),
    "rate-unavailable": (
        "Exchange rate unavailable",
        "A fiat-priced plan needs a fresh rate and none could be had; nothing was written.",
    ),
    "gap-limit-reached": (
        "On-chain gap limit reached",
        "Too many unused on-chain addresses in a row; raise onchain.gap_limit or wait.",
    ),
    "invalid-destination": (
        "Invalid payout destination",
        "The destination is not a Lightning Address, LNURL-pay code, BOLT11 invoice for the "
        "payout amount, or a bitcoin address of the configured network.",
    ),
    "insufficient-balance": (
        "Insufficient balance",
        "The payout is larger than the affiliate's available balance (commissions still in "
        "the hold period are not yet available); nothing was written.",
    ),
    "below-minimum": (
        "Below the payout minimum",
        "Payouts start at `payouts.min_sats`; nothing was written.",
    ),
    "terms-not-accepted": (
        "Affiliate terms not accepted",
        "The affiliate must accept the current affiliate terms before their first payout.",
    ),
    "rate-limited": (
        "Too many requests",
        "Over a rate limit (`api.rate_limit`: per API key and per client IP; `limit` names "
        "which). Wait `Retry-After` seconds; the `RateLimit` and `RateLimit-Policy` headers "
        "tell the limits and what is left of them.",
    ),
    "internal-error": ("Internal error", "Something failed on our side; it has been logged."),
    "bad-request": ("Bad request", "The request cannot be processed."),
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    title = PROBLEM_TYPES.get(code, (code.replace("-", " ").capitalize(), ""))[0]
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _field(loc: tuple[Any, ...], body: Any, error_type: str) -> str:
    """The field as the client wrote it. For a value that may take several shapes (an
    ``external_id`` is a number or a string) pydantic adds to the path the name of each
    shape it tried ("constrained-int"), which is no field of the request: a step of the
    path that the body does not have is left out, but for the last one of a missing field."""
    if len(loc) < 2 or loc[0] != "body" or not isinstance(body, dict):
        return _loc(loc)
    value: Any = body
    parts: list[str] = []
    steps = loc[1:]
    for index, step in enumerate(steps):
        in_object = isinstance(value, dict) and isinstance(step, str) and step in value
        in_list = isinstance(value, list) and type(step) is int and 0 <= step < len(value)
        if in_object or in_list:
            value = value[step]
        elif index == len(steps) - 1 and error_type == "missing":
            value = None
        else:
            continue  # one of a union's shapes, not a field
        parts.append(str(step))
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, RetryLater):
            headers = {"Retry-After": str(exc.retry_after_seconds)}
        return problem(
            exc.status,
            exc.code,
            exc.detail,
            instance=request.url.path,
            headers=headers,
            # The RFC's own members are never overwritten by an extension of the same name.
            **{k: v for k, v in exc.extensions.items() if k not in RESERVED_MEMBERS},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            first = next(e for e in errors if e.get("type") == "json_invalid")
            return problem(
                400,
                "malformed-request",
                f"the body is not valid JSON: {first.get('ctx', {}).get('error', 'parse error')}",
                instance=request.url.path,
            )
        fields = [
            {
                "field": _field(tuple(e["loc"]), exc.body, e["type"]),
                "message": e["msg"],
                "type": e["type"],
            }
            for e in errors
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        content_type = request.headers.get("content-type", "")
        if _body_not_an_object(errors) and not _is_json(content_type):
            # `curl -d` sends a form's content type: FastAPI then reads no JSON at all.
            sent = f"Content-Type {content_type}" if content_type else "no Content-Type"
            summary = (
                "the body must be a JSON object sent with Content-Type: application/json "
                f"(this one came with {sent})"
            )
        return problem(422, "validation-failed", summary, instance=request.url.path, errors=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            401: "unauthorized",
            403: "forbidden",
            404: "not-found",
            405: "method-not-allowed",
            413: "payload-too-large",
        }.get(exc.status_code, "bad-request")
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        headers = dict(exc.headers or {})
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return problem(400, "malformed-request", unreadable, instance=request.url.path)
        if exc.status_code == 404 and detail == "Not Found":
            page = _not_found_page(request)
            if page is not None:
                return page
            detail = f"nothing at {request.url.path}; see /docs for the API"
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request.scope) or headers.get("Allow", "")
            detail = f"{request.method} is not allowed here; this URL takes {headers['Allow']}"
        return problem(exc.status_code, code, detail, instance=request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500, "internal-error", "internal error; see the server log", instance=request.url.path
        )


def _not_found_page(request: Request, *, broken_link: bool = False) -> Response | None:
    """A browser that follows a wrong link gets the site's not-found page, not JSON (404;
    ``broken_link``: a link garbled in copying, 400); None for a program, and anywhere under
    /api/."""
    # Imported here: the pages import the API's dependencies, which import this module.
    from satshare.api import texts as web
    from satshare.api.pages import page_language, render, wants_html
    from satshare.i18n import translate

    if request.url.path.startswith("/api/") or not wants_html(request):
        return None
    language = page_language(request)
    if broken_link:
        title, text, status_code = web.BROKEN_LINK_TITLE, web.BROKEN_LINK_PAGE, 400
    else:
        title, text, status_code = web.NOT_FOUND_TITLE, web.NOT_FOUND_PAGE, 404
    return render(
        request,
        "not_found.html",
        status_code=status_code,
        language=language,
        title=title,
        message=translate(language, text),
    )


def _body_not_an_object(errors: Iterable[Any]) -> bool:
    return any(
        tuple(e.get("loc", ())) == ("body",)
        and e.get("type") in ("model_attributes_type", "dict_type")
        for e in errors
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    """What FastAPI's bare "There was an error parsing the body" (a 400 raised from the
    decoding error) was, in words a client can act on; None for any other 400."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"the body is not UTF-8 text (byte 0x{cause.object[cause.start]:02x} at offset "
            f"{cause.start}); send JSON encoded as UTF-8"
        )
    if isinstance(cause, RecursionError):
        return "the body's JSON is nested too deeply to read"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        # Python reads no integer of more digits than this (a guard against slow parsing).
        return (
            f"a number in the body has more than {sys.get_int_max_str_digits()} digits; "
            "ids and amounts are 64-bit integers"
        )
    return f"the body cannot be read as JSON ({type(cause).__name__})"


def _matching_routes(routes: Iterable[BaseRoute], scope: Scope) -> Iterator[tuple[Any, Scope]]:
    """The innermost routes whose path template matches the request, whatever its method,
    each with its child scope (which holds the path parameters)."""
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        # Recent FastAPI versions include a router as one route that matches for all of its
        # own; older ones copy each route in.
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        if nested is not None:
            yield from _matching_routes(nested, scope)
        else:
            yield route, child


def allowed_methods(scope: Scope) -> str:
    """The methods some route takes at this path (for ``Allow``): with one route per method,
    the route Starlette picked for its 405 knows only its own."""
    methods: set[str] = set()
    for route, _ in _matching_routes(scope["app"].routes, scope):
        methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _nul_parameters(scope: Scope) -> list[str]:
    """The names of the path and query parameters that hold a NUL character."""
    names: list[str] = []
    if "\x00" in scope["path"]:
        for _, child in _matching_routes(scope["app"].routes, scope):
            params = child.get("path_params", {})
            names.extend(name for name, value in params.items() if "\x00" in str(value))
            break
        names = names or ["path"]
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        # Decoded as Starlette decodes it for the routes.
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                names.append(name)
    return names


class RefuseNulMiddleware:
    """A NUL character anywhere in the URL is a 422 naming the parameter (for a browser
    outside /api/, the site's not-found or broken-link page), before routing,
    authentication or an Idempotency-Key record. PostgreSQL can neither store nor compare
    one (SQLite can), so this keeps the answer the same on both, and never a 500. Bodies are
    covered by ``StrictModel``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        names = _nul_parameters(scope) if scope["type"] == "http" else []
        if not names:
            await self.app(scope, receive, send)
            return
        # A browser on a garbled link (outside /api/) gets the site's page in its language:
        # no page has a NUL in its address (404); one in the query is a broken link (400).
        page = _not_found_page(Request(scope), broken_link="\x00" not in scope["path"])
        if page is not None:
            await page(scope, receive, send)
            return
        errors = [
            {"field": name, "message": NUL_MESSAGE, "type": "nul_character"} for name in names
        ]
        response = problem(
            422,
            "validation-failed",
            "; ".join(f"{name}: {NUL_MESSAGE}" for name in names),
            instance=scope["path"].replace("\x00", "%00"),
            errors=errors,
        )
        await response(scope, receive, send)


#: The largest request body read, anywhere (1 MiB). The API's bodies are small JSON: the
#: largest valid one, a broadcast (two texts of 20,000 characters, a photo of 2,048 and
#: eight buttons), is 0.72 MB even with every character written as a surrogate-pair ``\u``
#: escape, 0.24 MB in UTF-8 (tests/test_body_limit.py works it out for every body). Routes
#: with a smaller cap of their own keep it (the processor webhooks: 256 KiB); this is the
#: outer guard, before anything holds the body.
MAX_BODY_BYTES = 1024 * 1024


def too_large(limit: int, declared: str | None = None) -> str:
    """A 413's detail: the limit, and the length the request declared when it did."""
    detail = f"the body is at most {limit} bytes"
    if declared is not None:
        detail += f"; this one declares {declared}"
    return detail


def _body_too_large(scope: Scope, limit: int, declared: str | None) -> JSONResponse:
    instance = scope["path"].replace("\x00", "%00")
    return problem(413, "payload-too-large", too_large(limit, declared), instance=instance)


def declared_length(scope: Scope) -> tuple[str, int] | None:
    """The Content-Length header (as sent, and its value), when it is a number."""
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if not (text.isascii() and text.isdigit()):
                return None  # the server refuses those; the body is counted anyway
            # Past 18 digits it is over any limit (and int() refuses thousands of them).
            return text, int(text) if len(text) <= 18 else 10**18
    return None


class LimitBodyMiddleware:
    """A request body over ``limit`` bytes is a 413 before anything holds it.

    A declared Content-Length over the limit is refused up front: no route, authentication,
    rate-limit count or Idempotency-Key record. A body without one (chunked) is counted as
    it streams through ``receive``; the message that passes the limit is not handed on.
    Instead the app is told the client went away (``http.disconnect``: it reads no more, as
    ``Request.stream()`` raises ``ClientDisconnect``) and, unless the app's answer has begun,
    this middleware answers the 413 at once and drops whatever the app sends after (FastAPI's
    400 for an unreadable body, say). A ``ClientDisconnect`` it caused ends there, without
    a 500 or a traceback. Bodies the app never reads are never counted nor held: the server
    discards them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = declared_length(scope)
        if declared is not None and declared[1] > limit:
            await _body_too_large(scope, limit, declared[0])(scope, receive, send)
            return
        received = 0
        started = False  # an answer has begun: the app's or ours
        refused = False  # the body passed the limit: the app reads no more of it
        answered = False  # and the 413 went out instead of the app's answer

        async def counting_receive() -> Message:
            nonlocal received, started, refused, answered
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        started = answered = True
                        await _body_too_large(scope, limit, None)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 was the answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except ClientDisconnect:
            if not answered:
                raise


_EXAMPLES = {
    400: ("malformed-request", "the body is not valid JSON: Expecting value"),
    401: ("unauthorized", "missing API key: send Authorization: Bearer <key>"),
    403: ("forbidden", "this API key lacks the 'admin' scope"),
    404: ("not-found", "user 42 does not exist"),
    409: ("conflict", "the request conflicts with the current state"),
    413: (
        "payload-too-large",
        f"the body is at most {MAX_BODY_BYTES} bytes; this one declares 31457280",
    ),
    422: ("validation-failed", "user_id: Input should be a valid integer"),
    502: ("provider-unavailable", "could not create the invoice at btcpay: did not answer"),
    503: ("service-unavailable", "the database is not reachable"),
}


def openapi_responses(
    *statuses: int, details: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """Problem responses for the OpenAPI document, each with an example (whose ``detail``
    ``details`` may give, where a route's answer differs from the usual one)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, detail = _EXAMPLES[status]
        detail = (details or {}).get(status, detail)
        responses[status] = {
            "description": PROBLEM_TYPES[code][0],
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": {
                        "type": f"/problems/{code}",
                        "title": PROBLEM_TYPES[code][0],
                        "status": status,
                        "detail": detail,
                    },
                }
            },
        }
    return responses


def document_problems(schema: dict[str, Any], *, idempotent_post: Callable[[str], bool]) -> None:
    """Add to every operation of an OpenAPI document the problem answers any operation of
    its kind can give, besides the ones its route lists:

    - 422 everywhere (a NUL in the URL; FastAPI's own 422 entry, which describes its JSON
      error list, is replaced: validation errors are problems too);
    - 413 everywhere: a body over ``MAX_BODY_BYTES`` is refused before routing, also sent
      to an operation that takes none;
    - 401 and 403 with an API key;
    - 400 and 422 with a body (not JSON; a field is wrong; a route's own smaller size cap
      is in its 413, which its route lists);
    - 400 and 409 on a POST that honours ``Idempotency-Key`` (a malformed key; the key reused
      with another request, or its first request still running).

    ``idempotent_post(path)`` tells which POSTs honour the header."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            statuses = {413, 422}
            if operation.get("security"):
                statuses |= {401, 403}
            if "requestBody" in operation:
                statuses |= {400, 422}
            if method == "post" and idempotent_post(path):
                statuses |= {400, 409}
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status, response in openapi_responses(*statuses).items():
                responses.setdefault(str(status), response)
            operation["responses"] = dict(sorted(responses.items()))
    components = schema.get("components", {}).get("schemas", {})
    text = json.dumps(schema.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            components.pop(unused, None)
