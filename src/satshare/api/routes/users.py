from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from satshare.api.deps import (
    ClockDep,
    DbDep,
    IdPath,
    Page,
    PaymentsDep,
    PayoutsDep,
    ReadKey,
    WriteKey,
)
from satshare.api.presenters import subscription_out, user_out
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.api.schemas import UserDetail
from satshare.errors import Conflict
from satshare.payments import flows as payment_flows
from satshare.schemas import MAX_ID, PageOf
from satshare.users import flows, service
from satshare.users.schemas import (
    Platform,
    ReferralCounts,
    UserCreate,
    UserCreated,
    UserOut,
    UserUpdate,
)

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/users", tags=["users"])


@router.get(
    "",
    response_model=PageOf[UserOut],
    summary="List users",
    responses=openapi_responses(400, 401, 403, 422),
)
async def list_users(
    db: DbDep,
    principal: ReadKey,
    page: Page,
    platform: Annotated[Platform | None, Query()] = None,
    referrer_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only users this user referred.")
    ] = None,
    external_id: Annotated[str | None, Query(max_length=128)] = None,
) -> PageOf[UserOut]:
    if principal.platform is not None and platform not in (None, principal.platform):
        return PageOf[UserOut](items=[], next_cursor=None)  # a bound key sees its platform only
    rows = await flows.list_users(
        db,
        limit=page.fetch,
        before_id=page.before_id,
        platform=principal.platform or platform,
        referrer_id=referrer_id,
        external_id=external_id,
    )
    items = [user_out(u) for u in rows[: page.limit]]
    return page.of(len(rows), items, lambda item: item.user_id)


@router.post(
    "",
    status_code=201,
    response_model=UserCreated,
    summary="Register a user",
    description="`referral_id` (the referrer's user id or referral code) is fixed at registration "
    "and can never change. Honours `Idempotency-Key`.",
    responses=openapi_responses(400, 401, 403, 409, 422),
)
async def create_user(db: DbDep, clock: ClockDep, _: WriteKey, body: UserCreate) -> UserCreated:
    registration = service.Registration(
        platform=body.platform,
        username=body.username,
        external_id=str(body.external_id) if body.external_id is not None else None,
        referral=str(body.referral_id) if body.referral_id is not None else None,
        language=body.language,
    )
    user = await flows.register(db, registration, clock.now())
    return UserCreated(
        user_id=user.id, referral_code=user.referral_code, referrer_id=user.referrer_id
    )


@router.get(
    "/{user_id}",
    response_model=UserDetail,
    summary="Get a user with their affiliate balance and referrals",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_user(
    db: DbDep,
    clock: ClockDep,
    payments: PaymentsDep,
    payouts: PayoutsDep,
    _: ReadKey,
    user_id: IdPath,
) -> UserDetail:
    now = clock.now()
    view = await payment_flows.user_view(db, user_id, payouts.program.hold_days, now)
    user, earnings = view.user, view.earnings
    registered, paying = view.referrals.registered, view.referrals.paying
    subscriptions = [subscription_out(s, payments, now) for s in view.subscriptions]
    return UserDetail(
        **user_out(user).model_dump(),
        balance_sats=earnings.balance_sats,
        available_sats=earnings.available_sats,
        pending_sats=earnings.pending_sats,
        total_earned_sats=earnings.total_earned_sats,
        referrals=ReferralCounts(registered=registered, paying=paying),
        active_subscriptions=subscriptions,
    )


@router.put(
    "/{user_id}",
    response_model=UserOut,
    summary="Update a user's username or language",
    description="The referrer cannot be changed: a body with `referral_id` gets 409.",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def update_user(
    db: DbDep, clock: ClockDep, _: WriteKey, user_id: IdPath, body: UserUpdate
) -> UserOut:
    if "referral_id" in body.model_fields_set:
        raise Conflict("the referrer is set once at registration and can never be changed")
    user = await flows.update_profile(
        db, user_id, username=body.username, language=body.language, now=clock.now()
    )
    return user_out(user)
