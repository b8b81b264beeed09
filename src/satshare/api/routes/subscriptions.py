from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from satshare.api.deps import ContainerDep, IdPath, IdQuery, Page, ReadKey, WriteKey
from satshare.api.presenters import invoice_out, subscription_out
from satshare.api.problems import openapi_responses
from satshare.api.schemas import SubscriptionCreated, SubscriptionOut
from satshare.payments import flows
from satshare.plans import service as plans
from satshare.schemas import PageOf
from satshare.subscriptions import repository, service
from satshare.subscriptions.models import SubscriptionStatus
from satshare.subscriptions.schemas import (
    FiatPriceOut,
    PlanOut,
    SubscriptionCreate,
    SubscriptionUpdate,
)
from satshare.subscriptions.service import effective_status

router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"])


@router.get(
    "/types",
    response_model=list[PlanOut],
    summary="List the plans (subscription types) with prices",
    responses=openapi_responses(401, 403),
)
async def list_types(container: ContainerDep, _: ReadKey) -> list[PlanOut]:
    async with container.db.reading() as session:
        rows = await plans.list_active(session)
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
            providers=container.payments.rails_for(p.providers),
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
    container: ContainerDep,
    principal: ReadKey,
    page: Page,
    user_id: IdQuery = None,
    status: Annotated[Literal["pending", "active", "expired", "canceled"] | None, Query()] = None,
    subscription_type: Annotated[str | None, Query(max_length=64)] = None,
) -> PageOf[SubscriptionOut]:
    now = container.clock.now()
    async with container.db.reading() as session:
        rows = await repository.list_subscriptions(
            session,
            limit=page.fetch,
            before_id=page.before_id,
            user_id=user_id,
            status=SubscriptionStatus(status) if status else None,
            plan_id=subscription_type,
            platform=principal.platform,  # a bound key sees its platform's only (#14)
        )
        items = [
            await subscription_out(session, s, container.payments, now) for s in rows[: page.limit]
        ]
    return page.of(len(rows), items, lambda item: item.subscription_id)


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="Buy or renew a subscription: creates an invoice at the payment processor",
    description="Returns the subscription (pending until paid; a renewal keeps its current "
    "status) and the invoice to pay. When the invoice settles the subscription becomes active, "
    "or is extended from its current end if still active. Honours `Idempotency-Key`.",
    responses=openapi_responses(400, 401, 403, 404, 422, 502),
)
async def create_subscription(
    container: ContainerDep, _: WriteKey, body: SubscriptionCreate
) -> SubscriptionCreated:
    checkout = await flows.start_checkout(
        container.payments,
        user_id=body.user_id,
        plan_id=body.subscription_type,
        provider_name=body.provider,
    )
    subscription = checkout.subscription
    return SubscriptionCreated(
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        subscription_type=subscription.plan_id,
        status=effective_status(subscription, container.clock.now()),
        ends_at=subscription.ends_at,
        invoice=invoice_out(checkout.invoice, container.payments),
    )


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Get a subscription",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_subscription(
    container: ContainerDep, _: ReadKey, subscription_id: IdPath
) -> SubscriptionOut:
    async with container.db.reading() as session:
        subscription = await service.require(session, subscription_id)
        return await subscription_out(
            session, subscription, container.payments, container.clock.now()
        )


@router.put(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Cancel a subscription, or re-activate a canceled one that has paid time left",
    responses=openapi_responses(400, 401, 403, 404, 409, 422),
)
async def update_subscription(
    container: ContainerDep, _: WriteKey, subscription_id: IdPath, body: SubscriptionUpdate
) -> SubscriptionOut:
    now = container.clock.now()
    async with container.db.transaction() as session:
        subscription = await service.change_status(
            session, subscription_id, SubscriptionStatus(body.status), now
        )
        return await subscription_out(session, subscription, container.payments, now)
