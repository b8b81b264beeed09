"""Request-scoped dependencies: the services (one ``Annotated`` dependency each), API key
authentication, pagination, and bounded reads of raw bodies."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, FastAPI, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.routing import BaseRoute

from satshare.aftercommit import CommitListener
from satshare.api.audit import STATE_KEY as AUDITED
from satshare.api.ports import JobQueue, SandboxPages
from satshare.api.problems import declared_length, too_large
from satshare.apikeys import flows as apikeys
from satshare.apikeys.service import grants
from satshare.clock import Clock
from satshare.config import Settings
from satshare.db import Database
from satshare.errors import BadRequest, Forbidden, PayloadTooLarge, Unauthorized
from satshare.payments.flows import PaymentsContext
from satshare.payouts.flows import PayoutsContext
from satshare.ratelimits.service import RateLimiter
from satshare.schemas import MAX_ID, PageOf
from satshare.webhooks_out.flows import WebhooksContext

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `satshare api-key create`, sent as `Authorization: Bearer ss_...`",
)

#: Seconds between writes of a key's last_used_at (a write per request would be wasteful).
TOUCH_INTERVAL = 60.0
_last_touch: dict[int, float] = {}


@dataclass(frozen=True, slots=True)
class ApiServices:
    """Everything the API's routes may use, given to ``create_app`` by the composition root."""

    settings: Settings
    db: Database
    clock: Clock
    payments: PaymentsContext
    payouts: PayoutsContext
    #: Told what a request's commits produced (the idempotency middleware holds commits).
    after_commit: CommitListener
    #: Chains every queued ledger entry now (the sealer's flush): answers carry seq and hash.
    seal_ledger: Callable[[], Awaitable[int]]
    #: Outgoing webhooks (#14): endpoints, their delivery log, replays.
    webhooks: WebhooksContext
    #: The API's rate limits (#14); the admin panel's login uses ``check_login``.
    rate_limiter: RateLimiter
    #: The emulators' mounts and root routes (sandbox mode only).
    sandbox_routes: Sequence[BaseRoute] = ()
    #: What the sandbox pages use; None outside sandbox mode.
    sandbox_pages: SandboxPages | None = None
    #: The PostgreSQL job queue ``serve`` works or feeds (``/ready``, ``/metrics``); None
    #: where this process reaches none (SQLite runs its jobs without a queue).
    job_queue: JobQueue | None = None
    #: Mounts the web admin panel at /admin (issue #12); the composition root builds it, so
    #: the API imports no other adapter. None: no panel (tests of the API alone).
    mount_panel: Callable[[FastAPI], object] | None = None


