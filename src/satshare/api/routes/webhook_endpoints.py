"""Outgoing webhook endpoints (#14): manage them, read their delivery log, replay, test."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response

from satshare.api.deps import AdminKey, ContainerDep, IdPath, Page
from satshare.api.problems import openapi_responses
from satshare.container import Container
from satshare.errors import NotFound
from satshare.schemas import PageOf
from satshare.webhooks_out import flows, repository, service
from satshare.webhooks_out.models import (
    SUBSCRIBABLE,
    DeliveryAttempt,
    DeliveryStatus,
    EndpointDelivery,
    WebhookEndpoint,
    WebhookMessage,
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

router = APIRouter(prefix="/api/v1/webhook-endpoints", tags=["webhook endpoints"])
types_router = APIRouter(tags=["webhook endpoints"])


def _context(container: Container) -> flows.WebhooksContext:
    assert container.webhooks is not None
    return container.webhooks


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


def delivery_out(
    delivery: EndpointDelivery, message: WebhookMessage, attempts: Sequence[DeliveryAttempt]
) -> DeliveryOut:
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
async def create_endpoint(
    container: ContainerDep, _: AdminKey, body: EndpointIn
) -> EndpointCreated:
    context = _context(container)
    async with container.db.transaction() as session:
        endpoint = await service.create_endpoint(
            session, _spec(body), container.clock.now(), allow_insecure=context.allow_insecure
        )
    return EndpointCreated(**endpoint_out(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "",
    response_model=list[EndpointOut],
    summary="List endpoints",
    responses=openapi_responses(401, 403),
)
async def list_endpoints(container: ContainerDep, _: AdminKey) -> list[EndpointOut]:
    async with container.db.reading() as session:
        return [endpoint_out(e) for e in await repository.endpoints(session)]


@router.get(
    "/{endpoint_id}",
    response_model=EndpointOut,
    summary="Get an endpoint",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_endpoint(container: ContainerDep, _: AdminKey, endpoint_id: IdPath) -> EndpointOut:
    async with container.db.reading() as session:
        return endpoint_out(await service.require_endpoint(session, endpoint_id))


@router.put(
    "/{endpoint_id}",
    response_model=EndpointOut,
    summary="Change an endpoint (url, events, enabled, description; the secret stays)",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def update_endpoint(
    container: ContainerDep, _: AdminKey, endpoint_id: IdPath, body: EndpointIn
) -> EndpointOut:
    context = _context(container)
    async with container.db.transaction() as session:
        endpoint = await service.update_endpoint(
            session,
            endpoint_id,
            _spec(body),
            container.clock.now(),
            allow_insecure=context.allow_insecure,
        )
    context.kick()  # re-enabled: its waiting deliveries may go
    return endpoint_out(endpoint)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    summary="Delete an endpoint with its deliveries and their log",
    responses=openapi_responses(401, 403, 404, 422),
)
async def delete_endpoint(container: ContainerDep, _: AdminKey, endpoint_id: IdPath) -> Response:
    async with container.db.transaction() as session:
        await service.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/secret",
    response_model=SecretRotated,
    summary="Rotate the secret (the old one keeps signing for 24 hours)",
    description="Deliveries carry one signature per secret in use, space-separated, as the "
    "specification allows, so a receiver can switch to the new secret at its own pace.",
    responses=openapi_responses(401, 403, 404, 422),
)
async def rotate_secret(container: ContainerDep, _: AdminKey, endpoint_id: IdPath) -> SecretRotated:
    async with container.db.transaction() as session:
        endpoint = await service.rotate_secret(session, endpoint_id, container.clock.now())
    assert endpoint.previous_secret_until is not None
    return SecretRotated(
        endpoint_id=endpoint.id,
        secret=endpoint.secret,
        previous_secret_valid_until=endpoint.previous_secret_until,
    )


async def _delivery(container: Container, endpoint_id: int, delivery_id: int) -> DeliveryOut:
    async with container.db.reading() as session:
        delivery = await repository.delivery(session, delivery_id)
        if delivery is None or delivery.endpoint_id != endpoint_id:
            await service.require_endpoint(session, endpoint_id)
            raise NotFound(
                f"delivery {delivery_id} of webhook endpoint {endpoint_id} does not exist"
            )
        message = await repository.message(session, delivery.message_id)
        assert message is not None
        attempts = await repository.attempts_of(session, [delivery.id])
    return delivery_out(delivery, message, attempts)


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a test event (`webhook.test`) to this endpoint",
    description="Queued and sent at once; read its outcome in the delivery log. A disabled "
    "endpoint is refused (409).",
    responses=openapi_responses(401, 403, 404, 409, 422),
)
async def send_test(container: ContainerDep, _: AdminKey, endpoint_id: IdPath) -> DeliveryOut:
    async with container.db.transaction() as session:
        delivery = await service.send_test(session, endpoint_id, container.clock.now())
    _context(container).kick()
    return await _delivery(container, endpoint_id, delivery.id)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=PageOf[DeliveryOut],
    summary="The delivery log, newest first: each delivery with every attempt",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def list_deliveries(
    container: ContainerDep,
    _: AdminKey,
    endpoint_id: IdPath,
    page: Page,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> PageOf[DeliveryOut]:
    async with container.db.reading() as session:
        await service.require_endpoint(session, endpoint_id)
        rows = await repository.deliveries(
            session, endpoint_id, limit=page.fetch, before_id=page.before_id, status=status
        )
        shown = rows[: page.limit]
        attempts = await repository.attempts_of(session, [d.id for d, _ in shown])
    by_delivery: dict[int, list[DeliveryAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    items = [delivery_out(d, m, by_delivery.get(d.id, [])) for d, m in shown]
    return page.of(len(rows), items, lambda item: item.delivery_id)


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    summary="One delivery with its attempts",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_delivery(
    container: ContainerDep, _: AdminKey, endpoint_id: IdPath, delivery_id: IdPath
) -> DeliveryOut:
    return await _delivery(container, endpoint_id, delivery_id)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send one delivery again (same webhook-id), retrying for 24 hours as new",
    responses=openapi_responses(401, 403, 404, 422),
)
async def replay_delivery(
    container: ContainerDep, _: AdminKey, endpoint_id: IdPath, delivery_id: IdPath
) -> DeliveryOut:
    async with container.db.transaction() as session:
        await service.replay(session, endpoint_id, delivery_id, container.clock.now())
    _context(container).kick()
    return await _delivery(container, endpoint_id, delivery_id)


@router.post(
    "/{endpoint_id}/replay",
    status_code=202,
    response_model=Replayed,
    summary="Send again every delivery of the events of a time range",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def replay_range(
    container: ContainerDep, _: AdminKey, endpoint_id: IdPath, body: ReplayRange
) -> Replayed:
    async with container.db.transaction() as session:
        count = await service.replay_range(
            session,
            endpoint_id,
            body.since,
            body.until,
            container.clock.now(),
            only_failed=body.only_failed,
        )
    _context(container).kick()
    return Replayed(replayed=count)
