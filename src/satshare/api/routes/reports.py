"""Financial reports for the owner (monthly, as JSON, CSV or XLSX, and a chart) and an
affiliate's statement as a file."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from satshare.api.deps import AdminKey, ClockDep, DbDep, IdPath, ReadKey, SettingsDep
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.reports import files
from satshare.reports import flows as report_flows
from satshare.reports.monthly import MAX_PAGE_LINES, PAGE_LINES, current_month
from satshare.reports.schemas import MonthlyReportOut

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/reports", tags=["reports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MonthQuery = Annotated[
    str | None,
    Query(
        min_length=7,
        max_length=7,
        pattern=r"^[0-9]{4}-[0-9]{2}$",  # \d would take any script's digits
        description="YYYY-MM (UTC), from 2000-01 to 9998-12; the current month if omitted.",
        examples=["2026-11"],
    ),
]
#: A statement file holds at most this many commissions (newest first).
STATEMENT_LIMIT = 10_000


def _attachment(content: bytes | str, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/monthly",
    summary="The monthly financial report (admin): JSON, CSV or XLSX",
    description="Sales, refunds, gross, owner and affiliate shares, payouts and Stars per "
    "day, what affiliates were owed at the start and the end of the month, and one line per "
    "affiliate active that month or owed at its end, most earned first. The JSON holds a page "
    f"of those lines (`limit`, {PAGE_LINES} by default, at most {MAX_PAGE_LINES}; the next "
    "page with `cursor` set to `next_cursor`). `format=csv` gives the days (or, with "
    "`part=affiliates`, every affiliate line, streamed); `format=xlsx` gives a workbook with "
    "Summary, Days and Affiliates (every line) sheets.",
    response_model=MonthlyReportOut,
    responses={
        **openapi_responses(401, 403, 422),
        200: {
            "content": {
                "text/csv": {"example": "date,sales,refunds,gross_sats,..."},
                XLSX: {},
            }
        },
    },
)
async def monthly(
    db: DbDep,
    clock: ClockDep,
    _: AdminKey,
    month: MonthQuery = None,
    format_: Annotated[Literal["json", "csv", "xlsx"], Query(alias="format")] = "json",
    part: Annotated[Literal["days", "affiliates"], Query()] = "days",
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_PAGE_LINES,
            description="Affiliate lines in the JSON page (the files hold them all).",
        ),
    ] = PAGE_LINES,
    cursor: Annotated[
        str | None,
        Query(
            max_length=41,
            description="`next_cursor` of the previous page (JSON only).",
            examples=["25000:3"],
        ),
    ] = None,
) -> MonthlyReportOut | Response:
    now = clock.now()
    chosen = month or current_month(now)
    if format_ == "json":
        page = await report_flows.month(db, chosen, now, limit=limit, cursor=cursor)
        return MonthlyReportOut.model_validate(asdict(page))
    report = await report_flows.month(db, chosen, now)
    if format_ == "csv":
        name = f"satshare-{chosen}-{part}.csv"
        if part == "days":
            return _attachment(files.days_csv(report), "text/csv", name)
        return StreamingResponse(
            files.affiliates_csv_chunks(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    workbook = await asyncio.to_thread(files.monthly_xlsx, report)
    return _attachment(workbook, XLSX, f"satshare-{chosen}.xlsx")


@router.get(
    "/chart",
    summary="Revenue and commissions per day of a month, as PNG or SVG (admin)",
    responses={
        **openapi_responses(401, 403, 422),
        200: {"content": {"image/png": {}, "image/svg+xml": {}}},
    },
    response_class=Response,
)
async def chart(
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    _: AdminKey,
    month: MonthQuery = None,
    format_: Annotated[Literal["png", "svg"], Query(alias="format")] = "png",
) -> Response:
    now = clock.now()
    chosen = month or current_month(now)
    report = await report_flows.month(db, chosen, now)
    media = "image/png" if format_ == "png" else "image/svg+xml"
    # Drawing takes a CPU moment: off the event loop, so other requests are not held up.
    drawn = await asyncio.to_thread(files.chart, report, format_, name=settings.branding.shown_name)
    return Response(drawn, media_type=media)


@router.get(
    "/affiliates/{user_id}/statement",
    summary="An affiliate's commission statement as CSV or XLSX",
    description="Every commission (newest first, up to 10,000) with its proof of payment, "
    "terms, any clawback and its ledger entry hash: the JSON list is "
    "`GET /api/v1/affiliates/{user_id}/statements`.",
    responses={
        **openapi_responses(401, 403, 404, 422),
        200: {"content": {"text/csv": {"example": "transaction_id,created_at,..."}, XLSX: {}}},
    },
    response_class=Response,
)
async def statement(
    db: DbDep,
    _: ReadKey,
    user_id: IdPath,
    format_: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
) -> Response:
    rows = await report_flows.statements_of_user(db, user_id, limit=STATEMENT_LIMIT)
    if format_ == "csv":
        return _attachment(
            files.statement_csv(rows), "text/csv", f"satshare-affiliate-{user_id}.csv"
        )
    workbook = await asyncio.to_thread(files.statement_xlsx, rows)
    return _attachment(workbook, XLSX, f"satshare-affiliate-{user_id}.xlsx")
