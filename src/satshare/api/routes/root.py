from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from satshare import __version__
from satshare.api.deps import SandboxDep, SettingsDep
from satshare.api.pages import render, wants_html
from satshare.api.problems import PROBLEM_TYPES
from satshare.api.routing import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute, tags=["service"])
log = logging.getLogger(__name__)


@router.get(
    "/",
    summary="Welcome: what this is and where to go",
    description="JSON for API clients; a browser (`Accept: text/html` first) gets the "
    "HTML welcome page with the same links.",
    response_model=dict[str, Any],
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
async def welcome(settings: SettingsDep, sandbox_pages: SandboxDep, request: Request) -> Any:
    base = settings.server.base_url
    if wants_html(request):
        return render(
            request,
            "home.html",
            version=__version__,
            base_url=base,
            sandbox=sandbox_pages is not None,
            sandbox_chat=sandbox_pages is not None and sandbox_pages.chat is not None,
        )
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


@router.get("/problems/{code}", response_class=HTMLResponse, include_in_schema=False)
async def problem_type(code: str) -> HTMLResponse:
    if code not in PROBLEM_TYPES:
        return HTMLResponse("<h1>Unknown problem type</h1>", status_code=404)
    title, explanation = PROBLEM_TYPES[code]
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        f"<h1>{title}</h1><p>{explanation}</p><p><a href='/docs'>API documentation</a></p>"
    )


#: The tab icon: a bitcoin-orange disc with a white "S". Browsers ask every site for
#: /favicon.ico (and log a 404 when there is none); SVG is drawn at any size.
FAVICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<circle cx="16" cy="16" r="16" fill="#f7931a"/>'
    b'<text x="16" y="23" font-family="Arial,Helvetica,sans-serif" font-size="20" '
    b'font-weight="700" fill="#fff" text-anchor="middle">S</text></svg>'
)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    return Response(
        FAVICON_SVG,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )
