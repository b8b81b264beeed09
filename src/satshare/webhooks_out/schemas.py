"""API models of the outgoing webhooks (pydantic only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from satshare.schemas import NUL_MESSAGE, StrictModel, contains_nul
from satshare.webhooks_out.models import ALL_EVENTS, SUBSCRIBABLE, DeliveryStatus

EVENTS_DESCRIPTION = (
    f'Event types to receive, or `["{ALL_EVENTS}"]` for all of them: '
    + ", ".join(f"`{e}`" for e in SUBSCRIBABLE)
    + "."
)


def _no_nul(value: str) -> str:
    if contains_nul(value):
        raise ValueError(NUL_MESSAGE)
    return value


#: One event type; a NUL is refused on the item itself, so the error names events.N.
EventName = Annotated[str, Field(max_length=40), AfterValidator(_no_nul)]


class EndpointIn(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.example.com/hooks/satshare",
                    "events": ["payment.settled", "subscription.expired"],
                    "description": "CRM",
                }
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="Where events are POSTed: https:// on a public address (http:// and "
        "private addresses only in the sandbox or with `webhooks.allow_insecure_urls`).",
    )
    events: list[EventName] = Field(
        default_factory=lambda: [ALL_EVENTS],
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description=EVENTS_DESCRIPTION,
    )
    enabled: bool = True
    description: str = Field("", max_length=500)


ENDPOINT_EXAMPLE: dict[str, Any] = {
    "endpoint_id": 1,
    "url": "https://crm.example.com/hooks/satshare",
    "events": ["payment.settled", "subscription.expired"],
    "enabled": True,
    "description": "CRM",
    "failing_since": None,
    "created_at": "2026-11-30T10:00:00Z",
    "updated_at": "2026-11-30T10:00:00Z",
}
SECRET_EXAMPLE = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "9r8GKYqrTwjUPD8="


class EndpointOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ENDPOINT_EXAMPLE]})

    endpoint_id: int
    url: str
    events: list[str]
    enabled: bool
    description: str
    failing_since: datetime | None = Field(
        description="Set when a delivery was given up after 24 h of retries; cleared by the "
        "next delivery that succeeds."
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE}]}
    )

    secret: str = Field(
        description="`whsec_<base64>`: verify the `webhook-signature` header with it. Shown "
        "only now; rotate it with POST /webhook-endpoints/{id}/secret."
    )


class SecretRotated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "endpoint_id": 1,
                    "secret": SECRET_EXAMPLE,
                    "previous_secret_valid_until": "2026-12-01T10:00:00Z",
                }
            ]
        }
    )

    endpoint_id: int
    secret: str = Field(description="The new `whsec_` secret; shown only now.")
    previous_secret_valid_until: datetime = Field(
        description="Until then deliveries carry signatures with both secrets."
    )


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None = Field(description="Null when no answer came.")
    latency_ms: int
    response_snippet: str = Field(description="The start of the receiver's answer.")
    error: str | None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "delivery_id": 12,
                    "endpoint_id": 1,
                    "msg_id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                    "event_type": "payment.settled",
                    "status": "pending",
                    "attempts": 1,
                    "next_attempt_at": "2026-11-30T10:00:07Z",
                    "created_at": "2026-11-30T10:00:00Z",
                    "delivered_at": None,
                    "payload": {
                        "type": "payment.settled",
                        "timestamp": "2026-11-30T10:00:00Z",
                        "data": {"invoice_id": "inv_3x9Jk2mQp1Zr8LwT5vYbNa", "amount_sats": 50000},
                    },
                    "attempt_log": [
                        {
                            "attempted_at": "2026-11-30T10:00:01Z",
                            "status_code": 503,
                            "latency_ms": 41,
                            "response_snippet": "Service Unavailable",
                            "error": None,
                        }
                    ],
                }
            ]
        }
    )

    delivery_id: int
    endpoint_id: int
    msg_id: str = Field(description="The `webhook-id` header (the same on every retry).")
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(description="The body sent: `{type, timestamp, data}`.")
    attempt_log: list[AttemptOut]


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 40:
        raise ValueError("a time is at most 40 characters, e.g. 2026-11-30T00:00:00Z")
    return value


#: An ISO 8601 time with its zone ("...Z" or "+02:00").
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_short),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 40}),
]


class ReplayRange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-11-29T00:00:00Z",
                    "until": "2026-11-30T00:00:00Z",
                    "only_failed": True,
                }
            ]
        },
    )

    since: Moment = Field(description="Events created at or after this time…")
    until: Moment = Field(description="…and before this one.")
    only_failed: bool = Field(False, description="Only deliveries that were given up.")


class Replayed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"replayed": 3}]})

    replayed: int = Field(description="Deliveries queued again.")


class EventTypesOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"event_types": list(SUBSCRIBABLE)}]})

    event_types: list[str]
