"""How the money was shared, month by month, computed from the ledger's postings alone.

Every figure is a sum of postings, so it can be recomputed from ``satshare ledger export``.
The pages read them from the ledger's figures (``ledger.figures``: per-day sums the sealer
keeps), never by scanning the ledger; ``aggregate`` below is the scan itself, the reference
the figures are checked against (``satshare figures check``, the tests).

- gross: bitcoin sales (the sale entries' ``gross_sats``), net of refunds in that month;
- owner share: what the owner's revenue account received (net of refunds);
- affiliate share: commissions credited to affiliates (net of clawbacks), including those
  on Telegram Stars sales, which the owner pays in sats;
- paid out: what left through payouts (fees excluded);
- owed: what affiliates were owed at the month's end, held payouts included.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ledger import accounts, repository
from satshare.ledger.figures import service as figures
from satshare.ledger.models import PAYOUT_KINDS, SALE_KINDS, EntryKind


@dataclass
class Figures:
    gross_sats: int = 0
    owner_share_sats: int = 0
    affiliate_share_sats: int = 0
    stars_received: int = 0
    paid_out_sats: int = 0
    sales: int = 0
    refunds: int = 0

    def add(self, other: Figures) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class Month(Figures):
    month: str = ""
    #: Owed to affiliates at the end of the month (balances plus payouts not yet paid).
    owed_sats: int = 0


@dataclass
class Transparency:
    months: list[Month]
    totals: Figures
    owed_sats: int
    entries: int
    sealed_entries: int
    head_seq: int
    head_hash: str
    generated_at: datetime
    currency_note: str = field(
        default="All amounts in satoshis except stars_received (Telegram Stars)."
    )


def _affiliate_of(code: str) -> int | None:
    """The user whose affiliate balance an account is (``payable:affiliate:<id>``)."""
    return accounts.user_of(code) if code.startswith("payable:affiliate:") else None


@dataclass
class Aggregate:
    """Figures per period key, what affiliates were owed before the window, and the change
    of that per key; per affiliate too (for statements and reports)."""

    periods: dict[str, Figures] = field(default_factory=dict)
    owed_before: int = 0
    owed_delta: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    affiliates: dict[int, AffiliateFigures] = field(default_factory=dict)


@dataclass
class AffiliateFigures:
    referred_sales_sats: int = 0
    commissions: int = 0
    earned_sats: int = 0  # commissions net of clawbacks in the window
    clawed_back_sats: int = 0
    paid_out_sats: int = 0
    #: Owed at the end of the window (their balance, held payouts included).
    owed_sats: int = 0


async def aggregate(
    session: AsyncSession,
    key_format: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Aggregate:
    """Sum the ledger's postings into figures per ``created_at.strftime(key_format)`` for
    entries in [start, end); what was owed before ``start`` is carried in. It reads every
    posting up to ``end``: the reference for the figures, never a page's read."""
    result = Aggregate()
    counted: set[int] = set()

    def person(user_id: int) -> AffiliateFigures:
        return result.affiliates.setdefault(user_id, AffiliateFigures())

    async for row in repository.stream_postings(session, end):
        entry_id, created_at, kind, gross, affiliate_id, rev_kind, rev_gross, code, amount = row
        # Whose debt a posting moves: the affiliate's account, or a payout held for them.
        debtor = _affiliate_of(code) or (
            affiliate_id if code == accounts.PAYOUTS_IN_FLIGHT else None
        )
        if start is not None and created_at < start:
            if debtor is not None:
                result.owed_before -= amount
                person(debtor).owed_sats -= amount
            continue
        key = created_at.strftime(key_format)
        figures = result.periods.setdefault(key, Figures())
        if entry_id not in counted:  # per entry, not per posting
            counted.add(entry_id)
            if kind in SALE_KINDS:
                figures.sales += 1
                if kind == EntryKind.SALE:
                    figures.gross_sats += gross or 0
                if affiliate_id is not None:
                    person(affiliate_id).referred_sales_sats += gross or 0
            elif rev_kind in SALE_KINDS:
                figures.refunds += 1
                if rev_kind == EntryKind.SALE:
                    figures.gross_sats -= rev_gross or 0
        earner = _affiliate_of(code)
        if code == accounts.OWNER_REVENUE:
            figures.owner_share_sats -= amount
        elif code == accounts.STARS_REVENUE:
            figures.stars_received -= amount
        elif earner is not None and kind not in PAYOUT_KINDS:
            figures.affiliate_share_sats -= amount
            person(earner).earned_sats -= amount
            if kind in SALE_KINDS:
                person(earner).commissions += 1
            elif amount > 0:
                person(earner).clawed_back_sats += amount
        elif code == accounts.PAYOUTS_IN_FLIGHT and kind == EntryKind.PAYOUT:
            figures.paid_out_sats += amount
            if affiliate_id is not None:
                person(affiliate_id).paid_out_sats += amount
        if debtor is not None:
            result.owed_delta[key] -= amount
            person(debtor).owed_sats -= amount
    return result


def figures_of(sums: dict[str, int]) -> Figures:
    """The ``Figures`` of a row of the ledger's figures (days or months)."""
    return Figures(**{f.name: sums.get(f.name, 0) for f in fields(Figures)})


async def transparency(session: AsyncSession, now: datetime) -> Transparency:
    data = await figures.days(session)
    # A day can have figures without entries (users who registered that day and paid since).
    per_month = figures.months((d, f) for d, f in data.days.items() if f.get("entries"))
    ordered = [Month(month=k, **asdict(figures_of(per_month[k]))) for k in sorted(per_month)]
    owed = data.owed_before
    totals = Figures()
    for month in ordered:
        owed += per_month[month.month].get("owed_delta_sats", 0)
        month.owed_sats = owed
        totals.add(month)
    head_seq, head_hash = await repository.read_head(session)
    return Transparency(
        months=ordered,
        totals=totals,
        owed_sats=owed,
        entries=data.entries,
        sealed_entries=head_seq,
        head_seq=head_seq,
        head_hash=head_hash,
        generated_at=now,
    )


async def top_earners(
    session: AsyncSession, limit: int, now: datetime
) -> list[tuple[int, AffiliateFigures]]:
    """The affiliates who earned most over all time (then by id), those with neither a
    commission nor money owed left out: the top rows of the ledger's figures."""
    rows = await figures.ranking(
        session, "earned_sats", limit, figures.day_of(now), nonzero=("commissions", "owed_sats")
    )
    assert rows is not None  # all time: no window to wait for
    return [
        (
            row.user_id,
            AffiliateFigures(**{f.name: row.figures[f.name] for f in fields(AffiliateFigures)}),
        )
        for row in rows
    ]
