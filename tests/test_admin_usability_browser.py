"""The admin panel in Debian's Chromium, as a new operator meets it: the menu on a phone (one
bar, opened under it across the width) and on a desktop (the sidebar); a deep link opened
logged out returns there after the login, the user name kept after a wrong password; a
wrong address is the panel's own page. SATSHARE_SCREENSHOTS=dir keeps the screenshots."""

from __future__ import annotations

import os
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.async_api import Page

from satshare.staff.models import Role
from tests.adminkit import PASSWORD, admin_user
from tests.browser import offline_context
from tests.conftest import Stack

#: Read at import: the stack fixture clears SATSHARE_* variables from the environment.
SCREENSHOTS = os.environ.get("SATSHARE_SCREENSHOTS")


async def _boxes(page: Page, selector: str) -> list[dict[str, float]]:
    """The boxes of the visible elements matching ``selector``, top to bottom."""
    found: list[dict[str, float]] = await page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .map(e => e.getBoundingClientRect())
            .filter(r => r.width > 0 && r.height > 0)
            .map(r => ({x: r.x, y: r.y, width: r.width, height: r.height}))""",
        selector,
    )
    return found


async def _sideways(page: Page) -> int:
    overflow: int = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return overflow


MENU_LINKS = "#navbar-menu .navbar-nav > .nav-item > .nav-link"
TOGGLE = "aside .navbar-toggler"


@pytest.mark.browser
async def test_the_menu_on_a_phone_and_a_desktop(stack: Stack, tmp_path: Path) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    folder = Path(SCREENSHOTS or tmp_path)
    os.makedirs(folder, exist_ok=True)
    for width in (390, 600):
        async with offline_context(width) as (context, outside):
            page = await context.new_page()
            # A deep link opened logged out: the login, then that page.
            await page.goto(f"{stack.url}/admin/desk/payouts?status=paid")
            await page.fill("#username", "olga")
            await page.fill("#password", "not the password")
            await page.click("button[type=submit]")
            assert "Wrong user name or password." in await page.inner_text("#login-error")
            assert await page.input_value("#username") == "olga"
            assert await page.input_value("#password") == ""
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{stack.url}/admin/desk/payouts?status=paid")
            # Closed, the menu is one bar: the name, logout and the toggle in a row.
            assert await page.locator(MENU_LINKS).first.is_hidden()
            (bar,) = await _boxes(page, "aside.navbar-vertical")
            assert bar["height"] <= 80, bar
            (name,) = await _boxes(page, "aside .navbar-brand")
            (toggle,) = await _boxes(page, TOGGLE)
            (logout,) = await _boxes(page, "#logout")
            for other in (toggle, logout):
                assert abs(other["y"] + other["height"] / 2 - (name["y"] + name["height"] / 2)) < 12
            assert name["x"] < logout["x"] < toggle["x"] <= width - toggle["width"]
            await page.screenshot(path=folder / f"menu-closed-{width}.png")
            # Open, the items are under the bar, one a line across the width, none cut off.
            await page.click(TOGGLE)
            await page.locator(MENU_LINKS).first.wait_for(state="visible")
            await page.wait_for_timeout(400)  # the collapse animation
            links = await _boxes(page, MENU_LINKS)
            assert len(links) >= 10
            assert links[0]["y"] >= name["y"] + name["height"]
            for link in links:
                assert link["x"] >= 0 and link["x"] + link["width"] <= width, link
                assert link["width"] >= width * 0.8, link
            for upper, lower in pairwise(links):
                assert lower["y"] >= upper["y"] + upper["height"] - 1, (upper, lower)
            # The records are a group that opens in place, in the same column.
            await page.click("[data-sqladmin-menu-category] > .nav-link")
            records = await _boxes(page, "[data-sqladmin-menu-category] .dropdown-menu .nav-link")
            assert len(records) >= 10
            assert all(r["x"] >= 0 and r["x"] + r["width"] <= width for r in records)
            await page.screenshot(path=folder / f"menu-open-{width}.png", full_page=True)
            assert await _sideways(page) <= 1
            await page.click(f"{MENU_LINKS} >> text=Audit log")
            await page.wait_for_url(f"{stack.url}/admin/desk/audit")
            # A wrong address: the panel's page, with the bar and a way back.
            response = await page.goto(f"{stack.url}/admin/user/details/999999?lang=ru")
            assert response is not None and response.status == 404
            assert await page.inner_text(".page-title") == "Не найдено"  # noqa: RUF001
            assert await page.locator(TOGGLE).is_visible()
            await page.screenshot(path=folder / f"not-found-ru-{width}.png", full_page=True)
            await page.click("#back-to-dashboard")
            await page.wait_for_url(f"{stack.url}/admin/")
            assert await _sideways(page) <= 1
            assert outside == []
    async with offline_context(1280) as (context, outside):
        page = await context.new_page()
        await page.goto(f"{stack.url}/admin/login")
        await page.fill("#username", "olga")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{stack.url}/admin/")
        # The sidebar: every item shown without a toggle, one under another at the left.
        assert await page.locator(TOGGLE).is_hidden()
        links = await _boxes(page, MENU_LINKS)
        assert len(links) >= 10
        assert all(link["x"] + link["width"] <= 260 for link in links), links
        for upper, lower in pairwise(links):
            assert lower["y"] >= upper["y"] + upper["height"] - 1
        await page.screenshot(path=folder / "menu-1280.png")
        response = await page.goto(f"{stack.url}/admin/nonexistent")
        assert response is not None and response.status == 404
        assert await page.inner_text(".page-title") == "Not found"
        await page.screenshot(path=folder / "not-found-en-1280.png", full_page=True)
        assert outside == []
