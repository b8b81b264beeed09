"""Reports' queries that join several domains' tables (reports only read)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from satshare.ledger import accounts
from satshare.ledger.models import SALE_KINDS, Account, ChainLink, Entry, Posting
from satshare.payments.models import Invoice, Payment

#: A commission as the split statements read it: the sale entry, the affiliate's posting,
#: the invoice and payment (if any), the entry's chain link and the id of its reversal.
CommissionRow = tuple[Entry, int, Invoice | None, Payment | None, ChainLink | None, int | None]


async def commission_rows(
    session: AsyncSession, user_id: int, *, limit: int, before_id: int | None = None
) -> list[CommissionRow]:
    """The affiliate's commissions, newest first (``before_id``: a page cursor)."""
    reversal = aliased(Entry)
    query = (
        select(Entry, Posting.amount_sats, Invoice, Payment, ChainLink, reversal.id)
        .join(Posting, Posting.entry_id == Entry.id)
        .join(Account, Account.id == Posting.account_id)
        .outerjoin(Invoice, Invoice.id == Entry.invoice_id)
        .outerjoin(Payment, Payment.invoice_id == Entry.invoice_id)
        .outerjoin(ChainLink, ChainLink.entry_id == Entry.id)
        .outerjoin(reversal, reversal.reverses_entry_id == Entry.id)
        .where(
            Account.code == accounts.affiliate_payable(user_id),
            Entry.kind.in_(SALE_KINDS),
        )
        .order_by(Entry.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(Entry.id < before_id)
    return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]
