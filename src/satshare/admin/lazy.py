"""The panel mounted at /admin but built at its first request (#15).

SQLAdmin, WTForms and the panel's views and pages cost every ``serve`` about 3 MiB of
resident memory and a few tenths of a second at start, for a page most processes never
serve. ``mount_on_first_use`` mounts a stand-in that builds the real panel (``app.mount``)
when the first request for /admin arrives. This module imports nothing of the panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI

    from satshare.admin.services import AdminServices

#: Where the panel lives (``admin.app.BASE_URL``, which a test compares).
BASE_URL = "/admin"


class LazyPanel:
    """An ASGI app that is the panel once built: its routes (so ``url_for("admin:…")`` finds
    them) and every other attribute are the panel's, as if it were mounted directly."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None

    @property
    def built(self) -> bool:
        return self._app is not None

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            self._app = self._build()  # synchronous: two first requests cannot both build
        return self._app

    @property
    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = getattr(self.app, "routes", [])
        return routes

    def __getattr__(self, name: str) -> object:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def mount_on_first_use(app: FastAPI, services: Callable[[], AdminServices]) -> LazyPanel:
    """Mount the panel at /admin in ``app``; it is built from ``services()`` when first used."""

    def build() -> ASGIApp:
        from fastapi import FastAPI

        from satshare.admin.app import mount

        # SQLAdmin mounts itself into the app it is given: a bare one here, whose /admin
        # mount (the panel's own Starlette app, middleware included) is what we serve.
        host = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        return mount(host, services()).admin

    panel = LazyPanel(build)
    app.mount(BASE_URL, panel, name="admin")
    return panel
