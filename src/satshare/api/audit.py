"""The audit log for the admin API: every state-changing call that an admin-scoped endpoint
answered with success is recorded (who: the API key; what: the method and route; which: the
path's ids). A small hook rather than a line in every route: ``require_scope("admin")``
marks the request, this middleware writes the row once the answer is known, before its last
byte is sent. The record is its own transaction after the change (the panel's own actions
are recorded with their change, before → after included)."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satshare.audit import flows as audit
from satshare.audit.models import Channel

#: Where ``require_scope("admin")`` leaves the principal in the request's state.
STATE_KEY = "audited_principal"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AdminApiAudit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES:
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Recorded before the answer's last byte: a client that has its answer
                # finds the row (it used to land a moment later).
                await self._record(scope, status)
            await send(message)

        await self.app(scope, receive, watch)

    async def _record(self, scope: Scope, status: int) -> None:
        principal: Any = scope.get("state", {}).get(STATE_KEY)
        if principal is None or not 200 <= status < 300:
            return
        route = scope.get("route")
        template = getattr(route, "path", scope["path"])
        params = scope.get("path_params") or {}
        services = scope["app"].state.services  # api.deps.ApiServices
        await audit.record(
            services.db,
            services.clock,
            channel=Channel.API,
            actor=principal.author,
            role=",".join(principal.scopes),
            action=f"api {scope['method']} {template}"[:64],
            target=",".join(f"{k}:{v}" for k, v in params.items())[:128],
            after={"status": status},
        )
