"""Monthly reports (JSON, CSV, XLSX), the chart (PNG, SVG), affiliate statement files, and
/report in the admin chat; every figure is the ledger's."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import openpyxl
import pytest

from satshare.bot import texts
from satshare.i18n import translate
from tests.botkit import ADMIN_CHAT, BotStack, close_bot_stack, open_bot_stack, text_of
from tests.conftest import BTCPaySim, Stack
from tests.helpers import assert_problem
from tests.historykit import history, sale
from tests.historykit import stack as stack
from tests.lightningkit import Lightning
from tests.payoutkit import affiliate

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_monthly_report_in_every_format(stack: Stack, lightning: Lightning) -> None:
    seen = await history(stack, lightning)
    month = datetime.now(UTC).strftime("%Y-%m")
    figures = (await stack.client.get("/api/v1/transparency")).json()
    (this_month,) = figures["months"]

    response = await stack.client.get("/api/v1/reports/monthly", params={"month": month})
    assert response.status_code == 200, response.text
    report = response.json()
    for name in ("gross_sats", "owner_share_sats", "affiliate_share_sats", "paid_out_sats"):
        assert report["totals"][name] == this_month[name], name
        assert sum(day["figures"][name] for day in report["days"]) == this_month[name]
    assert report["owed_at_start_sats"] == 0
    assert report["owed_at_end_sats"] == this_month["owed_sats"] == 30_000
    (alice,) = report["affiliates"]
    assert alice["user_id"] == seen["alice"]
    assert alice == {
        "user_id": seen["alice"],
        "username": "affiliate",
        "referred_sales_sats": 150_000,
        "commissions": 3,
        "earned_sats": 50_000,
        "clawed_back_sats": 25_000,
        "paid_out_sats": 20_000,
        "owed_sats": 30_000,
    }

    days = await stack.client.get(
        "/api/v1/reports/monthly", params={"month": month, "format": "csv"}
    )
    assert days.headers["content-type"].startswith("text/csv")
    assert f'filename="satshare-{month}-days.csv"' in days.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(days.text)))
    assert len(rows) == len(report["days"]) + 1 and rows[-1]["date"] == "total"
    assert int(rows[-1]["gross_sats"]) == this_month["gross_sats"]
    people = await stack.client.get(
        "/api/v1/reports/monthly", params={"month": month, "format": "csv", "part": "affiliates"}
    )
    (line,) = list(csv.DictReader(io.StringIO(people.text)))
    assert int(line["owed_sats"]) == 30_000

    book = await stack.client.get(
        "/api/v1/reports/monthly", params={"month": month, "format": "xlsx"}
    )
    assert book.headers["content-type"] == XLSX
    workbook = openpyxl.load_workbook(io.BytesIO(book.content))
    assert workbook.sheetnames == ["Summary", "Days", "Affiliates"]
    summary = {row[0]: row[1] for row in workbook["Summary"].iter_rows(values_only=True)}
    assert summary["gross_sats"] == this_month["gross_sats"]
    assert summary["owed_at_end_sats"] == 30_000
    assert workbook["Affiliates"]["E2"].value == 50_000  # earned_sats

    # Before any sale: zeros, and nothing owed.
    empty = (await stack.client.get("/api/v1/reports/monthly", params={"month": "2020-02"})).json()
    assert len(empty["days"]) == 29 and empty["totals"]["gross_sats"] == 0
    assert empty["affiliates"] == [] and empty["owed_at_end_sats"] == 0
    assert_problem(
        await stack.client.get("/api/v1/reports/monthly", params={"month": "2026-13"}), 422
    )
    assert_problem(await stack.client.get("/api/v1/reports/monthly", params={"month": "nov"}), 422)
    reader = await stack.key("read")
    async with stack.anonymous() as client:
        client.headers["Authorization"] = f"Bearer {reader}"
        assert_problem(await client.get("/api/v1/reports/monthly"), 403)


async def test_chart_and_statement_files(stack: Stack, lightning: Lightning) -> None:
    seen = await history(stack, lightning)
    png = await stack.client.get("/api/v1/reports/chart")
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and len(png.content) > 5_000
    svg = await stack.client.get("/api/v1/reports/chart", params={"format": "svg"})
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content and b"revenue and commissions per day" in svg.content
    month = datetime.now(UTC).strftime("%Y-%m")
    assert f"<dc:title>SatShare {month}: revenue".encode() in svg.content  # no branding.name

    path = f"/api/v1/reports/affiliates/{seen['alice']}/statement"
    statement = await stack.client.get(path)
    rows = list(csv.DictReader(io.StringIO(statement.text)))
    listed = (await stack.client.get(f"/api/v1/affiliates/{seen['alice']}/statements")).json()
    assert [int(r["transaction_id"]) for r in rows] == [
        s["transaction_id"] for s in listed["items"]
    ]
    assert {r["proof_kind"] for r in rows} == {"btcpay_invoice_id", "lightning_preimage"}
    book = await stack.client.get(path, params={"format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(book.content))["Commissions"]
    assert sheet.max_row == 1 + len(rows)
    assert_problem(await stack.client.get("/api/v1/reports/affiliates/999/statement"), 404)


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(database_url, btcpay)
    yield stack
    await close_bot_stack(stack)


async def test_report_command_in_the_admin_chat(bot: BotStack) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    before = len(bot.telegram.sent_to(ADMIN_CHAT))
    bot.telegram.user_sends(ADMIN_CHAT, "/report")
    summary, chart, document = (await bot.wait_messages(ADMIN_CHAT, before + 3))[before:]
    assert text_of(summary).startswith(f"<b>Report {month}</b>\nSales: 0")
    assert chart.photo and (chart.photo_bytes or b"").startswith(b"\x89PNG")
    assert document.document_name == f"satshare-{month}.xlsx"
    workbook = openpyxl.load_workbook(io.BytesIO(document.document_bytes or b""))
    assert workbook.sheetnames == ["Summary", "Days", "Affiliates"]

    before = len(bot.telegram.sent_to(ADMIN_CHAT))
    bot.telegram.user_sends(ADMIN_CHAT, "/report november")
    (refused,) = (await bot.wait_messages(ADMIN_CHAT, before + 1))[before:]
    assert text_of(refused) == translate("en", texts.REPORT_BAD_MONTH)

    stranger = bot.new_user("stranger")
    await bot.say(stranger, "/start")
    (reply,) = await bot.say(stranger, "/report")
    assert text_of(reply) == translate("en", texts.UNKNOWN)


async def test_monthly_report_pages_hold_every_line_in_order(
    stack: Stack, lightning: Lightning
) -> None:
    """The JSON's pages (``limit``, ``cursor``) walk the lines the CSV holds, most earned
    first then by user id, whether a page comes from the top earners' index or from the whole
    list (lines with nothing earned); a bad cursor or limit is a problem."""
    month = datetime.now(UTC).strftime("%Y-%m")
    people = [await affiliate(stack) for _ in range(4)]
    for person, sales in zip(people, (2, 1, 1, 1), strict=True):
        for _ in range(sales):
            last = await sale(stack, lightning, person)
    # The last one's sale refunded: clawed back, nothing earned, still a line.
    assert (await stack.client.post(f"/api/v1/invoices/{last}/refund", json={})).is_success
    await stack.container.sealer.flush()

    people_csv = await stack.client.get(
        "/api/v1/reports/monthly", params={"month": month, "format": "csv", "part": "affiliates"}
    )
    every = [
        (int(row["user_id"]), int(row["earned_sats"]))
        for row in csv.DictReader(io.StringIO(people_csv.text))
    ]
    first, second, third, fourth = people
    assert every == [(first, 50_000), (second, 25_000), (third, 25_000), (fourth, 0)]
    for limit in (1, 2, 3, 100):
        walked: list[tuple[int, int]] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"month": month, "limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            page = await stack.client.get("/api/v1/reports/monthly", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["affiliates"]) <= limit
            walked += [(line["user_id"], line["earned_sats"]) for line in body["affiliates"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert walked == every, limit
    top = (await stack.client.get("/api/v1/reports/monthly", params={"limit": 1})).json()
    assert top["next_cursor"] == f"50000:{first}"
    assert top["affiliates"][0]["commissions"] == 2
    assert top["affiliates"][0]["owed_sats"] == 50_000
    for bad in ({"cursor": "x"}, {"cursor": "1:2:3"}, {"limit": 0}, {"limit": 1001}):
        assert_problem(await stack.client.get("/api/v1/reports/monthly", params=bad), 422)
