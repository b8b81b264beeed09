"""Promo codes: create, list with usage stats, read, change or disable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from satshare.api.deps import AdminKey, ClockDep, DbDep
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.errors import BadRequest, InvalidRequest
from satshare.promos import flows, service
from satshare.promos.models import CODE_MAX_LENGTH, PromoCode, PromoKind
from satshare.promos.repository import Stats
from satshare.promos.schemas import PromoCreate, PromoOut, PromoStats, PromoUpdate
from satshare.schemas import PageOf

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/promo-codes", tags=["promo codes"])

CodePath = Annotated[str, Path(min_length=1, max_length=CODE_MAX_LENGTH, examples=["SPRING20"])]


def promo_out(p: PromoCode, stats: Stats) -> PromoOut:
    return PromoOut(
        code=p.code,
        kind=p.kind,
        value=p.value,
        plans=p.plans,
        max_uses=p.max_uses,
        once_per_user=p.once_per_user,
        first_purchase_only=p.first_purchase_only,
        valid_from=p.valid_from,
        valid_until=p.valid_until,
        active=p.active,
        stats=PromoStats(
            uses=stats.uses,
            pending=stats.pending,
            revenue_sats=stats.revenue_sats,
            discount_sats=stats.discount_sats,
        ),
        created_by=p.created_by,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=PromoOut,
    summary="Create a promo code",
    description="A percent off, fixed sats off, or extra days, for some plans or all, with "
    "optional limits. Buyers give it as `promo_code` on `POST /api/v1/subscriptions`, on the "
    "checkout, or in the bot (`/start promo_<CODE>`). An existing code is 409. Honours "
    "`Idempotency-Key`.",
    responses=openapi_responses(400, 401, 403, 409, 422),
)
async def create_promo(db: DbDep, clock: ClockDep, key: AdminKey, body: PromoCreate) -> PromoOut:
    spec = service.PromoSpec(
        code=service.normalise(body.code),
        kind=PromoKind(body.kind),
        value=body.value,
        plans=tuple(body.plans) if body.plans is not None else None,
        max_uses=body.max_uses,
        once_per_user=body.once_per_user,
        first_purchase_only=body.first_purchase_only,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )
    now = clock.now()
    return promo_out(*await flows.create(db, spec, key.author, now))


@router.get(
    "",
    response_model=PageOf[PromoOut],
    summary="List promo codes with their usage",
    description="In the order of the codes (A to Z), not newest first: the cursor is the "
    "last code of the previous page.",
    responses=openapi_responses(400, 401, 403, 422),
)
async def list_promos(
    db: DbDep,
    clock: ClockDep,
    _: AdminKey,
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page (1-200).")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=CODE_MAX_LENGTH, description="The `next_cursor` of the previous page."),
    ] = None,
) -> PageOf[PromoOut]:
    if cursor is not None and not service.CODE_PATTERN.match(cursor):
        # Any text is a place in the order of the codes: a wrong cursor would read as the end.
        raise BadRequest(
            "cursor is not valid; pass the next_cursor value from the previous page unchanged"
        )
    rows = await flows.listing(db, limit=limit + 1, after_code=cursor, now=clock.now())
    items = [promo_out(p, stats) for p, stats in rows[:limit]]
    more = len(rows) > limit
    return PageOf[PromoOut](items=items, next_cursor=items[-1].code if more else None)


@router.get(
    "/{code}",
    response_model=PromoOut,
    summary="A promo code with its usage",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_promo(db: DbDep, clock: ClockDep, _: AdminKey, code: CodePath) -> PromoOut:
    return promo_out(*await flows.show(db, code, clock.now()))


@router.put(
    "/{code}",
    response_model=PromoOut,
    summary="Change or disable a promo code",
    description='Fields given are changed; `{"active": false}` disables the code at once '
    "(invoices already made with it keep their price). Kind and value never change.",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def update_promo(
    db: DbDep, clock: ClockDep, _: AdminKey, code: CodePath, body: PromoUpdate
) -> PromoOut:
    changes = body.model_dump(exclude_unset=True)
    for name in ("active", "once_per_user", "first_purchase_only"):
        if name in changes and changes[name] is None:
            raise InvalidRequest(f"{name} is true or false", field=name)
    if not changes:
        raise InvalidRequest("nothing to change: give at least one field")
    return promo_out(*await flows.change(db, code, changes, clock.now()))
