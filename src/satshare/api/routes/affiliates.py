from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from satshare.affiliates import flows as affiliate_flows
from satshare.affiliates import stats
from satshare.affiliates.models import AffiliateTerms
from satshare.affiliates.schemas import (
    AffiliateBalance,
    AffiliateOut,
    AffiliateStatsOut,
    CustomTermsIn,
    CustomTermsOut,
    DestinationIn,
    DestinationOut,
    FunnelOut,
    LeaderboardNameIn,
    LeaderboardOut,
    LeaderOut,
    LevelOut,
    MonthEarningsOut,
    ProgramOut,
    ReferralClickIn,
    ReferralClickOut,
    ReferralStatsOut,
    SuspensionIn,
    SuspensionOut,
    TermsAcceptanceIn,
    TermsOut,
)
from satshare.api.deps import (
    AdminKey,
    ClockDep,
    DbDep,
    IdPath,
    PayoutsDep,
    ReadKey,
    SettingsDep,
    WriteKey,
)
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.clock import Clock
from satshare.db import Database
from satshare.errors import Conflict, NotFound
from satshare.payments import referrals
from satshare.payouts import flows as payout_flows
from satshare.payouts.flows import PayoutsContext
from satshare.payouts.overview import overview

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/affiliates", tags=["affiliates"])
program_router = APIRouter(route_class=StrictJSONRoute, tags=["affiliates"])


@program_router.get(
    "/api/v1/affiliate-program",
    response_model=ProgramOut,
    summary="The affiliate program's rules and terms text (public, no key)",
    responses=openapi_responses(503),
)
async def get_program(settings: SettingsDep, payout_context: PayoutsDep) -> ProgramOut:
    settings = settings
    policy = payout_context.policy
    return ProgramOut(
        share_bps=settings.affiliate.share_bps,
        levels=[LevelOut.model_validate(level) for level in settings.affiliate.levels],
        hold_days=settings.affiliate.hold_days,
        terms_version=settings.affiliate.terms_version,
        terms_text=settings.affiliate.terms_text,
        payout_min_sats=policy.min_sats,
        payout_lightning_fee_sats=policy.lightning_fee_sats,
        payout_onchain_fee_sats=policy.onchain_fee_sats,
        payout_provider=policy.provider,
        instant_lightning=policy.instant_lightning,
    )


async def affiliate_out(
    db: Database, clock: Clock, payout_context: PayoutsContext, user_id: int
) -> AffiliateOut:
    view = await overview(db, payout_context.program, user_id, clock.now())
    terms, balance, totals, stats = view.terms, view.balance, view.payouts, view.referrals
    suspension, accepted_at, destination = (
        view.suspension,
        view.terms_accepted_at,
        view.destination,
    )
    program = payout_context.program
    return AffiliateOut(
        user_id=user_id,
        terms=TermsOut.model_validate(terms),
        balance=AffiliateBalance(
            balance_sats=balance.balance_sats,
            available_sats=balance.available_sats,
            pending_sats=balance.pending_sats,
            total_earned_sats=balance.total_earned_sats,
            paid_out_sats=totals.paid_sats,
            in_payouts_sats=totals.in_flight_sats,
        ),
        referrals=ReferralStatsOut.model_validate(stats),
        suspension=SuspensionOut.model_validate(suspension) if suspension else None,
        terms_version=program.terms_version,
        terms_accepted_at=accepted_at,
        destination=DestinationOut.model_validate(destination) if destination else None,
    )


