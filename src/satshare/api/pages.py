"""What every HTML page shares: the templates, the page's language, and telling a browser
from an API client."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from satshare.api import texts as web
from satshare.api.deps import services_of
from satshare.config import BrandingSettings
from satshare.i18n import LANGUAGES, Plural, format_number, translate

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates


@functools.cache
def templates() -> Jinja2Templates:
    """The pages' one template set (one Jinja environment and cache), made at the first page:
    Jinja2 is not loaded by a process that never renders one, such as an API-only ``serve``
    (#15: idle memory)."""
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(directory=str(Path(__file__).parents[1] / "templates"))


#: The language a visitor chose with a page's switcher (?lang=), kept for the next pages.
LANGUAGE_COOKIE = "satshare_lang"


def page_language(request: Request) -> str:
    """?lang= wins, then the language chosen on an earlier page (a cookie), then the
    browser's Accept-Language, then English."""
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        return chosen
    kept = request.cookies.get(LANGUAGE_COOKIE)
    if kept in LANGUAGES:
        return kept
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return "en"


def wants_html(request: Request) -> bool:
    """A browser asks for text/html before JSON; curl and API clients do not."""
    html = json = None
    for position, part in enumerate(request.headers.get("accept", "").split(",")):
        kind = part.split(";")[0].strip().lower()
        if kind == "text/html" and html is None:
            html = position
        elif kind in ("application/json", "application/problem+json") and json is None:
            json = position
    return html is not None and (json is None or html < json)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page in the request's language: templates get ``t(message, **values)`` and ``web``
    (the message ids) besides ``context``."""
    language = context.pop("language", None) or page_language(request)

    def t(message: str | Plural, **values: object) -> str:
        return translate(language, message, **values)

    def n(value: int) -> str:
        return format_number(language, value)

    branding: BrandingSettings = services_of(request).settings.branding
    shared = {
        "t": t,
        "n": n,
        "web": web,
        "language": language,
        "brand": branding.shown_name,
        "support": branding.support_contact or t(web.SUPPORT_DEFAULT),
        "terms_url": branding.terms_url,
    }
    response = templates().TemplateResponse(
        request, template, {**shared, **context}, status_code=status_code
    )
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:  # the switcher: the next pages keep the choice
        response.set_cookie(
            LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="lax", httponly=True
        )
    return response
