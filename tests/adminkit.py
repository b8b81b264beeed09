"""Helpers for the admin panel tests: accounts, and a logged-in HTTP client that fills in the
CSRF token as the panel's own forms do."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import Page

from satshare.audit import repository as audit_repository
from satshare.staff import service as accounts
from satshare.staff.models import Role
from tests.botkit import BotStack
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


async def browser_login(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the panel's login form in a real browser."""
    await page.goto(f"{base}/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")


class Panel:
    """An operator's browser, over HTTP: cookies kept, redirects not followed."""

    def __init__(self, stack: Stack | BotStack) -> None:
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
