"""Mounting the panel at /admin inside SatShare's FastAPI app."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from sqladmin import Admin
from sqladmin.authentication import login_required
from sqladmin.i18n import I18nConfig
from sqladmin.i18n import ngettext as sqladmin_ngettext
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from satshare.admin import broadcast_pages, pages, promo_pages, webhook_pages
from satshare.admin.auth import (
    PanelAuth,
    SessionGuard,
    csrf_ok,
    csrf_token,
    operator,
    return_path,
)
from satshare.admin.services import AdminServices
from satshare.admin.texts import N_, label, language, number, t
from satshare.admin.views import MODEL_VIEWS
from satshare.i18n import LANGUAGES

if TYPE_CHECKING:
    from fastapi import FastAPI

HERE = Path(__file__).parent
BASE_URL = "/admin"


class Panel(Admin):
    """SQLAdmin with the dashboard as its index page and a logout that needs a POST."""

    @login_required
    async def index(self, request: Request) -> Response:
        return await pages.dashboard_page(self, request)

    async def login(self, request: Request) -> Response:
        """SQLAdmin's login, except that it returns to the page asked for before it (``next``,
        carried by the form; ``auth.return_path`` lets only a panel path of this site
        through), else to the dashboard."""
        root = request.scope.get("root_path", "")
        if request.method != "POST":
            wanted = return_path(root, request.query_params.get("next"))
            return await pages.render(self, request, "sqladmin/login.html", next=wanted)
        assert self.authentication_backend is not None
        outcome = await self.authentication_backend.login(request)
        if outcome is not True:
            # PanelAuth answers every refusal itself: the form again, with the reason.
            assert isinstance(outcome, Response)
            return outcome
        form = await request.form()
        target = return_path(root, form.get("next")) or str(request.url_for("admin:index"))
        return RedirectResponse(target, status_code=302)

    async def logout(self, request: Request) -> Response:
        """POST with the session's CSRF token ends the session; a GET (a link, or another
        site's image tag) only asks to confirm, so nobody is logged out by a page they
        opened. (SQLAdmin's own logout is a GET.)"""
        if request.method != "POST":
            return await pages.render(self, request, "satshare/logout.html")
        form = await request.form()
        if not csrf_ok(request, form.get("csrf_token")):
            return await pages.refuse_forged(self, request)
        assert self.authentication_backend is not None
        await self.authentication_backend.logout(request)
        return RedirectResponse(request.url_for("admin:login"), status_code=303)

    async def refusal(self, request: Request, exc: Exception) -> Response:
        """What SQLAdmin and Starlette raise under /admin (an address or a record that does
        not exist, a write route of a read-only view, a page number that is not one) as the
        panel's own page in the operator's language, its status kept (SQLAdmin's error page
        has neither menu nor a way back). Without a session only the login form and the
        assets answer, so their refusals stay plain text."""
        if not isinstance(exc, HTTPException):
            raise TypeError(f"expected an HTTPException, got {type(exc).__name__}")
        if operator(request) is None:
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        response = await pages.render(
            self,
            request,
            "satshare/refused.html",
            status_code=exc.status_code,
            message=t(REFUSALS.get(exc.status_code, REFUSED)),
        )
        response.headers.update(exc.headers or {})  # a 405's Allow
        return response


#: Why SQLAdmin or Starlette refused, as the operator reads it (``Panel.refusal``).
REFUSALS = {
    400: N_("The address has a value the panel cannot read (a page number, a sort order)."),
    403: N_("Not allowed: the records are read-only here, and some pages are for the owner only."),
    404: N_("There is no such page or record. The link may be wrong or out of date."),
}
REFUSED = N_("The panel cannot answer this request.")


def _gettext(message: str) -> str:
    return t(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return sqladmin_ngettext(singular, plural, n)


def session_secret(services: AdminServices) -> str:
    configured = services.settings.admin.session_secret
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    # No secret configured: sessions last until the next restart of this process.
    return secrets.token_urlsafe(48)


def mount(app: FastAPI, services: AdminServices) -> Panel:
    """The panel at /admin inside ``app`` (the composition root calls this through
    ``ApiServices.mount_panel``)."""
    auth = PanelAuth(services, session_secret(services))
    panel = Panel(
        app,
        # SQLAdmin's model views read through the engine themselves (views.py).
        engine=services.db.engine,
        base_url=BASE_URL,
        title="SatShare",
        templates_dir=str(HERE / "templates"),
        authentication_backend=auth,
        # Runs after the session middleware (SQLAdmin adds the backend's middlewares after
        # these): the guard reads the session.
        middlewares=[],
        i18n_config=I18nConfig(default_locale="en", language_switcher=list(LANGUAGES)),
    )
    auth.admin = panel
    panel.admin.exception_handlers[HTTPException] = panel.refusal
    # Our guard must see the session, so it goes after SessionMiddleware in the stack.
    panel.admin.user_middleware.append(Middleware(SessionGuard, services=services))
    panel.admin.middleware_stack = None
    env = panel.templates.env
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["csrf_token"] = csrf_token
    env.globals["operator"] = operator
    env.globals["language"] = language
    env.globals["t"] = t
    env.globals["n"] = number
    env.globals["label"] = label
    panel.admin.router.routes.insert(
        0, Mount("/assets", app=StaticFiles(directory=HERE / "static"), name="assets")
    )
    # SQLAdmin routes GET /logout only; ours answers POST too (Panel.logout).
    panel.admin.router.routes = [
        Route("/logout", endpoint=panel.logout, name="logout", methods=["GET", "POST"])
        if getattr(route, "name", None) == "logout"
        else route
        for route in panel.admin.router.routes
    ]
    panel.admin.state.admin_services = services
    # The workplaces first in the menu, the raw records after them.
    for page in (*pages.PAGES, *broadcast_pages.PAGES, *promo_pages.PAGES, *webhook_pages.PAGES):
        panel.add_view(page)
    for view in MODEL_VIEWS:
        panel.add_view(view)
    return panel
