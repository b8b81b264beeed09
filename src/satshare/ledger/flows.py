"""Use cases over the ledger that open their own units of work (for the API and the CLI).

Each returns ``EntryView``s: an entry with its postings, latest memo and chain link, read in
the same transaction, so adapters present them without touching the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import Database
from satshare.errors import Conflict, NotFound
from satshare.ledger import repository, service
from satshare.ledger.export import export_lines
from satshare.ledger.models import ChainLink, Entry, EntryKind
from satshare.ledger.verify import Progress, VerifyReport, verify_ledger
from satshare.security import random_token

#: Chains every queued entry now (the sealer's flush).
Seal = Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class EntryView:
    entry: Entry
    #: (account code, amount) in posting order.
    postings: list[tuple[str, int]]
    memo: str | None
    #: None until the sealer has chained it.
    link: ChainLink | None


async def _views(session: AsyncSession, entries: Sequence[Entry]) -> list[EntryView]:
    ids = [e.id for e in entries]
    postings = await repository.postings_of(session, ids)
    memos = await repository.latest_memos(session, ids)
    links = await repository.links_of(session, ids)
    return [EntryView(e, postings[e.id], memos.get(e.id), links.get(e.id)) for e in entries]


async def list_entries(
    db: Database,
    *,
    limit: int,
    before_id: int | None,
    user_id: int | None,
    kind: EntryKind | None,
    invoice_id: str | None,
) -> list[EntryView]:
    async with db.reading() as session:
        rows = await repository.list_entries(
            session,
            limit=limit,
            before_id=before_id,
            user_id=user_id,
            kind=kind,
            invoice_id=invoice_id,
        )
        return await _views(session, rows)


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """A page of entries, newest first, with the chain head and the total count."""

    entries: list[EntryView]
    head_seq: int
    head_hash: str
    count: int


async def page(db: Database, *, limit: int, before_id: int | None) -> LedgerPage:
    """The admin panel's ledger page, read in one transaction."""
    async with db.reading() as session:
        rows = await repository.list_entries(session, limit=limit, before_id=before_id)
        head_seq, head_hash = await repository.read_head(session)
        return LedgerPage(
            entries=await _views(session, rows),
            head_seq=head_seq,
            head_hash=head_hash,
            count=await repository.count_entries(session),
        )


async def get_entry(db: Database, entry_id: int) -> EntryView:
    async with db.reading() as session:
        entry = await repository.entry_by_id(session, entry_id)
        if entry is None:
            raise NotFound(f"transaction {entry_id} does not exist")
        return (await _views(session, [entry]))[0]


async def _sealed(db: Database, seal: Seal, entry_id: int) -> EntryView:
    """Chain the new entry before answering, so the caller gets its seq and hash."""
    await seal()
    return await get_entry(db, entry_id)


async def post_adjustment(
    db: Database,
    seal: Seal,
    legs: Sequence[service.Leg],
    *,
    memo: str | None,
    author: str,
    now: datetime,
) -> EntryView:
    """A balanced manual adjustment, chained before it is returned."""
    async with db.transaction() as session:
        entry = await service.post_entry(
            session,
            service.NewEntry(
                idempotency_key=f"manual:{random_token(12)}",
                kind=EntryKind.ADJUSTMENT,
                legs=legs,
                memo=memo,
                created_by=author,
            ),
            now,
        )
    return await _sealed(db, seal, entry.id)


async def add_memo(
    db: Database, entry_id: int, memo: str, *, author: str, now: datetime
) -> EntryView:
    async with db.transaction() as session:
        await service.add_memo(session, entry_id, memo, author=author, now=now)
        entry = await repository.entry_by_id(session, entry_id)
        assert entry is not None
        return (await _views(session, [entry]))[0]


async def reverse(
    db: Database, seal: Seal, entry_id: int, *, memo: str | None, author: str, now: datetime
) -> EntryView:
    """The exactly opposite entry, chained; Conflict when it was reversed already."""
    try:
        async with db.transaction() as session:
            entry = await service.reverse_entry(
                session, entry_id, memo=memo, author=author, now=now
            )
    except IntegrityError:
        raise Conflict(f"transaction {entry_id} was already reversed") from None
    return await _sealed(db, seal, entry.id)


async def verify(
    db: Database, progress: Progress | None = None, *, workers: int = 1
) -> VerifyReport:
    """``verify_ledger`` on a fresh read transaction (one snapshot), streamed; a long ledger
    on PostgreSQL in ``workers`` processes."""
    async with db.reading() as session:
        return await verify_ledger(session, progress, workers=workers)


async def export(
    db: Database, sink: Callable[[str], object], progress: Progress | None = None
) -> int:
    """Write every line of the ledger export to ``sink``, in one read, streamed; the number
    of lines. ``progress`` is told (lines written, chained entries in all)."""
    count = 0
    async with db.reading() as session:
        await repository.one_snapshot(session)
        total = await repository.count_links(session)
        async for lines in export_lines(session):
            for line in lines:
                sink(line)
            count += len(lines)
            if progress is not None:
                progress(count, total)
    return count
