"""API models of the outgoing webhooks (pydantic only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from satshare.schemas import StrictModel
from satshare.webhooks_out.models import ALL_EVENTS, SUBSCRIBABLE, DeliveryStatus

EVENTS_DESCRIPTION = (
    f'Event types to receive, or `["{ALL_EVENTS}"]` for all of them: '
    + ", ".join(f"`{e}`" for e in SUBSCRIBABLE)
    + "."
)


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
        description="Where events are POSTed; https (http:// only in the sandbox).",
    )
    events: list[str] = Field(
        default_factory=lambda: [ALL_EVENTS],
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description=EVENTS_DESCRIPTION,
    )
    enabled: bool = True
    description: str = Field("", max_length=500)


class EndpointOut(BaseModel):
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
    secret: str = Field(
        description="`whsec_<base64>`: verify the `webhook-signature` header with it. Shown "
        "only now; rotate it with POST /webhook-endpoints/{id}/secret."
    )


class SecretRotated(BaseModel):
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

    since: AwareDatetime = Field(description="Events created at or after this time…")
    until: AwareDatetime = Field(description="…and before this one.")
    only_failed: bool = Field(False, description="Only deliveries that were given up.")


class Replayed(BaseModel):
    replayed: int = Field(description="Deliveries queued again.")


class EventTypesOut(BaseModel):
    event_types: list[str]
