from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from satshare.api.deps import (
    AdminKey,
    ClockDep,
    IdPath,
    IdQuery,
    Page,
    PayoutsDep,
    ReadKey,
    WriteKey,
    optional_body,
)
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.payouts import export, flows, models, service
from satshare.payouts.destinations import parse
from satshare.payouts.models import Payout
from satshare.payouts.schemas import (
    DESTINATION_HELP,
    PayoutCancel,
    PayoutCreate,
    PayoutMarkFailed,
    PayoutMarkPaid,
    PayoutOut,
    PayoutQuote,
    PayoutStatus,
)
from satshare.schemas import PageOf

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/payouts", tags=["payouts"])


def payout_out(p: Payout) -> PayoutOut:
    return PayoutOut(
        payout_id=p.id,
        user_id=p.user_id,
        status=p.status,
        amount_sats=p.amount_sats,
        fee_sats=p.fee_sats,
        send_sats=p.send_sats,
        network_fee_sats=p.network_fee_sats,
        destination_kind=p.destination_kind,
        destination=p.destination,
        provider=p.provider,
        proof=p.proof,
        failure=p.failure,
        instant=p.instant,
        requested_by=p.requested_by,
        approved_by=p.approved_by,
        created_at=p.created_at,
        updated_at=p.updated_at,
        completed_at=p.completed_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=PayoutOut,
    summary="Request a payout of an affiliate's balance",
    description="The amount is held from the balance at once and sent by the configured "
    "provider (or waits for an admin above `payouts.auto_approve_max_sats`). Over-balance, "
    "under-minimum, terms not accepted and invalid destinations are 422 with nothing written. "
    "Honours `Idempotency-Key`.",
    responses=openapi_responses(400, 401, 403, 422),
)
async def create_payout(payouts: PayoutsDep, principal: WriteKey, body: PayoutCreate) -> PayoutOut:
    payout = await flows.request_payout(
        payouts,
        user_id=body.user_id,
        amount_sats=body.amount_sats,
        destination=body.destination,
        requested_by=principal.author,
    )
    return payout_out(payout)


@router.get(
    "",
    response_model=PageOf[PayoutOut],
    summary="List payouts (newest first)",
    responses=openapi_responses(400, 401, 403, 422),
)
async def list_payouts(
    payouts: PayoutsDep,
    principal: ReadKey,
    page: Page,
    user_id: IdQuery = None,
    status: Annotated[PayoutStatus | None, Query()] = None,
) -> PageOf[PayoutOut]:
    rows = await flows.list_payouts(
        payouts,
        limit=page.fetch,
        before_id=page.before_id,
        user_id=user_id,
        status=models.PayoutStatus(status) if status else None,
        platform=principal.platform,  # a bound key sees its platform's only (#14)
    )
    items = [payout_out(p) for p in rows[: page.limit]]
    return page.of(len(rows), items, lambda item: item.payout_id)


@router.get(
    "/quote",
    response_model=PayoutQuote,
    summary="What a payout would send, and the fee, before confirming",
    responses=openapi_responses(401, 403, 422),
)
async def quote_payout(
    clock: ClockDep,
    payouts: PayoutsDep,
    _: ReadKey,
    amount_sats: Annotated[int, Query(ge=1, le=2_100_000_000_000_000)],
    destination: Annotated[str, Query(min_length=1, max_length=2048, description=DESTINATION_HELP)],
) -> PayoutQuote:
    policy = payouts.policy
    kind = parse(destination, policy.network, now=clock.now()).kind
    priced = service.quote(policy, amount_sats, kind)
    return PayoutQuote(
        amount_sats=priced.amount_sats,
        fee_sats=priced.fee_sats,
        send_sats=priced.send_sats,
        fee_paid_by="affiliate" if priced.fee_sats else "owner",
        destination_kind=kind.value,
        needs_approval=amount_sats > policy.auto_approve_max_sats,
    )


@router.get(
    "/export",
    response_class=PlainTextResponse,
    summary="Approved payouts to pay by hand (payouts.provider: manual)",
    description="`format=csv`: every approved manual payout. `format=batch`: on-chain ones as "
    "`address, amount_btc` lines for a wallet's pay-to-many (Sparrow, Electrum). Pay them, "
    "then record each with `POST /api/v1/payouts/{payout_id}/mark-paid`.",
    responses={**openapi_responses(401, 403, 422), 200: {"content": {"text/csv": {}}}},
)
async def export_payouts(
    payouts: PayoutsDep,
    _: AdminKey,
    format: Annotated[Literal["csv", "batch"], Query()] = "csv",
) -> PlainTextResponse:
    rows = await flows.awaiting_manual_payment(payouts)
    if format == "batch":
        return PlainTextResponse(export.as_batch(rows))
    return PlainTextResponse(export.as_csv(rows), media_type="text/csv")


@router.get(
    "/{payout_id}",
    response_model=PayoutOut,
    summary="Get one payout",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_payout(payouts: PayoutsDep, _: ReadKey, payout_id: IdPath) -> PayoutOut:
    return payout_out(await flows.get_payout(payouts, payout_id))


@router.post(
    "/{payout_id}/approve",
    response_model=PayoutOut,
    summary="Approve a payout that waits for an admin",
    responses=openapi_responses(401, 403, 404, 409, 422),
)
async def approve_payout(payouts: PayoutsDep, principal: AdminKey, payout_id: IdPath) -> PayoutOut:
    payout = await flows.approve(payouts, payout_id, principal.author)
    return payout_out(payout)


@router.post(
    "/{payout_id}/cancel",
    response_model=PayoutOut,
    summary="Cancel a payout that has not been sent; the amount returns to the balance",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def cancel_payout(
    payouts: PayoutsDep,
    principal: AdminKey,
    payout_id: IdPath,
    body: Annotated[PayoutCancel | None, optional_body(PayoutCancel, "Why it was canceled")] = None,
) -> PayoutOut:
    payout = await flows.cancel(payouts, payout_id, principal.author, body.reason if body else None)
    return payout_out(payout)


@router.post(
    "/{payout_id}/mark-paid",
    response_model=PayoutOut,
    summary="Record a payout the owner paid by hand",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def mark_payout_paid(
    payouts: PayoutsDep, principal: AdminKey, payout_id: IdPath, body: PayoutMarkPaid
) -> PayoutOut:
    payout = await flows.mark_paid(
        payouts,
        payout_id,
        body.proof,
        body.network_fee_sats,
        principal.author,
    )
    return payout_out(payout)


@router.post(
    "/{payout_id}/mark-failed",
    response_model=PayoutOut,
    summary="Declare an unknown payout not paid, after checking the provider",
    description="Only for a payout in state `unknown` (its provider call may have gone out "
    "and the provider has not said what happened). SatShare never releases such a payout on "
    "silence; an admin who has checked the provider (e.g. BTCPay lists no payout carrying its "
    "idempotency key) may. The amount returns to the affiliate's balance; the provider is "
    "still watched for 7 days, and if it reports the payout paid after all, the payout is "
    "recorded paid, the amount is taken back from the balance and admins are alerted.",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def mark_payout_failed(
    payouts: PayoutsDep, principal: AdminKey, payout_id: IdPath, body: PayoutMarkFailed
) -> PayoutOut:
    payout = await flows.release_unknown(payouts, payout_id, body.reason, principal.author)
    return payout_out(payout)
