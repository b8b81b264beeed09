"""Request-scoped dependencies: the services (one ``Annotated`` dependency each), API key
authentication, pagination, and bounded reads of raw bodies."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.routing import BaseRoute

from satshare.aftercommit import CommitListener
from satshare.api.ports import SandboxPages
from satshare.apikeys import flows as apikeys
from satshare.apikeys.service import grants
from satshare.clock import Clock
from satshare.config import Settings
from satshare.db import Database
from satshare.errors import BadRequest, Forbidden, PayloadTooLarge, Unauthorized
from satshare.payments.flows import PaymentsContext
from satshare.payouts.flows import PayoutsContext
from satshare.schemas import MAX_ID, PageOf

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
    #: The emulators' mounts and root routes (sandbox mode only).
    sandbox_routes: Sequence[BaseRoute] = ()
    #: What the sandbox pages use; None outside sandbox mode.
    sandbox_pages: SandboxPages | None = None


def services_of(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


def _settings(request: Request) -> Settings:
    return services_of(request).settings


def _db(request: Request) -> Database:
    return services_of(request).db


def _clock(request: Request) -> Clock:
    return services_of(request).clock


def _payments(request: Request) -> PaymentsContext:
    return services_of(request).payments


def _payouts(request: Request) -> PayoutsContext:
    return services_of(request).payouts


def _after_commit(request: Request) -> CommitListener:
    return services_of(request).after_commit


def _seal_ledger(request: Request) -> Callable[[], Awaitable[int]]:
    return services_of(request).seal_ledger


def _sandbox(request: Request) -> SandboxPages | None:
    return services_of(request).sandbox_pages


SettingsDep = Annotated[Settings, Depends(_settings)]
DbDep = Annotated[Database, Depends(_db)]
ClockDep = Annotated[Clock, Depends(_clock)]
PaymentsDep = Annotated[PaymentsContext, Depends(_payments)]
PayoutsDep = Annotated[PayoutsContext, Depends(_payouts)]
AfterCommitDep = Annotated[CommitListener, Depends(_after_commit)]
SealLedger = Callable[[], Awaitable[int]]
SealLedgerDep = Annotated[SealLedger, Depends(_seal_ledger)]
#: None outside sandbox mode.
SandboxDep = Annotated[SandboxPages | None, Depends(_sandbox)]


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str
    scopes: tuple[str, ...]

    @property
    def author(self) -> str:
        """Who did it, as recorded on ledger entries, terms and payouts: the key's id and name."""
        return f"api-key:{self.key_id}:{self.name}"


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        db: DbDep,
        clock: ClockDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> Principal:
        if credentials is None:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        key = await apikeys.authenticate(db, credentials.credentials)
        if key is None:
            raise Unauthorized("invalid or revoked API key")
        scopes = tuple(key.scopes.split(","))
        if not grants(scopes, scope):
            raise Forbidden(
                f"this API key lacks the {scope!r} scope (it has: {', '.join(scopes)})",
                required_scope=scope,
            )
        now = time.monotonic()
        if now - _last_touch.get(key.id, -TOUCH_INTERVAL) >= TOUCH_INTERVAL:
            _last_touch[key.id] = now
            await apikeys.touch(db, key.id, clock.now())
        return Principal(key_id=key.id, name=key.name, scopes=scopes)

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


def page_params(
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
InvoiceIdPath = Annotated[
    str, Path(min_length=1, max_length=40, examples=["inv_3x9Jk2mQp1Zr8LwT5vYbNa"])
]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes: a declared
    Content-Length is believed up front, a chunked body is counted as it streams in, so no
    more than ``limit`` bytes are ever held."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is at most {limit} bytes; this one declares {declared}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is at most {limit} bytes")
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
