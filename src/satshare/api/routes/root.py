from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from satshare import __version__
from satshare.api.deps import DbDep, SandboxDep, SettingsDep
from satshare.api.problems import PROBLEM_TYPES, problem

router = APIRouter(tags=["service"])


@router.get("/", summary="Welcome: what this is and where to go")
async def welcome(settings: SettingsDep, sandbox_pages: SandboxDep) -> dict[str, Any]:
    base = settings.server.base_url
    links = {
        "docs": f"{base}/docs",
        "openapi": f"{base}/openapi.json",
        "health": f"{base}/health",
        "plans": f"{base}/api/v1/subscriptions/types",
        "users": f"{base}/api/v1/users",
        "subscriptions": f"{base}/api/v1/subscriptions",
        "transactions": f"{base}/api/v1/transactions",
    }
    body: dict[str, Any] = {
        "name": "SatShare",
        "version": __version__,
        "description": "Telegram channel subscriptions paid in bitcoin, every sale split with "
        "the referring affiliate in an auditable double-entry ledger.",
        "mode": "sandbox" if sandbox_pages else "live",
        "links": links,
    }
    if sandbox_pages:
        body["sandbox"] = (
            "No payment processor is configured: invoices are created on the built-in BTCPay "
            "emulator (regtest, no real coins). Open an invoice's checkout_url and press "
            "'Simulate payment'."
        )
    return body


@router.get("/health", summary="Liveness and database check")
async def health(db: DbDep, sandbox_pages: SandboxDep) -> JSONResponse:
    try:
        await db.ping()
    except Exception as exc:  # any failure means "not healthy"; say which
        return problem(503, "service-unavailable", f"database unreachable: {type(exc).__name__}")
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "database": db.dialect,
            "mode": "sandbox" if sandbox_pages else "live",
        }
    )


@router.get("/problems/{code}", response_class=HTMLResponse, include_in_schema=False)
async def problem_type(code: str) -> HTMLResponse:
    if code not in PROBLEM_TYPES:
        return HTMLResponse("<h1>Unknown problem type</h1>", status_code=404)
    title, explanation = PROBLEM_TYPES[code]
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        f"<h1>{title}</h1><p>{explanation}</p><p><a href='/docs'>API documentation</a></p>"
    )
