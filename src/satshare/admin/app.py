"""Mounting the panel at /admin inside SatShare's FastAPI app."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from sqladmin import Admin
from sqladmin.authentication import login_required
from sqladmin.i18n import I18nConfig
from sqladmin.i18n import ngettext as sqladmin_ngettext
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from satshare.admin import broadcast_pages, pages, promo_pages, webhook_pages
from satshare.admin.auth import PanelAuth, SessionGuard, csrf_ok, csrf_token, operator
from satshare.admin.services import AdminServices
from satshare.admin.texts import language, t
from satshare.admin.views import MODEL_VIEWS
from satshare.i18n import LANGUAGES, format_number

if TYPE_CHECKING:
    from fastapi import FastAPI

HERE = Path(__file__).parent
BASE_URL = "/admin"


class Panel(Admin):
    """SQLAdmin with the dashboard as its index page and a logout that needs a POST."""

    @login_required
    async def index(self, request: Request) -> Response:
        return await pages.dashboard_page(self, request)

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


def _gettext(message: str) -> str:
    return t(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return sqladmin_ngettext(singular, plural, n)


def _label(value: str) -> str:
    """A stored state ("awaiting_approval") as the panel shows it: its translation, or, in
    English (the state is its own msgid), its words ("awaiting approval")."""
    shown = t(value)
    return shown.replace("_", " ") if shown == value else shown


def _number(value: int) -> str:
    """An amount as the panel's language writes it (10,000 or 10 000)."""
    return format_number(language(), value)


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
    # Our guard must see the session, so it goes after SessionMiddleware in the stack.
    panel.admin.user_middleware.append(Middleware(SessionGuard, services=services))
    panel.admin.middleware_stack = None
    env = panel.templates.env
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["csrf_token"] = csrf_token
    env.globals["operator"] = operator
    env.globals["language"] = language
    env.globals["t"] = t
    env.globals["n"] = _number
    env.globals["label"] = _label
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
