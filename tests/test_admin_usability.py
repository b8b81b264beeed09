"""The admin panel as a new operator meets it, over HTTP: a wrong address is the panel's own
page, the login keeps the user name and returns to the page asked for (never to another
site), and the record pages show values as words and numbers, not as stored codes."""

from __future__ import annotations

import re

import httpx
import pytest

from satshare.admin.auth import return_path
from satshare.i18n import format_number
from satshare.staff.models import Role
from tests.adminkit import PASSWORD, Panel, admin_user, token_in
from tests.conftest import Stack
from tests.historykit import history
from tests.historykit import stack as stack
from tests.lightningkit import Lightning

#: Addresses under /admin that lead nowhere: no such page, model, record or id.
NOWHERE = (
    "/admin/nonexistent",
    "/admin/nosuchmodel/list",
    "/admin/user/details/999999",
    "/admin/user/details/abc",
    "/admin/user/details/-1",
    "/admin/user/details/99999999999999999999999",
    "/admin/plan/details/%E2%82%AC%F0%9F%98%80",
    "/admin/payout/details/1/extra",
    "/admin/desk/nope",
    "/admin/desk/%D0%AF/%F0%9F%98%80",
    "/admin/" + "x" * 3000,
)


async def test_a_wrong_address_is_the_panels_own_page_in_the_chosen_language(
    stack: Stack,
) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    async with Panel(stack) as panel:
        await panel.login("olga")
        for language, title, words in (
            ("en", "Not found", "There is no such page or record."),
            ("ru", "Не найдено", "Такой страницы или записи нет."),  # noqa: RUF001
        ):
            await panel.get(f"/admin/?lang={language}")  # the choice is remembered
            for path in NOWHERE:
                response = await panel.get(path)
                assert response.status_code == 404, path[:80]
                page = response.text
                assert f'<h2 class="page-title">{title}</h2>' in page, path[:80]
                assert words in page, path[:80]
                # The panel around it: the menu, and a way back to the dashboard.
                assert 'id="navbar-menu"' in page and 'id="back-to-dashboard"' in page
                assert f'href="{stack.url}/admin/"' in page
        await panel.get("/admin/?lang=en")
        # SQLAdmin's other refusals read the same way, their status kept.
        edit = await panel.get("/admin/payout/edit/abc")
        assert edit.status_code == 403
        assert '<h2 class="page-title">Not allowed</h2>' in edit.text
        assert "the records are read-only here" in edit.text
        page = await panel.get("/admin/user/list?page=abc")
        assert page.status_code == 400
        assert '<h2 class="page-title">Not understood</h2>' in page.text
        posted = await panel.client.post("/admin/user/list")
        assert posted.status_code == 405
        assert set(posted.headers["allow"].split(", ")) == {"GET", "HEAD"}
        assert 'id="refused"' in posted.text
    # Without a session a wrong address is the login, as every other address.
    async with httpx.AsyncClient(base_url=stack.url) as anonymous:
        answer = await anonymous.get("/admin/nonexistent")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/admin/login")


@pytest.mark.parametrize(
    "wanted",
    [
        "//evil.com",
        "//evil.com/admin/",
        "https://evil.com/admin/",
        "http:/admin/x",
        "/\\evil.com",
        "/admin\\..\\x",
        "/admin/../evil",
        "/admin/%2e%2e/evil",
        "/admin/./x",
        "/admin//evil.com",
        "/admin@evil.com",
        "/administrator",
        "/admin",
        "/transparency",
        "admin/x",
        "javascript:alert(1)",
        "/admin/x\r\nSet-Cookie: a=b",
        "/admin/x y",
        "/admin/x#top",
        "/admin/login",
        "/admin/logout",
        "/admin/" + "x" * 2001,
        "",
        None,
        ["/admin/"],
    ],
)
def test_a_login_returns_nowhere_but_a_panel_page(wanted: object) -> None:
    assert return_path("/admin", wanted) is None


def test_a_login_returns_to_a_panel_page() -> None:
    for wanted in ("/admin/", "/admin/desk/payouts?status=paid", "/admin/user/details/12"):
        assert return_path("/admin", wanted) == wanted


