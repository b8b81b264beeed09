"""Endpoints (create, change, rotate the secret, delete), recording events, and what each
delivery attempt's outcome does to its delivery and endpoint. Never commits."""

from __future__ import annotations

import ipaddress
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import insert_ignore_rows
from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.security import is_public
from satshare.webhooks_out import repository, signing
from satshare.webhooks_out.models import (
    ALL_EVENTS,
    SUBSCRIBABLE,
    DeliveryAttempt,
    DeliveryStatus,
    EndpointDelivery,
    EventType,
    WebhookEndpoint,
    WebhookMessage,
)
from satshare.webhooks_out.ports import Outcome

#: Retries go on this long after the first attempt (or a manual replay), then give up.
RETRY_WINDOW = timedelta(hours=24)
#: The first retry waits about this long; each next one twice as long, up to RETRY_CAP.
RETRY_BASE = timedelta(seconds=5)
RETRY_CAP = timedelta(hours=1)
#: A previous secret keeps signing this long after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)
SNIPPET_CHARS = 500
#: A receiver answering 410 Gone is disabled (it can be enabled again with PUT).
GONE = 410
#: Marks a session that recorded events (see ``flows.kick_after_commit``).
RECORDED = "satshare.webhooks_out.recorded"


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    url: str
    events: Sequence[str]
    enabled: bool = True
    description: str = ""


def check_url(url: str, *, allow_insecure: bool) -> str:
    """An absolute https URL (http, and private hosts, only when ``allow_insecure``: the
    sandbox and tests; the sender refuses non-public addresses in any case unless so)."""
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidRequest(
            "url must be an absolute https:// URL (http:// only in the sandbox)", field="url"
        )
    if parts.username or parts.password:
        raise InvalidRequest("url must not carry a user name or password", field="url")
    if not allow_insecure and _not_public(parts.hostname):
        raise InvalidRequest(
            f"url must reach a public internet address; {parts.hostname} is on this machine or "
            "a private network, where deliveries are never sent (to send there, set "
            "webhooks.allow_insecure_urls)",
            field="url",
        )
    return url


