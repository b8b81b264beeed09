"""A webhook receiver on loopback for the outgoing-webhook tests: a real ASGI server that
records what arrives and answers as it is told (a status per call, or hangs until let go)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from tests.servers import RunningServer, start_server


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document

    @property
    def type(self) -> str:
        return str(self.json["type"])


@dataclass
class Receiver:
    #: What to answer next; when empty, ``default_status``.
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    #: While set, every request waits here (a slow receiver) until it is released.
    hold: asyncio.Event | None = None
    received: list[Received] = field(default_factory=list)
    waiting: int = 0
    server: RunningServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/hooks"

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.type == event_type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if self.hold is not None:
            self.waiting += 1
            try:
                await self.hold.wait()
            finally:
                self.waiting -= 1
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(scope["path"], headers, body))
        status = self.statuses.pop(0) if self.statuses else self.default_status
        answer = json.dumps({"ok": status < 300, "seen": len(self.received)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


async def running_receiver(**kwargs: Any) -> AsyncIterator[Receiver]:
    receiver = Receiver(**kwargs)
    receiver.server = await start_server(receiver)
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        await receiver.server.stop()
