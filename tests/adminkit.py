"""Helpers for the admin panel tests: accounts, a logged-in HTTP client that fills in the
CSRF token as the panel's own forms do, and Chromium kept on this machine."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.async_api import BrowserContext, Page, Route

from satshare.audit import repository as audit_repository
from satshare.staff import service as accounts
from satshare.staff.models import Role
from tests.botkit import BotStack
from tests.browser import chromium
from tests.conftest import Stack

PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def admin_user(
    stack: Stack | BotStack, username: str, role: Role, password: str = PASSWORD
) -> None:
    async with stack.container.db.transaction() as session:
        await accounts.create_user(session, username, role, password, stack.container.clock.now())


def token_in(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


class Panel:
    """An operator's browser, over HTTP: cookies kept, redirects not followed."""

    def __init__(self, stack: Stack) -> None:
        self.client = httpx.AsyncClient(base_url=stack.url, timeout=60)
        self.token = ""

    async def __aenter__(self) -> Panel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        page = await self.client.get("/admin/login")
        response = await self.client.post(
            "/admin/login",
            data={"username": username, "password": password, "csrf_token": token_in(page.text)},
        )
        if response.status_code == 302:
            self.token = token_in((await self.client.get("/admin/desk/ledger")).text)
        return response

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": self.token, **(data or {})})

    async def notices(self, path: str) -> str:
        """The page the action sent us back to (its notices included)."""
        return (await self.client.get(path)).text


async def audit_actions(stack: Stack | BotStack) -> list[str]:
    async with stack.container.db.reading() as session:
        return [e.action for e in await audit_repository.search(session, limit=1000)]


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@asynccontextmanager
async def offline_context(width: int = 1280) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    """A browser context that can reach only this machine; ``outside`` lists what a page
    tried to load from anywhere else."""
    outside: list[str] = []

    async def guard(route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            await route.continue_()
        else:
            outside.append(url)
            await route.abort()

    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": width, "height": 900})
        await context.route("**/*", guard)
        try:
            yield context, outside
        finally:
            await context.close()


async def login(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