def _not_public(host: str) -> bool:
    """An address or name that can only be loopback or private. Told at once, when the
    endpoint is added; any other name is checked on every delivery (by its DNS answer)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not is_public(address)  # the sender's own rule, told before any delivery


def check_events(events: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise InvalidRequest(
            f'events lists at least one type, or is ["{ALL_EVENTS}"] for all', field="events"
        )
    if ALL_EVENTS in chosen:
        return [ALL_EVENTS]
    unknown = [e for e in chosen if e not in SUBSCRIBABLE]
    if unknown:
        raise InvalidRequest(
            f"unknown event type {unknown[0]!r}; the types are {', '.join(SUBSCRIBABLE)} "
            f'(or "{ALL_EVENTS}")',
            field="events",
        )
    return chosen


def subscribes(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return ALL_EVENTS in endpoint.events or event_type in endpoint.events


async def create_endpoint(
    session: AsyncSession, spec: EndpointSpec, now: datetime, *, allow_insecure: bool
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        url=check_url(spec.url, allow_insecure=allow_insecure),
        description=spec.description,
        events=check_events(spec.events),
        enabled=spec.enabled,
        secret=signing.new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def require_endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint:
    endpoint = await repository.endpoint(session, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    endpoint_id: int,
    spec: EndpointSpec,
    now: datetime,
    *,
    allow_insecure: bool,
) -> WebhookEndpoint:
    """PUT: the endpoint becomes ``spec`` (the secret stays; rotate it on its own)."""
    endpoint = await require_endpoint(session, endpoint_id)
    endpoint.url = check_url(spec.url, allow_insecure=allow_insecure)
    endpoint.events = check_events(spec.events)
    endpoint.enabled = spec.enabled
    endpoint.description = spec.description
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def set_enabled(
    session: AsyncSession, endpoint_id: int, enabled: bool, now: datetime
) -> WebhookEndpoint:
    """Switch the endpoint on or off; nothing else changes (its URL is not checked again, so
    an endpoint made in the sandbox keeps its http:// URL)."""
    endpoint = await require_endpoint(session, endpoint_id)
    endpoint.enabled = enabled
    endpoint.updated_at = now
    await session.flush()
    return endpoint


def facts(endpoint: WebhookEndpoint) -> dict[str, object]:
    """What the audit log keeps of an endpoint (never its secrets)."""
    return {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "description": endpoint.description,
    }


async def delete_endpoint(session: AsyncSession, endpoint_id: int) -> None:
    endpoint = await require_endpoint(session, endpoint_id)
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(session: AsyncSession, endpoint_id: int, now: datetime) -> WebhookEndpoint:
    """A new secret signs from now on; the old one signs too for ``ROTATION_OVERLAP``."""
    endpoint = await require_endpoint(session, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + ROTATION_OVERLAP
    endpoint.secret = signing.new_secret()
    endpoint.updated_at = now
    await session.flush()
    return endpoint


def secrets_in_use(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [endpoint.secret]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and until > now:
        secrets.append(endpoint.previous_secret)
    return secrets


# -- recording events -------------------------------------------------------------------


def body_of(event_type: str, data: dict[str, Any], now: datetime) -> str:
    """The Standard Webhooks payload: ``{type, timestamp, data}``."""
    document = {
        "type": event_type,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


async def record(
    session: AsyncSession,
    event_type: EventType,
    data: dict[str, Any],
    *,
    dedupe_key: str,
    now: datetime,
    only: WebhookEndpoint | None = None,
    enabled: Sequence[WebhookEndpoint] | None = None,
) -> int:
    """Write the event and a delivery for each enabled endpoint that wants it, in the
    caller's transaction. Returns how many deliveries were queued (0 when nobody listens,
    and then nothing is written; also 0 when this event was already recorded).
    ``enabled``: the enabled endpoints, when the caller has read them in this transaction
    (a sale records up to three events)."""
    return await record_many(
        session, event_type, [(data, dedupe_key)], now=now, only=only, enabled=enabled
    )


async def record_many(
    session: AsyncSession,
    event_type: EventType,
    events: Sequence[tuple[dict[str, Any], str]],
    *,
    now: datetime,
    only: WebhookEndpoint | None = None,
    enabled: Sequence[WebhookEndpoint] | None = None,
) -> int:
    """``record`` for several events of one type, each ``(data, dedupe_key)``: one read of
    the endpoints and one INSERT for all of them. Returns how many deliveries were queued."""
    if not events:
        return 0
    if only is not None:
        targets: Sequence[WebhookEndpoint] = [only]
    else:
        if enabled is None:
            enabled = await repository.enabled_endpoints(session)
        targets = [e for e in enabled if subscribes(e, event_type)]
    if not targets:
        return 0
    rows = [
        {
            "msg_id": signing.new_message_id(),
            "event_type": event_type.value,
            "dedupe_key": dedupe_key,
            "body": body_of(event_type.value, data, now),
            "created_at": now,
        }
        for data, dedupe_key in events
    ]
    inserted = await insert_ignore_rows(session, WebhookMessage, rows, ["dedupe_key"])
    if not inserted:
        return 0
    session.info[RECORDED] = True  # the delivery runner is kicked once this commits
    for message_id in inserted:
        for endpoint in targets:
            session.add(
                EndpointDelivery(
                    endpoint_id=endpoint.id,
                    message_id=message_id,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    window_started_at=now,
                    created_at=now,
                )
            )
    await session.flush()
    return len(inserted) * len(targets)


async def enabled_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    """The enabled endpoints (for ``record(enabled=...)``)."""
    return await repository.enabled_endpoints(session)


async def send_test(session: AsyncSession, endpoint_id: int, now: datetime) -> EndpointDelivery:
    """A ``webhook.test`` event to this endpoint alone, whatever it subscribed to."""
    endpoint = await require_endpoint(session, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(
            f"webhook endpoint {endpoint_id} is disabled; to send it a test event, enable it "
            'with a PUT of the whole endpoint (its url, events and description, "enabled": '
            "true)"
        )
    key = f"test:{endpoint.id}:{signing.new_message_id()}"
    data = {"endpoint_id": endpoint.id, "message": "A test event from SatShare."}
    await record(session, EventType.TEST, data, dedupe_key=key, now=now, only=endpoint)
    message = await repository.message_by_key(session, key)
    assert message is not None
    delivery = await repository.delivery_of(session, endpoint.id, message.id)
    assert delivery is not None
    return delivery


# -- replays ----------------------------------------------------------------------------


def _reopen(delivery: EndpointDelivery, now: datetime) -> None:
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.window_started_at = now
    delivery.delivered_at = None


async def replay(
    session: AsyncSession, endpoint_id: int, delivery_id: int, now: datetime
) -> EndpointDelivery:
    """Send one delivery again (same ``webhook-id``: receivers that saw it may dedupe)."""
    await require_endpoint(session, endpoint_id)
    delivery = await repository.delivery(session, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise NotFound(f"delivery {delivery_id} of webhook endpoint {endpoint_id} does not exist")
    if delivery.status is not DeliveryStatus.SENDING:
        _reopen(delivery, now)
    await session.flush()
    return delivery


async def replay_range(
    session: AsyncSession,
    endpoint_id: int,
    since: datetime,
    until: datetime,
    now: datetime,
    *,
    only_failed: bool,
) -> int:
    """Send again every delivery of events from [since, until); returns how many."""
    await require_endpoint(session, endpoint_id)
    if until <= since:
        raise InvalidRequest("until must be later than since", field="until")
    count = 0
    for delivery in await repository.deliveries_between(session, endpoint_id, since, until):
        if delivery.status is DeliveryStatus.SENDING or (
            only_failed and delivery.status is not DeliveryStatus.FAILED
        ):
            continue
        _reopen(delivery, now)
        count += 1
    await session.flush()
    return count


# -- attempts ---------------------------------------------------------------------------


def backoff(attempts: int, jitter: Callable[[], float] = random.random) -> timedelta:
    """Before retry number ``attempts`` (1, 2, ...): 5 s, 10 s, 20 s, ... doubling up to
    an hour, each spread over [½, 1] of itself so that many receivers coming back at once
    are not all retried in the same second."""
    exponent = min(attempts - 1, 20)
    delay: timedelta = min(RETRY_BASE * (2**exponent), RETRY_CAP)
    return delay * (0.5 + float(jitter()) / 2)


@dataclass(frozen=True, slots=True)
class Recorded:
    delivery: EndpointDelivery
    #: The endpoint started failing with this attempt (alert its owner once).
    became_failing: bool


async def record_attempt(
    session: AsyncSession,
    delivery_id: int,
    outcome: Outcome,
    now: datetime,
    jitter: Callable[[], float] = random.random,
) -> Recorded | None:
    """Log the attempt and move the delivery on: delivered; retried after a backoff;
    given up after 24 hours (the endpoint is then failing); or, on 410 Gone — the
    receiver's way, in the specification, to say it wants nothing more — given up at once
    with the endpoint disabled."""
    delivery = await repository.delivery(session, delivery_id)
    if delivery is None:
        return None  # the endpoint was deleted while this attempt was on its way
    endpoint = await repository.endpoint(session, delivery.endpoint_id)
    assert endpoint is not None
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            response_snippet=outcome.snippet[:SNIPPET_CHARS],
            error=outcome.error[:SNIPPET_CHARS] if outcome.error else None,
        )
    )
    delivery.attempts += 1
    became_failing = False
    if outcome.delivered:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        endpoint.failing_since = None
    elif outcome.status_code == GONE:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        endpoint.enabled = False
        endpoint.updated_at = now
    else:
        retry_at = now + backoff(delivery.attempts, jitter)
        if retry_at - delivery.window_started_at > RETRY_WINDOW:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            if endpoint.failing_since is None:
                endpoint.failing_since = now
                became_failing = True
        else:
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = retry_at
    await session.flush()
    return Recorded(delivery, became_failing)
