"""How the money was shared, month by month, computed from the ledger's postings alone.

Every figure is a sum of postings, so it can be recomputed from ``satshare ledger export``:

- gross: bitcoin sales (the sale entries' ``gross_sats``), net of refunds in that month;
- owner share: what the owner's revenue account received (net of refunds);
- affiliate share: commissions credited to affiliates (net of clawbacks), including those
  on Telegram Stars sales, which the owner pays in sats;
- paid out: what left through payouts (fees excluded);
- owed: what affiliates were owed at the month's end, held payouts included.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from satshare.ledger import accounts, repository
from satshare.ledger.models import PAYOUT_KINDS, SALE_KINDS, Account, Entry, Posting


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


def _is_affiliate(code: str) -> bool:
    return code.startswith("payable:affiliate:")


async def transparency(session: AsyncSession, now: datetime) -> Transparency:
    reversed_entry = aliased(Entry)
    rows = await session.stream(
        select(
            Entry.id,
            Entry.created_at,
            Entry.kind,
            Entry.gross_sats,
            reversed_entry.kind,
            reversed_entry.gross_sats,
            Account.code,
            Posting.amount_sats,
        )
        .join(Posting, Posting.entry_id == Entry.id)
        .join(Account, Account.id == Posting.account_id)
        .outerjoin(reversed_entry, reversed_entry.id == Entry.reverses_entry_id)
        .order_by(Entry.id)
        .execution_options(yield_per=2000)
    )
    months: dict[str, Month] = {}
    owed_delta: dict[str, int] = defaultdict(int)
    counted: set[int] = set()
    async for entry_id, created_at, kind, gross, rev_kind, rev_gross, code, amount in rows:
        key = created_at.strftime("%Y-%m")
        month = months.setdefault(key, Month(month=key))
        if entry_id not in counted:  # per entry, not per posting
            counted.add(entry_id)
            if kind in SALE_KINDS:
                month.sales += 1
                if kind == "sale":
                    month.gross_sats += gross or 0
            elif rev_kind in SALE_KINDS:
                month.refunds += 1
                if rev_kind == "sale":
                    month.gross_sats -= rev_gross or 0
        if code == accounts.OWNER_REVENUE:
            month.owner_share_sats -= amount
        elif code == accounts.STARS_REVENUE:
            month.stars_received -= amount
        elif _is_affiliate(code) and kind not in PAYOUT_KINDS:
            month.affiliate_share_sats -= amount
        elif code == accounts.PAYOUTS_IN_FLIGHT and kind == "payout":
            month.paid_out_sats += amount
        if _is_affiliate(code) or code == accounts.PAYOUTS_IN_FLIGHT:
            owed_delta[key] -= amount
    ordered = [months[k] for k in sorted(months)]
    owed = 0
    totals = Figures()
    for month in ordered:
        owed += owed_delta[month.month]
        month.owed_sats = owed
        totals.add(month)
    head_seq, head_hash = await repository.read_head(session)
    return Transparency(
        months=ordered,
        totals=totals,
        owed_sats=owed,
        entries=await repository.count_entries(session),
        sealed_entries=head_seq,
        head_seq=head_seq,
        head_hash=head_hash,
        generated_at=now,
    )
