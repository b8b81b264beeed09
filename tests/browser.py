"""Real Chromium (Debian's) driven by Playwright; browsers cannot be downloaded here."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("SATSHARE_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError(
            "Chromium is needed for the browser tests: `make browser` installs Debian's package "
            "(or set SATSHARE_CHROMIUM=/path/to/chromium)"
        )
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def refuse_outside(target: Page | BrowserContext) -> list[str]:
    """Refuse every request of ``target`` that would leave the machine (t.me included), as
    on a host with no internet; the list returned fills with what was refused."""
    outside: list[str] = []

    async def guard(route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            await route.continue_()
        else:
            outside.append(url)
            await route.abort("internetdisconnected")

    await target.route("**/*", guard)
    return outside


@asynccontextmanager
async def offline_context(width: int = 1280) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    """A browser context that can reach only this machine; ``outside`` lists what a page
    tried to load from anywhere else."""
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": width, "height": 900})
        outside = await refuse_outside(context)
        try:
            yield context, outside
        finally:
            await context.close()
