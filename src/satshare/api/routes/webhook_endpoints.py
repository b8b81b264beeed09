"""Outgoing webhook endpoints (#14): manage them, read their delivery log, replay, test."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Response

from satshare.api.deps import AdminKey, IdPath, Page, WebhooksDep
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.schemas import PageOf
from satshare.webhooks_out import flows, service
from satshare.webhooks_out.models import (
    SUBSCRIBABLE,
    DeliveryStatus,
    WebhookEndpoint,
)
from satshare.webhooks_out.schemas import (
    AttemptOut,
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EventTypesOut,
    Replayed,
    ReplayRange,
    SecretRotated,
)

router = APIRouter(
    route_class=StrictJSONRoute, prefix="/api/v1/webhook-endpoints", tags=["webhook endpoints"]
)
types_router = APIRouter(route_class=StrictJSONRoute, tags=["webhook endpoints"])


def endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        endpoint_id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        enabled=endpoint.enabled,
        description=endpoint.description,
        failing_since=endpoint.failing_since,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def delivery_out(view: flows.DeliveryView) -> DeliveryOut:
    delivery, message, attempts = view.delivery, view.message, view.attempts
    return DeliveryOut(
        delivery_id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        msg_id=message.msg_id,
        event_type=message.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        payload=json.loads(message.body),
        attempt_log=[
            AttemptOut(
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                response_snippet=a.response_snippet,
                error=a.error,
            )
            for a in attempts
        ],
    )


def _spec(body: EndpointIn) -> service.EndpointSpec:
    return service.EndpointSpec(
        url=body.url, events=body.events, enabled=body.enabled, description=body.description
    )


@types_router.get(
    "/api/v1/webhook-event-types",
    response_model=EventTypesOut,
    summary="The event types an endpoint can subscribe to",
    responses=openapi_responses(401, 403),
)
async def event_types(_: AdminKey) -> EventTypesOut:
    return EventTypesOut(event_types=list(SUBSCRIBABLE))


@router.post(
    "",
    status_code=201,
    response_model=EndpointCreated,
    summary="Add an endpoint (its secret is shown only in this answer)",
    description="Events are POSTed as the Standard Webhooks specification says: headers "
    "`webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "
    '"{id}.{timestamp}.{body}">` under the secret\'s base64 key), body '
    "`{type, timestamp, data}` with `data` named as the REST resources. Honours "
    "`Idempotency-Key`.",
    responses=openapi_responses(400, 401, 403, 422),
)
async def create_endpoint(webhooks: WebhooksDep, _: AdminKey, body: EndpointIn) -> EndpointCreated:
    endpoint = await flows.create_endpoint(webhooks, _spec(body))
    return EndpointCreated(**endpoint_out(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "",
    response_model=list[EndpointOut],
    summary="List endpoints",
    responses=openapi_responses(401, 403),
)
async def list_endpoints(webhooks: WebhooksDep, _: AdminKey) -> list[EndpointOut]:
    return [endpoint_out(e) for e in await flows.list_endpoints(webhooks)]


@router.get(
    "/{endpoint_id}",
    response_model=EndpointOut,
    summary="Get an endpoint",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_endpoint(webhooks: WebhooksDep, _: AdminKey, endpoint_id: IdPath) -> EndpointOut:
    return endpoint_out(await flows.get_endpoint(webhooks, endpoint_id))


@router.put(
    "/{endpoint_id}",
    response_model=EndpointOut,
    summary="Change an endpoint (url, events, enabled, description; the secret stays)",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def update_endpoint(
    webhooks: WebhooksDep, _: AdminKey, endpoint_id: IdPath, body: EndpointIn
) -> EndpointOut:
    return endpoint_out(await flows.update_endpoint(webhooks, endpoint_id, _spec(body)))


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    summary="Delete an endpoint with its deliveries and their log",
    responses=openapi_responses(401, 403, 404, 422),
)
async def delete_endpoint(webhooks: WebhooksDep, _: AdminKey, endpoint_id: IdPath) -> Response:
    await flows.delete_endpoint(webhooks, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/secret",
    response_model=SecretRotated,
    summary="Rotate the secret (the old one keeps signing for 24 hours)",
    description="Deliveries carry one signature per secret in use, space-separated, as the "
    "specification allows, so a receiver can switch to the new secret at its own pace.",
    responses=openapi_responses(401, 403, 404, 422),
)
async def rotate_secret(webhooks: WebhooksDep, _: AdminKey, endpoint_id: IdPath) -> SecretRotated:
    endpoint = await flows.rotate_secret(webhooks, endpoint_id)
    assert endpoint.previous_secret_until is not None
    return SecretRotated(
        endpoint_id=endpoint.id,
        secret=endpoint.secret,
        previous_secret_valid_until=endpoint.previous_secret_until,
    )


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a test event (`webhook.test`) to this endpoint",
    description="Queued and sent at once; read its outcome in the delivery log. A disabled "
    "endpoint is refused (409).",
    responses=openapi_responses(401, 403, 404, 409, 422),
)
async def send_test(webhooks: WebhooksDep, _: AdminKey, endpoint_id: IdPath) -> DeliveryOut:
    return delivery_out(await flows.send_test(webhooks, endpoint_id))


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=PageOf[DeliveryOut],
    summary="The delivery log, newest first: each delivery with every attempt",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def list_deliveries(
    webhooks: WebhooksDep,
    _: AdminKey,
    endpoint_id: IdPath,
    page: Page,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> PageOf[DeliveryOut]:
    fetched, views = await flows.deliveries_page(
        webhooks,
        endpoint_id,
        limit=page.limit,
        fetch=page.fetch,
        before_id=page.before_id,
        status=status,
    )
    items = [delivery_out(v) for v in views]
    return page.of(fetched, items, lambda item: item.delivery_id)


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    summary="One delivery with its attempts",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_delivery(
    webhooks: WebhooksDep, _: AdminKey, endpoint_id: IdPath, delivery_id: IdPath
) -> DeliveryOut:
    return delivery_out(await flows.get_delivery(webhooks, endpoint_id, delivery_id))


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send one delivery again (same webhook-id), retrying for 24 hours as new",
    responses=openapi_responses(401, 403, 404, 422),
)
async def replay_delivery(
    webhooks: WebhooksDep, _: AdminKey, endpoint_id: IdPath, delivery_id: IdPath
) -> DeliveryOut:
    return delivery_out(await flows.replay(webhooks, endpoint_id, delivery_id))


@router.post(
    "/{endpoint_id}/replay",
    status_code=202,
    response_model=Replayed,
    summary="Send again every delivery of the events of a time range",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def replay_range(
    webhooks: WebhooksDep, _: AdminKey, endpoint_id: IdPath, body: ReplayRange
) -> Replayed:
    count = await flows.replay_range(
        webhooks, endpoint_id, body.since, body.until, only_failed=body.only_failed
    )
    return Replayed(replayed=count)