async def test_the_login_keeps_the_user_name_and_returns_to_the_page_asked_for(
    stack: Stack,
) -> None:
    await admin_user(stack, "olga", Role.OWNER)
    wanted = "/admin/desk/payouts?status=paid"
    async with httpx.AsyncClient(base_url=stack.url) as browser:
        sent = await browser.get(wanted)
        assert sent.status_code == 303
        assert (
            sent.headers["location"]
            == "/admin/login?next=%2Fadmin%2Fdesk%2Fpayouts%3Fstatus%3Dpaid"
        )
        form = await browser.get(sent.headers["location"])
        assert f'name="next" value="{wanted}"' in form.text
        # A wrong password: the user name stays, the password does not, nor does the page.
        wrong = await browser.post(
            "/admin/login",
            data={
                "username": "olga",
                "password": "not the password",
                "csrf_token": token_in(form.text),
                "next": wanted,
            },
        )
        assert wrong.status_code == 400
        assert re.search(r'<input id="username"[^>]* value="olga"', wrong.text)
        assert "not the password" not in wrong.text
        assert f'name="next" value="{wanted}"' in wrong.text
        right = await browser.post(
            "/admin/login",
            data={
                "username": "olga",
                "password": PASSWORD,
                "csrf_token": token_in(wrong.text),
                "next": wanted,
            },
        )
        assert (right.status_code, right.headers["location"]) == (302, wanted)
        assert (await browser.get(wanted)).status_code == 200
    # Another site, or a path outside the panel, is not returned to: the dashboard instead.
    for elsewhere in ("//evil.com", "https://evil.com/admin/", "/transparency"):
        async with httpx.AsyncClient(base_url=stack.url) as browser:
            form = await browser.get("/admin/login", params={"next": elsewhere})
            assert 'name="next"' not in form.text
            answer = await browser.post(
                "/admin/login",
                data={
                    "username": "olga",
                    "password": PASSWORD,
                    "csrf_token": token_in(form.text),
                    "next": elsewhere,
                },
            )
            assert (answer.status_code, answer.headers["location"]) == (302, f"{stack.url}/admin/")


def _rows(html: str) -> dict[str, str]:
    """A detail page's table: label → value, tags and spaces stripped."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", body, flags=re.S)
    return {
        " ".join(re.sub(r"<[^>]+>", " ", k).split()): " ".join(re.sub(r"<[^>]+>", " ", v).split())
        for k, v in rows
    }


RAW = re.compile(r">\s*(None|True|False)\s*<|\d\d:\d\d:\d\d\.\d{6}|\+00:00")


async def test_record_pages_show_words_and_numbers_not_stored_codes(
    stack: Stack, lightning: Lightning
) -> None:
    seen = await history(stack, lightning)
    await admin_user(stack, "olga", Role.OWNER)
    alice = seen["alice"]
    async with Panel(stack) as panel:
        await panel.login("olga")
        listed = await panel.get("/admin/payout/list?status=awaiting_approval")
        payout_id = re.findall(r"/admin/payout/details/(\d+)", listed.text)[0]
        # The list: the state in words, the amount with separators, the user by name.
        assert ">awaiting approval<" in listed.text and ">25,000<" in listed.text
        assert f'href="{stack.url}/admin/user/details/{alice}">#{alice} @affiliate</a>' in (
            listed.text
        )
        assert not RAW.search(listed.text.split("<tbody>", 1)[1])
        shown = await panel.get(f"/admin/payout/details/{payout_id}")
        rows = _rows(shown.text)
        assert not RAW.search(shown.text.split("<tbody>", 1)[1])
        assert rows["Amount, sats"] == "25,000" and rows["Status"] == "awaiting approval"
        assert rows["User"] == f"#{alice} @affiliate"
        assert rows["Approved by"] == "—" and rows["Instant"] == "No"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rows["Created"])
        # An invoice names its plan and links its user; a ledger entry links its invoice.
        invoice = await panel.get(f"/admin/invoice/details/{seen['refunded']}")
        rows = _rows(invoice.text)
        assert rows["Plan"] == "Premium, 30 days (monthly)"
        assert rows["Amount, sats"] == "50,000" and rows["Status"] == "refunded"
        assert f'href="{stack.url}/admin/plan/details/monthly"' in invoice.text
        entries = await panel.get("/admin/entry/list?kind=sale")
        assert f'href="{stack.url}/admin/invoice/details/{seen["refunded"]}"' in entries.text
        # In Russian: the words and the number format of the panel's Russian.
        in_russian = (await panel.get(f"/admin/payout/details/{payout_id}?lang=ru")).text
        assert f"<td>{format_number('ru', 25_000)}</td>" in in_russian
        russian = _rows(in_russian)
        assert russian["Статус"] == "ждёт одобрения" and russian["Мгновенная"] == "Нет"
        # The export keeps the stored values (whole sats, codes, ISO times).
        await panel.get("/admin/?lang=en")
        exported = await panel.get("/admin/payout/export/csv")
        assert exported.status_code == 200
        assert ",25000," in exported.text and "awaiting_approval" in exported.text
        assert "25,000" not in exported.text and "—" not in exported.text
