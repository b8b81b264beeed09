"""The FastAPI application: the only place HTTP lives."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from satshare import __version__
from satshare.api import docs, problems, ratelimit
from satshare.api.audit import AdminApiAudit
from satshare.api.deps import ApiServices, bearer
from satshare.api.idempotency import IdempotencyMiddleware
from satshare.api.platforms import PLATFORM_GUARD
from satshare.api.routes import (
    affiliates,
    broadcasts,
    checkout,
    invoices,
    ops,
    payouts,
    promos,
    reports,
    root,
    subscriptions,
    telegram,
    transactions,
    transparency,
    users,
    webhook_endpoints,
    webhooks,
)
from satshare.schemas import Problem

DESCRIPTION = """
SatShare sells subscriptions to private Telegram channels and groups for bitcoin and splits
every payment between the owner and the affiliate who referred the buyer, in a double-entry,
hash-chained ledger.

**Authentication**: `Authorization: Bearer <api key>`; create keys with
`satshare api-key create --name NAME --scopes read,write,admin` (admin > write > read).

**Errors** are RFC 9457 `application/problem+json`. Strings are refused (422) beyond their
documented `maxLength` or with a NUL character, anywhere in the URL or the body. A body over
1 MiB (the payment processor webhooks: 256 KiB) is refused with 413 before it is read.

**Idempotency**: POSTs accept an `Idempotency-Key` header; a repeat replays the first response,
the same key with a different body is a 409.

**Pagination**: lists return `{items, next_cursor}`; pass `cursor=<next_cursor>` for the next page.
"""

#: What each group of operations is for, shown in /docs.
TAGS = [
    {"name": "users", "description": "Buyers and affiliates on any platform, with referral codes."},
    {
        "name": "subscriptions",
        "description": "Plans, subscriptions and the invoices that pay them.",
    },
    {"name": "transactions", "description": "The double-entry ledger: entries, memos, reversals."},
    {"name": "invoices", "description": "Refunds (with the commission clawed back)."},
    {
        "name": "affiliates",
        "description": "Terms and levels, suspension, terms acceptance, payout destination, "
        "statistics, split statements and the leaderboard. Commission is single-level and on "
        "sales only.",
    },
    {
        "name": "payouts",
        "description": "Paying affiliates: Lightning Address, LNURL, BOLT11 or on-chain, through "
        "LNbits, BTCPay or by hand; held before sending, never paid twice.",
    },
    {
        "name": "transparency",
        "description": "Public figures of how the money was shared, and the ledger's head hash.",
    },
    {"name": "reports", "description": "Monthly reports (JSON, CSV, XLSX), charts, statements."},
    {
        "name": "promo codes",
        "description": "Percent off, sats off or extra days, with plans, limits, validity and "
        "usage stats; the invoice bills the discounted price.",
    },
    {
        "name": "broadcasts",
        "description": "Messages to a segment of the bot's users: compose with the recipient "
        "count, preview, send now or at a time, cancel, follow the progress.",
    },
    {"name": "webhooks", "description": "Payment processor notifications (verified, re-fetched)."},
    {
        "name": "webhook endpoints",
        "description": "Outgoing webhooks (Standard Webhooks): where SatShare tells other "
        "systems what happened, signed, retried for 24 h, with a delivery log and replays.",
    },
]


def _honours_idempotency_key(path: str) -> bool:
    """Every POST of the API does, except webhooks (processors retry with their own ids)."""
    return not path.startswith("/api/v1/webhooks/")


def _api_key_first(schema: dict[str, Any]) -> None:
    """Swagger UI's Authorize dialog lists the schemes in the document's order, which is
    the order routes were added: /metrics (mounted first, outermost) would put its token
    above the API key nearly everyone needs."""
    schemes = schema.get("components", {}).get("securitySchemes")
    if schemes and bearer.scheme_name in schemes:
        ordered = {bearer.scheme_name: schemes[bearer.scheme_name]}
        schema["components"]["securitySchemes"] = {**ordered, **schemes}


def create_app(services: ApiServices) -> FastAPI:
    app = FastAPI(
        title="SatShare API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,  # served by api/docs.py from the installed package, not a CDN
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.services = services
    app.state.bot = None  # set once the Telegram bot has started
    problems.install(app)
    docs.install(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(AdminApiAudit)  # outside the idempotency record: a replay is not re-audited
    # Before an Idempotency-Key record is made for a request that is turned away (#14).
    app.add_middleware(ratelimit.RateLimitMiddleware, limiter=services.rate_limiter)
    app.add_middleware(problems.RefuseNulMiddleware)  # before any record is made
    # Outside all of those: a body over 1 MiB is refused before anything reads or counts it.
    app.add_middleware(problems.LimitBodyMiddleware)
    ops.install(app)  # /health, /ready, /metrics; request ids and webhook timing (outermost)
    for module in (
        root,
        users,
        subscriptions,
        transactions,
        invoices,
        payouts,
        affiliates,
        webhooks,
        checkout,
        telegram,
        transparency,
        reports,
        webhook_endpoints,
        broadcasts,
        promos,
    ):
        # Platform-bound keys reach only their platform's users (#14).
        app.include_router(module.router, dependencies=[PLATFORM_GUARD])
    app.include_router(affiliates.program_router, dependencies=[PLATFORM_GUARD])
    app.include_router(webhook_endpoints.types_router, dependencies=[PLATFORM_GUARD])
    if services.mount_panel is not None:
        services.mount_panel(app)  # the web admin panel at /admin (issue #12)
    # Sandbox mode only: the emulators, served inside our own app and reached over HTTP.
    app.router.routes.extend(services.sandbox_routes)
    # Their modules are imported only here: a process outside sandbox mode never loads them.
    if services.sandbox_pages is not None and services.sandbox_pages.chat is not None:
        from satshare.api.routes import sandbox

        # Only with the Bot API emulator: these pages let anyone create Telegram users and buy.
        app.include_router(sandbox.router)
    if services.sandbox_pages is not None and services.sandbox_pages.receiver is not None:
        from satshare.api.routes import sandbox_webhooks

        # Where sandbox webhook endpoints deliver (/sim/receiver/<name>), shown with each
        # signature checked.
        app.include_router(sandbox_webhooks.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
            Problem.model_json_schema()
        )
        _api_key_first(schema)
        problems.document_problems(schema, idempotent_post=_honours_idempotency_key)
        ratelimit.document(schema)
        for path_name, path in schema.get("paths", {}).items():
            for name, operation in path.items():
                if name == "post" and _honours_idempotency_key(path_name):
                    operation.setdefault("parameters", []).append(
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "Repeat-safe POST: the first response is replayed.",
                            "schema": {"type": "string", "maxLength": 255},
                        }
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