@router.get(
    "/{user_id}",
    response_model=AffiliateOut,
    summary="An affiliate's terms, balance, referrals, suspension and payout destination",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_affiliate(
    db: DbDep, clock: ClockDep, payout_context: PayoutsDep, _: ReadKey, user_id: IdPath
) -> AffiliateOut:
    return await affiliate_out(db, clock, payout_context, user_id)


def _custom_out(row: AffiliateTerms) -> CustomTermsOut:
    return CustomTermsOut.model_validate(row)


@router.put(
    "/{user_id}/terms",
    response_model=CustomTermsOut,
    summary="Set custom terms for one affiliate (a new version; the past is not rewritten)",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def set_terms(
    db: DbDep, clock: ClockDep, principal: AdminKey, user_id: IdPath, body: CustomTermsIn
) -> CustomTermsOut:
    row = await affiliate_flows.set_custom_terms(
        db,
        user_id,
        body.share_bps,
        reason=body.reason,
        author=principal.author,
        now=clock.now(),
    )
    return _custom_out(row)


@router.get(
    "/{user_id}/terms",
    response_model=list[CustomTermsOut],
    summary="The history of an affiliate's custom terms, oldest first",
    responses=openapi_responses(401, 403, 404, 422),
)
async def terms_history(db: DbDep, _: ReadKey, user_id: IdPath) -> list[CustomTermsOut]:
    rows = await affiliate_flows.terms_history(db, user_id)
    return [_custom_out(r) for r in rows]


@router.post(
    "/{user_id}/suspension",
    status_code=201,
    response_model=AffiliateOut,
    summary="Suspend an affiliate: their new commissions go to the owner",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def suspend(
    db: DbDep,
    clock: ClockDep,
    payout_context: PayoutsDep,
    principal: AdminKey,
    user_id: IdPath,
    body: SuspensionIn,
) -> AffiliateOut:
    await affiliate_flows.suspend(
        db,
        user_id,
        reason=body.reason,
        author=principal.author,
        now=clock.now(),
    )
    return await affiliate_out(db, clock, payout_context, user_id)


@router.delete(
    "/{user_id}/suspension",
    response_model=AffiliateOut,
    summary="Lift a suspension: commissions resume on the next sale",
    responses=openapi_responses(401, 403, 404, 409, 422),
)
async def reinstate(
    db: DbDep, clock: ClockDep, payout_context: PayoutsDep, principal: AdminKey, user_id: IdPath
) -> AffiliateOut:
    await affiliate_flows.reinstate(db, user_id, author=principal.author, now=clock.now())
    return await affiliate_out(db, clock, payout_context, user_id)


@router.post(
    "/{user_id}/terms-acceptance",
    status_code=201,
    response_model=AffiliateOut,
    summary="Record that the affiliate accepted the current affiliate terms",
    description="`version` must be the current `affiliate.terms_version` (see "
    "`GET /api/v1/affiliate-program`), so nobody accepts a text they were not shown.",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def accept_terms(
    db: DbDep,
    clock: ClockDep,
    payout_context: PayoutsDep,
    _: WriteKey,
    user_id: IdPath,
    body: TermsAcceptanceIn,
) -> AffiliateOut:
    current = payout_context.program.terms_version
    if body.version != current:
        raise Conflict(
            f"the current affiliate terms are version {current}, not {body.version}; show "
            "the current text and accept that",
            current_version=current,
        )
    await affiliate_flows.accept_terms_of_user(db, user_id, current, clock.now())
    return await affiliate_out(db, clock, payout_context, user_id)


@router.put(
    "/{user_id}/destination",
    response_model=DestinationOut,
    summary="Save where the affiliate wants to be paid",
    description="Checked before saving: LNURL and Lightning Addresses are asked whether they "
    "exist; addresses must be on the configured network.",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def save_destination(
    db: DbDep, payout_context: PayoutsDep, _: WriteKey, user_id: IdPath, body: DestinationIn
) -> DestinationOut:
    row = await payout_flows.save_destination_of_user(payout_context, user_id, body.destination)
    return DestinationOut.model_validate(row)


@router.delete(
    "/{user_id}/destination",
    status_code=204,
    summary="Forget the saved payout destination",
    responses=openapi_responses(401, 403, 404, 422),
)
async def delete_destination(payout_context: PayoutsDep, _: WriteKey, user_id: IdPath) -> Response:
    await payout_flows.forget_destination(payout_context, user_id)
    return Response(status_code=204)


@router.get(
    "/{user_id}/stats",
    response_model=AffiliateStatsOut,
    summary="An affiliate's funnel (link opened, registered, paying) and earnings per month",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_stats(db: DbDep, _: ReadKey, user_id: IdPath) -> AffiliateStatsOut:
    funnel, months = await referrals.affiliate_figures(db, user_id)
    return AffiliateStatsOut(
        user_id=user_id,
        funnel=FunnelOut.model_validate(funnel),
        earnings_by_month=[MonthEarningsOut.model_validate(m) for m in months],
    )


@router.put(
    "/{user_id}/leaderboard-name",
    response_model=LeaderboardNameIn,
    summary="Opt in to (or out of) showing a name on the leaderboard",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def set_leaderboard_name(
    db: DbDep, _: WriteKey, user_id: IdPath, body: LeaderboardNameIn
) -> LeaderboardNameIn:
    user = await affiliate_flows.set_leaderboard_name(db, user_id, body.name)
    return LeaderboardNameIn(name=user.leaderboard_name)


@program_router.get(
    "/api/v1/leaderboard",
    response_model=LeaderboardOut,
    summary="Top affiliates by paying referrals or referred sales",
    description="Refunded sales do not count. Names appear only for affiliates who opted in "
    "(`PUT /api/v1/affiliates/{id}/leaderboard-name`). Periods are rolling: the last 7 or 30 "
    "days (UTC, today included: `since` is midnight of the first), or all time.",
    responses=openapi_responses(401, 403, 422),
)
async def get_leaderboard(
    db: DbDep,
    clock: ClockDep,
    _: ReadKey,
    by: Annotated[Literal["sales", "referrals"], Query()] = "sales",
    period: Annotated[Literal["week", "month", "all"], Query()] = "month",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> LeaderboardOut:
    now = clock.now()
    since = stats.since_for(period, now)
    rows = await referrals.top(db, by, period, now, limit)
    return LeaderboardOut(
        by=by,
        period=period,
        since=since,
        items=[LeaderOut.model_validate(r) for r in rows],
    )


@program_router.post(
    "/api/v1/referral-clicks",
    status_code=201,
    response_model=ReferralClickOut,
    summary="Count an opened referral link (for websites and other platforms)",
    description="The bot counts its own `/start ref_<code>`; other platforms report theirs "
    "here. Clicks are the top of the affiliate's funnel; they earn nothing.",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def report_click(
    db: DbDep, clock: ClockDep, _: WriteKey, body: ReferralClickIn
) -> ReferralClickOut:
    affiliate_id = await affiliate_flows.record_click(
        db, body.referral_code, body.source, clock.now()
    )
    if affiliate_id is None:
        raise NotFound(f"no user has the referral code {body.referral_code!r}")
    return ReferralClickOut(affiliate_user_id=affiliate_id)
