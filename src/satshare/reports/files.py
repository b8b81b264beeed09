"""Reports as files: CSV and XLSX (openpyxl), and the revenue/commissions chart as PNG or SVG
(matplotlib, drawn off-screen). Amounts stay whole sats; nothing is converted to floats."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Literal

from satshare.reports.monthly import MonthlyReport
from satshare.reports.statements import Statement

DAY_COLUMNS = (
    "date",
    "sales",
    "refunds",
    "gross_sats",
    "owner_share_sats",
    "affiliate_share_sats",
    "paid_out_sats",
    "stars_received",
)
AFFILIATE_COLUMNS = (
    "user_id",
    "username",
    "referred_sales_sats",
    "commissions",
    "earned_sats",
    "clawed_back_sats",
    "paid_out_sats",
    "owed_sats",
)
STATEMENT_COLUMNS = (
    "transaction_id",
    "created_at",
    "invoice_id",
    "provider",
    "proof_kind",
    "proof",
    "payment_hash",
    "gross_sats",
    "share_bps",
    "terms",
    "commission_sats",
    "reversed_by_transaction_id",
    "seq",
    "entry_hash",
)


def _day_rows(report: MonthlyReport) -> list[list[object]]:
    rows: list[list[object]] = []
    for day in [*report.days, None]:
        label, f = (day.date, day.figures) if day else ("total", report.totals)
        rows.append(
            [
                label,
                f.sales,
                f.refunds,
                f.gross_sats,
                f.owner_share_sats,
                f.affiliate_share_sats,
                f.paid_out_sats,
                f.stars_received,
            ]
        )
    return rows


def _affiliate_rows(report: MonthlyReport) -> list[list[object]]:
    return [
        [
            a.user_id,
            a.username or "",
            a.referred_sales_sats,
            a.commissions,
            a.earned_sats,
            a.clawed_back_sats,
            a.paid_out_sats,
            a.owed_sats,
        ]
        for a in report.affiliates
    ]


def _statement_rows(statements: Sequence[Statement]) -> list[list[object]]:
    return [
        [
            s.transaction_id,
            s.created_at.isoformat(),
            s.invoice_id or "",
            s.provider or "",
            s.proof_kind or "",
            s.proof or "",
            s.payment_hash or "",
            s.gross_sats,
            s.share_bps,
            s.terms or "",
            s.commission_sats,
            s.reversed_by_transaction_id or "",
            s.seq or "",
            s.entry_hash or "",
        ]
        for s in statements
    ]


def _csv(columns: Sequence[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def days_csv(report: MonthlyReport) -> str:
    return _csv(DAY_COLUMNS, _day_rows(report))


def affiliates_csv(report: MonthlyReport) -> str:
    return _csv(AFFILIATE_COLUMNS, _affiliate_rows(report))


def affiliates_csv_chunks(report: MonthlyReport, lines: int = 1000) -> Iterator[str]:
    """The affiliates CSV in pieces of ``lines`` rows (a streamed answer: the whole list of
    a big service need not be one string)."""
    rows = _affiliate_rows(report)
    yield _csv(AFFILIATE_COLUMNS, [])
    for start in range(0, len(rows), lines):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows[start : start + lines])
        yield out.getvalue()


def statement_csv(statements: Sequence[Statement]) -> str:
    return _csv(STATEMENT_COLUMNS, _statement_rows(statements))


def _workbook(sheets: Sequence[tuple[str, Sequence[str], list[list[object]]]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    first = True
    for title, columns, rows in sheets:
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = title
        sheet.append(list(columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        for column, name in zip(sheet.columns, columns, strict=False):
            width = max([len(name), *(len(str(c.value or "")) for c in column)])
            sheet.column_dimensions[column[0].column_letter].width = min(width + 2, 70)
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def monthly_xlsx(report: MonthlyReport) -> bytes:
    summary: list[list[object]] = [
        ["month", report.month],
        ["sales", report.totals.sales],
        ["refunds", report.totals.refunds],
        ["gross_sats", report.totals.gross_sats],
        ["owner_share_sats", report.totals.owner_share_sats],
        ["affiliate_share_sats", report.totals.affiliate_share_sats],
        ["paid_out_sats", report.totals.paid_out_sats],
        ["stars_received", report.totals.stars_received],
        ["owed_at_start_sats", report.owed_at_start_sats],
        ["owed_at_end_sats", report.owed_at_end_sats],
        ["generated_at", report.generated_at.isoformat()],
    ]
    return _workbook(
        [
            ("Summary", ("figure", "value"), summary),
            ("Days", DAY_COLUMNS, _day_rows(report)),
            ("Affiliates", AFFILIATE_COLUMNS, _affiliate_rows(report)),
        ]
    )


def statement_xlsx(statements: Sequence[Statement]) -> bytes:
    return _workbook([("Commissions", STATEMENT_COLUMNS, _statement_rows(statements))])


def chart(report: MonthlyReport, image: Literal["png", "svg"], *, name: str) -> bytes:
    """Revenue (gross) and commissions per day of the month, titled with the owner's
    ``name`` (branding.name)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: draw to memory
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    labels = [day.date[-2:] for day in report.days]
    gross = [day.figures.gross_sats for day in report.days]
    commissions = [day.figures.affiliate_share_sats for day in report.days]
    figure = Figure(figsize=(9, 4), dpi=100)
    axes = figure.subplots()
    axes.bar(labels, gross, color="#f7931a", label="revenue (gross), sats")
    axes.plot(labels, commissions, color="#1d1d1f", marker="o", label="commissions, sats")
    title = f"{name} {report.month}: revenue and commissions per day"
    axes.set_title(title)
    axes.set_xlabel("day")
    axes.legend(loc="upper left")
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))  # 50,000: English, whole sats
    figure.tight_layout()
    out = io.BytesIO()
    # The title also in the file's metadata (PNG tEXt, SVG dc:title); an SVG without a date
    # is the same bytes for the same figures.
    metadata = {"Title": title, **({"Date": None} if image == "svg" else {})}
    figure.savefig(out, format=image, metadata=metadata)
    return out.getvalue()
