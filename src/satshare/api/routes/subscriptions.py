from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from satshare.aftercommit import Produced
from satshare.api.deps import (
    AfterCommitDep,
    ClockDep,
    DbDep,
    IdPath,
    IdQuery,
    Page,
    PaymentsDep,
    ReadKey,
    WriteKey,
)
from satshare.api.presenters import invoice_out, subscription_out
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.api.schemas import SubscriptionCreated, SubscriptionOut
from satshare.errors import InvalidRequest
from satshare.payments import flows
from satshare.plans import flows as plan_flows
from satshare.schemas import PageOf
from satshare.subscriptions.models import SubscriptionStatus
from satshare.subscriptions.schemas import (
    FiatPriceOut,
    PlanOut,
    SubscriptionCreate,
    SubscriptionUpdate,
)
from satshare.subscriptions.service import effective_status
from satshare.trials import flows as trials

router = APIRouter(
    route_class=StrictJSONRoute, prefix="/api/v1/subscriptions", tags=["subscriptions"]
)


@router.get(
    "/types",
    response_model=list[PlanOut],
    summary="List the plans (subscription types) with prices",
    responses=openapi_responses(401, 403),
)
async def list_types(db: DbDep, payments: PaymentsDep, _: ReadKey) -> list[PlanOut]:
    rows = await plan_flows.list_active(db)
    return [
        PlanOut(
            subscription_type=p.id,
            title=p.title,
            description=p.description,
            price_sats=p.price_sats,
            price=(
                FiatPriceOut(amount=p.fiat_amount, currency=p.fiat_currency)
                if p.fiat_amount and p.fiat_currency
                else None
            ),
            providers=payments.rails_for(p.providers),
            price_stars=p.price_stars,
            duration_days=p.duration_days,
            channels=list(p.channels),
        )
        for p in rows
    ]


@router.get(
    "",
    response_model=PageOf[SubscriptionOut],
    summary="List subscriptions",
    responses=openapi_responses(400, 401, 403, 422),
)
async def list_subscriptions(
    db: DbDep,
    clock: ClockDep,
    payments: PaymentsDep,
    principal: ReadKey,
    page: Page,
    user_id: IdQuery = None,
    status: Annotated[Literal["pending", "active", "expired", "canceled"] | None, Query()] = None,
    subscription_type: Annotated[str | None, Query(max_length=64)] = None,
) -> PageOf[SubscriptionOut]:
    now = clock.now()
    rows = await flows.subscriptions_page(
        db,
        limit=page.fetch,
        before_id=page.before_id,
        user_id=user_id,
        status=SubscriptionStatus(status) if status else None,
        plan_id=subscription_type,
        platform=principal.platform,  # a bound key sees its platform's only (#14)
    )
    items = [subscription_out(s, payments, now) for s in rows[: page.limit]]
    return page.of(len(rows), items, lambda item: item.subscription_id)


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="Buy or renew a subscription: creates an invoice at the payment processor",
    description="Returns the subscription (pending until paid; a renewal keeps its current "
    "status) and the invoice to pay. When the invoice settles the subscription becomes active, "
    "or is extended from its current end if still active (a trial's end included). "
    "A user has one subscription per plan: buying a plan they already have active adds its "
    "days (and any extra days) at the current end, with the same channels, and returns that "
    "subscription; buying a different plan while another is active creates a second "
    "subscription that starts when paid and runs alongside the first, each granting its own "
    "plan's channels (a channel both plans grant stays open until the later end). Nothing is "
    "asked here: the checkout page (`invoice.checkout_url`) and the bot tell the buyer which "
    "of the two will happen before they pay. "
    "`promo_code` bills the discounted price (the invoice shows the original price, the "
    'discount and the code); a code that does not apply is 422 with `reason`. `"trial": '
    "true` starts the plan's free trial instead: active at once, no invoice, once per person "
    "and plan. Honours `Idempotency-Key`.",
    responses=openapi_responses(400, 401, 403, 404, 422, 502),
)
async def create_subscription(
    db: DbDep,
    clock: ClockDep,
    payments: PaymentsDep,
    after_commit: AfterCommitDep,
    _: WriteKey,
    body: SubscriptionCreate,
) -> SubscriptionCreated:
    if body.trial:
        return await _start_trial(db, clock, after_commit, body)
    checkout = await flows.start_checkout(
        payments,
        user_id=body.user_id,
        plan_id=body.subscription_type,
        provider_name=body.provider,
        promo_code=body.promo_code,
    )
    subscription = checkout.subscription
    return SubscriptionCreated(
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        subscription_type=subscription.plan_id,
        status=effective_status(subscription, clock.now()),
        ends_at=subscription.ends_at,
        invoice=invoice_out(checkout.invoice, payments),
    )


async def _start_trial(
    db: DbDep, clock: ClockDep, after_commit: AfterCommitDep, body: SubscriptionCreate
) -> SubscriptionCreated:
    if body.promo_code is not None or body.provider is not None:
        raise InvalidRequest("a free trial takes no promo_code and no provider", field="trial")
    now = clock.now()
    subscription = await trials.start(db, body.user_id, body.subscription_type, now)
    after_commit.committed(Produced(outbox=True))
    return SubscriptionCreated(
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        subscription_type=subscription.plan_id,
        status=effective_status(subscription, now),
        ends_at=subscription.ends_at,
        invoice=None,
    )


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Get a subscription",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_subscription(
    db: DbDep, clock: ClockDep, payments: PaymentsDep, _: ReadKey, subscription_id: IdPath
) -> SubscriptionOut:
    view = await flows.get_subscription(db, subscription_id)
    return subscription_out(view, payments, clock.now())


@router.put(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Cancel a subscription, or re-activate a canceled one that has paid time left",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def update_subscription(
    db: DbDep,
    clock: ClockDep,
    payments: PaymentsDep,
    _: WriteKey,
    subscription_id: IdPath,
    body: SubscriptionUpdate,
) -> SubscriptionOut:
    now = clock.now()
    view = await flows.change_subscription_status(
        db, subscription_id, SubscriptionStatus(body.status), now
    )
    return subscription_out(view, payments, now)