def services_of(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


# The dependencies below (and every other one that does not wait) are ``async def``:
# FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per dependency
# per request (three for a payment webhook) that cost more CPU than the route (#15).


async def _settings(request: Request) -> Settings:
    return services_of(request).settings


async def _db(request: Request) -> Database:
    return services_of(request).db


async def _clock(request: Request) -> Clock:
    return services_of(request).clock


async def _payments(request: Request) -> PaymentsContext:
    return services_of(request).payments


async def _payouts(request: Request) -> PayoutsContext:
    return services_of(request).payouts


async def _after_commit(request: Request) -> CommitListener:
    return services_of(request).after_commit


async def _seal_ledger(request: Request) -> Callable[[], Awaitable[int]]:
    return services_of(request).seal_ledger


async def _webhooks(request: Request) -> WebhooksContext:
    return services_of(request).webhooks


async def _sandbox(request: Request) -> SandboxPages | None:
    return services_of(request).sandbox_pages


async def _job_queue(request: Request) -> JobQueue | None:
    return services_of(request).job_queue


SettingsDep = Annotated[Settings, Depends(_settings)]
DbDep = Annotated[Database, Depends(_db)]
ClockDep = Annotated[Clock, Depends(_clock)]
PaymentsDep = Annotated[PaymentsContext, Depends(_payments)]
PayoutsDep = Annotated[PayoutsContext, Depends(_payouts)]
AfterCommitDep = Annotated[CommitListener, Depends(_after_commit)]
SealLedger = Callable[[], Awaitable[int]]
SealLedgerDep = Annotated[SealLedger, Depends(_seal_ledger)]
WebhooksDep = Annotated[WebhooksContext, Depends(_webhooks)]
#: None outside sandbox mode.
SandboxDep = Annotated[SandboxPages | None, Depends(_sandbox)]
#: None where this process reaches no job queue.
JobQueueDep = Annotated[JobQueue | None, Depends(_job_queue)]


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str
    scopes: tuple[str, ...]
    #: A key bound to a platform reaches only that platform's users (#14; api/platforms.py).
    platform: str | None = None

    @property
    def author(self) -> str:
        """Who did it, as recorded on ledger entries, terms and payouts: the key's id and name."""
        return f"api-key:{self.key_id}:{self.name}"


async def principal_for(
    request: Request, db: Database, clock: Clock, token: str
) -> Principal | None:
    """The valid API key ``token`` names, or None; read once per request (kept on
    ``request.state``: the platform guard and the scope check both ask)."""
    cached: tuple[str, Principal | None] | None = getattr(request.state, "principal", None)
    if cached is not None and cached[0] == token:
        return cached[1]
    key = await apikeys.authenticate(db, token)
    principal = None
    if key is not None:
        now = time.monotonic()
        if now - _last_touch.get(key.id, -TOUCH_INTERVAL) >= TOUCH_INTERVAL:
            _last_touch[key.id] = now
            await apikeys.touch(db, key.id, clock.now())
        principal = Principal(
            key_id=key.id,
            name=key.name,
            scopes=tuple(key.scopes.split(",")),
            platform=key.platform,
        )
    request.state.principal = (token, principal)
    return principal


async def key_of_request(
    request: Request,
    db: DbDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal | None:
    """The request's valid API key, or None."""
    if credentials is None:
        return None
    return await principal_for(request, db, clock, credentials.credentials)


async def authenticated(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    principal: Annotated[Principal | None, Depends(key_of_request)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    if principal is None:
        raise Unauthorized("invalid or revoked API key")
    return principal


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticated)]
    ) -> Principal:
        if not grants(principal.scopes, scope):
            raise Forbidden(
                f"this API key lacks the {scope!r} scope (it has: {', '.join(principal.scopes)})",
                required_scope=scope,
            )
        if scope == "admin":  # admin actions go to the audit log (api/audit.py)
            setattr(request.state, AUDITED, principal)
        return principal

    return dependency


ReadKey = Annotated[Principal, Depends(require_scope("read"))]
WriteKey = Annotated[Principal, Depends(require_scope("write"))]
AdminKey = Annotated[Principal, Depends(require_scope("admin"))]


T = TypeVar("T")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        prefix, _, value = text.partition(":")
        # isdigit() alone lets through digits int() refuses ("²") and ids no BIGINT holds.
        if prefix != "id" or not (value.isascii() and value.isdigit()) or int(value) > MAX_ID:
            raise ValueError(text)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(
            "cursor is not valid; pass the next_cursor value from the previous page unchanged"
        ) from None


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    before_id: int | None

    @property
    def fetch(self) -> int:
        """Rows to read: one more than a page tells whether a next page exists."""
        return self.limit + 1

    def of(self, fetched: int, items: list[T], id_of: Callable[[T], int]) -> PageOf[T]:
        """The page of ``items`` (at most ``limit``), with a cursor when more were fetched."""
        more = fetched > self.limit
        return PageOf[T](items=items, next_cursor=encode_cursor(id_of(items[-1])) if more else None)


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page (1-200).")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=64, description="Opaque cursor from the previous page's `next_cursor`."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, before_id=decode_cursor(cursor))


Page = Annotated[PageParams, Depends(page_params)]


IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
#: Our invoice ids (invoices.id is VARCHAR(40)).
INVOICE_ID_MAX = 40
InvoiceIdPath = Annotated[
    str,
    Path(min_length=1, max_length=INVOICE_ID_MAX, examples=["inv_3x9Jk2mQp1Zr8LwT5vYbNa"]),
]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes: a declared
    Content-Length is believed up front, a chunked body is counted as it streams in, so no
    more than ``limit`` bytes are ever held."""
    declared = declared_length(request.scope)
    if declared is not None and declared[1] > limit:
        raise PayloadTooLarge(too_large(limit, declared[0]))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def optional_body(model: type[BaseModel], summary: str) -> Any:
    """Body() for an optional JSON body, documented with the model's own first example
    (FastAPI drops the model's examples when the body may be omitted)."""
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict), f"{model.__name__} has no examples"
    examples = extra["examples"]
    assert isinstance(examples, list)
    return Body(openapi_examples={"example": {"summary": summary, "value": examples[0]}})
