"""Public transparency (page and JSON, no key) and per-payment split statements."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from satshare.api.deps import ClockDep, DbDep, IdPath, Page, ReadKey, SettingsDep
from satshare.api.pages import render
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.clock import Clock
from satshare.db import Database
from satshare.reports import flows as report_flows
from satshare.reports.schemas import (
    FiguresOut,
    LedgerHeadOut,
    MonthOut,
    StatementOut,
    TransparencyOut,
)
from satshare.schemas import PageOf

router = APIRouter(route_class=StrictJSONRoute, tags=["transparency"])

#: Anonymous callers get a copy at most this old: the figures are cheap to read (sums per
#: day, kept by the sealer), but a public page should not cost a query per request either.
CACHE_SECONDS = 15.0


async def _compute(db: Database, clock: Clock) -> TransparencyOut:
    data = await report_flows.transparency(db, clock.now())
    return TransparencyOut(
        months=[MonthOut(**asdict(m)) for m in data.months],
        totals=FiguresOut(**asdict(data.totals)),
        owed_sats=data.owed_sats,
        ledger=LedgerHeadOut(
            entries=data.entries,
            sealed_entries=data.sealed_entries,
            head_seq=data.head_seq,
            head_hash=data.head_hash,
        ),
        generated_at=data.generated_at,
        note=data.currency_note,
    )


async def _figures(db: Database, clock: Clock, request: Request) -> TransparencyOut:
    """The cached copy, or a new one. Single-flight: requests arriving while one is being
    read wait for that read instead of each starting their own."""
    state = request.app.state
    cached = getattr(state, "transparency", None)
    if cached is not None and cached[0] > time.monotonic():
        figures: TransparencyOut = cached[1]
        return figures
    reading: asyncio.Future[TransparencyOut] | None = getattr(state, "transparency_read", None)
    if reading is None or reading.done():
        reading = asyncio.ensure_future(_compute(db, clock))
        state.transparency_read = reading

        def keep(done: asyncio.Future[TransparencyOut]) -> None:
            if not done.cancelled() and done.exception() is None:
                state.transparency = (time.monotonic() + CACHE_SECONDS, done.result())

        reading.add_done_callback(keep)
    # Shielded: a caller that goes away does not cancel the read the others wait for.
    return await asyncio.shield(reading)


@router.get(
    "/api/v1/transparency",
    response_model=TransparencyOut,
    summary="How the money was shared, per month (public, no key)",
    description="Gross sales, owner and affiliate shares, payouts and what is owed to "
    "affiliates, per month, computed from the ledger's postings; and the hash-chain head. "
    "Anyone given `satshare ledger export` can recompute every figure (docs/ledger.md). "
    f"Cached for up to {CACHE_SECONDS:g} seconds.",
    responses=openapi_responses(503),
)
async def get_transparency(db: DbDep, clock: ClockDep, request: Request) -> TransparencyOut:
    return await _figures(db, clock, request)


@router.get("/transparency", response_class=HTMLResponse, include_in_schema=False)
async def transparency_page(
    settings: SettingsDep, db: DbDep, clock: ClockDep, request: Request
) -> HTMLResponse:
    figures = await _figures(db, clock, request)
    return render(
        request,
        "transparency.html",
        figures=figures,
        months=list(reversed(figures.months)),
        share=f"{settings.affiliate.share_bps / 100:g}",
        levels=[(level.name, f"{level.share_bps / 100:g}") for level in settings.affiliate.levels],
        hold_days=settings.affiliate.hold_days,
    )


@router.get(
    "/api/v1/affiliates/{user_id}/statements",
    response_model=PageOf[StatementOut],
    tags=["affiliates"],
    summary="Per-payment split statements of an affiliate's commissions (newest first)",
    description="For each commission: the invoice, the processor's proof of payment, the "
    "gross, the share and terms used, the commission, any clawback, and the ledger entry's "
    "place and hash in the chain.",
    responses=openapi_responses(400, 401, 403, 404, 422),
)
async def list_statements(
    db: DbDep, _: ReadKey, user_id: IdPath, page: Page
) -> PageOf[StatementOut]:
    rows = await report_flows.statements_of_user(
        db, user_id, limit=page.fetch, before_id=page.before_id
    )
    items = [StatementOut(**asdict(s)) for s in rows[: page.limit]]
    return page.of(len(rows), items, lambda item: item.transaction_id)
