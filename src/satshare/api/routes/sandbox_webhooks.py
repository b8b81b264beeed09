"""/sandbox/webhooks: what the sandbox's webhook receiver got (sandbox mode only).

A webhook endpoint whose URL is ``<server>/sim/receiver/<name>`` delivers to a receiver
inside this server (``satshare.sim.receiver``); this page lists those deliveries, newest
first, with the headers and body as sent and each signature checked against the secrets of
the endpoints pointing there — what the user's own receiver would do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from satshare.api.deps import ClockDep, SandboxDep, SettingsDep, WebhooksDep
from satshare.api.pages import templates
from satshare.api.ports import ReceivedWebhook, SandboxReceiver
from satshare.api.routing import StrictJSONRoute
from satshare.errors import NotFound
from satshare.webhooks_out import flows as webhook_flows
from satshare.webhooks_out import service as webhook_service
from satshare.webhooks_out.models import WebhookEndpoint
from satshare.webhooks_out.signing import verifies

router = APIRouter(
    route_class=StrictJSONRoute, prefix="/sandbox", tags=["sandbox"], include_in_schema=False
)


async def _receiver(sandbox: SandboxDep) -> SandboxReceiver:
    if sandbox is None or sandbox.receiver is None:
        raise NotFound("the webhook receiver exists only in sandbox mode")
    return sandbox.receiver


ReceiverDep = Annotated[SandboxReceiver, Depends(_receiver)]


class Signature(StrEnum):
    VERIFIED = "verified"
    #: Endpoints point here, but none of their secrets signed this.
    MISMATCH = "mismatch"
    #: No endpoint's URL is this receiver path (deleted, or posted by hand).
    NO_ENDPOINT = "no-endpoint"


@dataclass(frozen=True, slots=True)
class Shown:
    delivery: ReceivedWebhook
    received: str
    event_type: str
    body: str
    signature: Signature
    #: The endpoint whose secret verified it.
    endpoint_id: int | None


def _checked(
    delivery: ReceivedWebhook,
    receiver_path: str,
    endpoints: list[WebhookEndpoint],
    now: datetime,
) -> Shown:
    path = f"{receiver_path}/{delivery.name}"
    pointing = [e for e in endpoints if urlsplit(e.url).path == path]
    headers = delivery.headers
    verified = next(
        (
            e
            for e in pointing
            if verifies(
                webhook_service.secrets_in_use(e, now),
                headers.get("webhook-id", ""),
                headers.get("webhook-timestamp", ""),
                delivery.body,
                headers.get("webhook-signature", ""),
            )
        ),
        None,
    )
    signature = (
        Signature.VERIFIED
        if verified is not None
        else (Signature.MISMATCH if pointing else Signature.NO_ENDPOINT)
    )
    try:
        parsed = json.loads(delivery.body)
        body = json.dumps(parsed, indent=2, ensure_ascii=False)
        event_type = str(parsed.get("type", "")) if isinstance(parsed, dict) else ""
    except ValueError:
        body, event_type = delivery.body.decode("utf-8", "replace"), ""
    received = datetime.fromtimestamp(delivery.received_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Shown(
        delivery,
        received,
        event_type,
        body,
        signature,
        verified.id if verified is not None else None,
    )


@router.get("/webhooks", response_class=HTMLResponse)
async def page(
    receiver: ReceiverDep,
    sandbox: SandboxDep,
    webhooks: WebhooksDep,
    settings: SettingsDep,
    clock: ClockDep,
    request: Request,
) -> Response:
    endpoints = list(await webhook_flows.list_endpoints(webhooks))
    now = clock.now()
    shown = [_checked(d, receiver.path, endpoints, now) for d in receiver.deliveries()]
    return templates().TemplateResponse(
        request,
        "sandbox_webhooks.html",
        {
            "deliveries": shown,
            "example_url": f"{settings.server.base_url}{receiver.path}/demo",
            # The way back: the sandbox chat, or the home page when a real bot runs.
            "bot": sandbox.chat.bot_username if sandbox and sandbox.chat else None,
            "Signature": Signature,
        },
    )
