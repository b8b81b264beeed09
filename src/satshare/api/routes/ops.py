"""Operations endpoints: ``/health`` (liveness), ``/ready`` (readiness) and ``/metrics``
(Prometheus), plus the middleware that times webhooks and tags each request's log lines.

docs/operations.md documents every metric and how to scrape several processes.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satshare import __version__, logs, metrics, migrate
from satshare.api.deps import ClockDep, DbDep, JobQueueDep, SandboxDep, SettingsDep
from satshare.api.ports import JobQueue
from satshare.api.problems import openapi_responses, problem
from satshare.api.routing import StrictJSONRoute
from satshare.clock import Clock
from satshare.db import Database, database_down
from satshare.errors import Unauthorized
from satshare.notifications import flows as outbox
from satshare.payouts import flows as payouts
from satshare.payouts.models import PayoutStatus

log = logging.getLogger(__name__)


def _queue_down(exc: BaseException) -> bool:
    """The job queue not open yet, or its database down (procrastinate raises psycopg's
    error ``from`` its own). Imported here, not at the top: only a process with a job
    queue (PostgreSQL) has them loaded."""
    from procrastinate.exceptions import AppNotOpen
    from psycopg import OperationalError

    return isinstance(exc, AppNotOpen) or isinstance(
        logs.root_error(exc), (OSError, OperationalError)
    )


router = APIRouter(route_class=StrictJSONRoute, tags=["service"])

metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="`metrics.token` from the configuration, sent as `Authorization: Bearer "
    "<token>`; only when one is set.",
)
#: A caller's X-Request-ID is kept when it looks like an id (it ends up in log lines).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_WEBHOOK_PREFIX = "/api/v1/webhooks/"


@router.get(
    "/health",
    summary="Liveness: the process answers",
    description="Answers 200 as long as the process serves HTTP; it does not touch the "
    "database, so a database outage does not get healthy processes restarted (the "
    "container HEALTHCHECK and systemd watch this). Use `/ready` to know whether the "
    "process can do its work. `pid` names the process that answered (with `server.workers` "
    "several share the port).",
)
async def health(db: DbDep, sandbox_pages: SandboxDep) -> dict[str, str | int]:
    return {
        "status": "ok",
        "version": __version__,
        "database": db.dialect,
        "mode": "sandbox" if sandbox_pages else "live",
        "pid": os.getpid(),
    }


@router.get(
    "/ready",
    summary="Readiness: database reachable, schema at head, job queue reachable",
    description="200 with each check when this process can serve; 503 problem+json naming "
    "the failed checks otherwise (`checks` holds every result). Load balancers route only "
    "to ready processes.",
    responses=openapi_responses(503),
)
async def ready(db: DbDep, queue: JobQueueDep, request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    failed: list[str] = []
    try:
        await db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the log says why
        logs.warn_unavailable(log, "readiness: the database did not answer", exc, database_down)
        checks["database"] = "the database did not answer"
        failed.append("database")
    if "database" not in failed:
        try:
            current = await migrate.current_revision(db)
        except Exception as exc:
            logs.warn_unavailable(
                log, "readiness: could not read the schema revision", exc, database_down
            )
            current = None
        head = migrate.head_revision()
        if current == head:
            checks["migrations"] = "ok"
        else:
            checks["migrations"] = (
                f"schema at revision {current or 'none'}, this version needs {head}: run "
                "`satshare migrate`"
            )
            failed.append("migrations")
    if queue is None:
        checks["jobs"] = "no job queue in this process"
    else:
        try:
            await queue.list_queues_async()
            checks["jobs"] = "ok"
        except Exception as exc:
            logs.warn_unavailable(log, "readiness: the job queue did not answer", exc, _queue_down)
            checks["jobs"] = "the job queue did not answer"
            failed.append("jobs")
    if failed:
        return problem(
            503,
            "service-unavailable",
            "not ready: " + "; ".join(f"{name}: {checks[name]}" for name in failed),
            instance=request.url.path,
            checks=checks,
        )
    return JSONResponse({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    description="The Prometheus text format. Counters and histograms are this process's; the "
    "gauges that read the database (outbox backlog and lag, payouts by state) and the job "
    "queue are computed at scrape time. With `metrics.token` set, send it as a bearer "
    "token (401 without it). docs/operations.md describes every metric.",
    response_class=Response,
    responses={
        200: {"content": {metrics.CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **openapi_responses(401),
    },
)
async def prometheus_metrics(
    settings: SettingsDep,
    db: DbDep,
    clock: ClockDep,
    queue: JobQueueDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(metrics_bearer)],
) -> Response:
    token = settings.metrics.token
    if token is not None:
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise Unauthorized(
                "send Authorization: Bearer <metrics.token>"
                if not given
                else "the bearer token is not metrics.token"
            )
    await _refresh_gauges(db, clock, queue)
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)


async def _refresh_gauges(db: Database, clock: Clock, queue: JobQueue | None) -> None:
    """Set the gauges that are read, not counted; a source that fails leaves its gauges as
    they were (the scrape still answers, and the log says why)."""
    try:
        backlog = await outbox.backlog(db, clock.now())
        totals = await payouts.totals_by_state(db)
        metrics.set_outbox(backlog.by_status, backlog.lag_seconds)
        metrics.set_payouts(
            {state.value: t.count for state, t in totals.items()},
            {state.value: t.sats for state, t in totals.items()},
            frozenset(state.value for state in PayoutStatus),
        )
    except Exception as exc:
        logs.warn_unavailable(log, "metrics: the database did not answer", exc, database_down)
    if queue is not None:
        try:
            metrics.set_job_queue(list(await queue.list_queues_async()))
        except Exception as exc:
            logs.warn_unavailable(log, "metrics: the job queue did not answer", exc, _queue_down)
    metrics.set_db_pool(db.pool_status())


class OpsMiddleware:
    """Per request: an id for its log lines (the caller's ``X-Request-ID`` when it looks
    like one, else a new one, echoed in the answer), and for payment webhooks the time to
    the answer in ``satshare_webhook_duration_seconds``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        started = time.perf_counter()
        status = 500  # unless an answer starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        with logs.bound(request_id=request_id):
            try:
                await self.app(scope, receive, sending)
            finally:
                path: str = scope["path"]
                if path.startswith(_WEBHOOK_PREFIX) and scope["method"] == "POST":
                    provider = path[len(_WEBHOOK_PREFIX) :].split("/", 1)[0]
                    metrics.webhook_handled(provider, status, time.perf_counter() - started)


def _request_id(scope: Scope) -> str:
    headers: Mapping[bytes, bytes] = dict(scope.get("headers") or [])
    given = headers.get(b"x-request-id", b"").decode("latin-1")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def install(app: FastAPI) -> None:
    """Register the operations routes and middleware on the API."""
    app.include_router(router)
    app.add_middleware(OpsMiddleware)
