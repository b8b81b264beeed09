from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from satshare.api.deps import (
    AdminKey,
    ClockDep,
    DbDep,
    IdPath,
    Page,
    ReadKey,
    SealLedgerDep,
)
from satshare.api.presenters import transaction_out
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.errors import Conflict, InvalidRequest
from satshare.ledger import flows, service
from satshare.ledger.models import EntryKind
from satshare.ledger.schemas import (
    TransactionCreate,
    TransactionMemoEdit,
    TransactionOut,
    TransactionReverse,
)
from satshare.schemas import MAX_ID, PageOf

router = APIRouter(
    route_class=StrictJSONRoute, prefix="/api/v1/transactions", tags=["transactions"]
)

APPEND_ONLY = (
    "ledger entries are append-only: only the memo can be edited. Corrections are reversals: "
    "POST /api/v1/transactions/{id}/reversal, then post the correct entry"
)


@router.get(
    "",
    response_model=PageOf[TransactionOut],
    summary="List ledger entries with their postings",
    responses=openapi_responses(400, 401, 403, 422),
)
async def list_transactions(
    db: DbDep,
    _: ReadKey,
    page: Page,
    user_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Entries touching this user's accounts.")
    ] = None,
    kind: Annotated[EntryKind | None, Query()] = None,
    invoice_id: Annotated[str | None, Query(max_length=40)] = None,
) -> PageOf[TransactionOut]:
    views = await flows.list_entries(
        db,
        limit=page.fetch,
        before_id=page.before_id,
        user_id=user_id,
        kind=kind,
        invoice_id=invoice_id,
    )
    items = [transaction_out(view) for view in views[: page.limit]]
    return page.of(len(views), items, lambda item: item.transaction_id)


@router.post(
    "",
    status_code=201,
    response_model=TransactionOut,
    summary="Record a balanced manual adjustment (admin)",
    description="Postings must sum to zero (debits positive, credits negative). "
    "Honours `Idempotency-Key`.",
    responses=openapi_responses(400, 401, 403, 422),
)
async def create_transaction(
    db: DbDep,
    clock: ClockDep,
    seal_ledger: SealLedgerDep,
    principal: AdminKey,
    body: TransactionCreate,
) -> TransactionOut:
    legs = [service.Leg(p.account, p.amount_sats) for p in body.postings]
    view = await flows.post_adjustment(
        db, seal_ledger, legs, memo=body.memo, author=principal.author, now=clock.now()
    )
    return transaction_out(view)


@router.get(
    "/{transaction_id}",
    response_model=TransactionOut,
    summary="Get a ledger entry",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_transaction(db: DbDep, _: ReadKey, transaction_id: IdPath) -> TransactionOut:
    return transaction_out(await flows.get_entry(db, transaction_id))


@router.put(
    "/{transaction_id}",
    response_model=TransactionOut,
    summary="Edit a ledger entry's memo (admin); amounts can never change",
    description="Only `memo` may be sent. Any other field gets 409: corrections are reversals.",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def update_transaction(
    db: DbDep,
    clock: ClockDep,
    principal: AdminKey,
    transaction_id: IdPath,
    body: TransactionMemoEdit,
) -> TransactionOut:
    extra = sorted(body.model_extra or {})
    if extra:
        raise Conflict(APPEND_ONLY, refused_fields=extra)
    memo = body.memo
    if memo is None:
        raise InvalidRequest("memo must be a string of 1 to 500 characters", field="memo")
    view = await flows.add_memo(db, transaction_id, memo, author=principal.author, now=clock.now())
    return transaction_out(view)


@router.post(
    "/{transaction_id}/reversal",
    status_code=201,
    response_model=TransactionOut,
    summary="Reverse a ledger entry with an exactly opposite entry (admin)",
    responses=openapi_responses(401, 403, 404, 409, 422),
)
async def reverse_transaction(
    db: DbDep,
    clock: ClockDep,
    seal_ledger: SealLedgerDep,
    principal: AdminKey,
    transaction_id: IdPath,
    body: Annotated[
        TransactionReverse | None,
        Body(
            openapi_examples={
                "with memo": {"summary": "Say why", "value": {"memo": "Entered twice"}},
                "empty": {"summary": "No body", "value": {}},
            }
        ),
    ] = None,
) -> TransactionOut:
    view = await flows.reverse(
        db,
        seal_ledger,
        transaction_id,
        memo=body.memo if body else None,
        author=principal.author,
        now=clock.now(),
    )
    return transaction_out(view)
