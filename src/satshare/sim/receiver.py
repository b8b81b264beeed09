"""A platform's webhook receiver, over real HTTP: where sandbox webhook endpoints can point.

A newcomer trying outgoing webhooks (#14) has no server of their own to receive them. In
sandbox mode this app is mounted at ``/sim/receiver``: an endpoint whose URL is
``<server>/sim/receiver/<name>`` gets its deliveries kept here, newest first, with the
headers and the raw body exactly as sent, and ``/sandbox/webhooks`` shows them with their
signature checked against the endpoint's secret.

Fault knob, so a failing endpoint can be tried too: a ``<name>`` starting with ``fail``
answers 500 (the sender retries, marks the endpoint failing and the panel can replay).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

#: How many deliveries are kept (the oldest go first): a sandbox, not an archive.
KEPT = 200
#: A body beyond this is refused with 413, as a real receiver would, and not kept.
MAX_BODY_BYTES = 256 * 1024
#: The headers a Standard Webhooks delivery carries, the ones worth showing.
SHOWN_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")


@dataclass(frozen=True, slots=True)
class ReceivedDelivery:
    number: int
    #: The path name after ``/sim/receiver/``.
    name: str
    received_at: float
    headers: dict[str, str]
    body: bytes
    #: What the receiver answered.
    status: int


class WebhookReceiver:
    def __init__(self) -> None:
        self._deliveries: deque[ReceivedDelivery] = deque(maxlen=KEPT)
        self._count = 0

    def deliveries(self) -> list[ReceivedDelivery]:
        """Newest first."""
        return list(reversed(self._deliveries))

    def receive(self, name: str, headers: dict[str, str], body: bytes) -> int:
        status = 500 if name.startswith("fail") else 204
        self._count += 1
        self._deliveries.append(
            ReceivedDelivery(self._count, name, time.time(), headers, body, status)
        )
        return status


def build_app(receiver: WebhookReceiver) -> Starlette:
    async def receive(request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response("Payload Too Large", status_code=413)
        shown = {h: request.headers[h] for h in SHOWN_HEADERS if h in request.headers}
        return Response(status_code=receiver.receive(name, shown, body))

    return Starlette(routes=[Route("/{name:str}", receive, methods=["POST"])])
