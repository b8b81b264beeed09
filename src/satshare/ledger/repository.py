"""All ledger SQL."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Executable,
    Subquery,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from satshare.db import driver_rows, insert_ignore
from satshare.ledger.figures.models import SaleBuyer
from satshare.ledger.models import (
    GENESIS_HASH,
    SALE_KINDS,
    Account,
    ChainHead,
    ChainLink,
    Entry,
    EntryKind,
    EntryNote,
    NoteLink,
    NoteSealQueue,
    Posting,
    SealQueue,
)

#: Rows of a column query.
Rows = Sequence[Sequence[Any]]

HEAD_ID = 1
NOTES_HEAD_ID = 2


async def _rows(session: AsyncSession, query: Executable) -> Rows:
    """A column query's rows as the driver gives them (``db.driver_rows``): without the ORM's
    loading layer per row (a third of the time when the whole ledger is read), nor, on
    PostgreSQL, SQLAlchemy's row objects (every column read here is an integer, text or a
    UTC timestamp)."""
    return await driver_rows(session, query)


async def ensure_accounts(
    session: AsyncSession, specs: Sequence[tuple[str, str, int | None]], now: datetime
) -> dict[str, Account]:
    """Create missing accounts (code, kind, user_id) and return them all by code."""
    codes = [code for code, _, _ in specs]
    found = {a.code: a for a in await _accounts_by_code(session, codes)}
    for code, kind, user_id in specs:
        if code not in found:
            await insert_ignore(
                session,
                Account,
                {"code": code, "kind": kind, "user_id": user_id, "created_at": now},
                ["code"],
            )
    if len(found) < len(set(codes)):
        found = {a.code: a for a in await _accounts_by_code(session, codes)}
    return found


def _postings_from_codes(entry_id: Any, legs: Sequence[tuple[str, int]], source: Any = None) -> Any:
    """INSERT the postings of ``legs`` (account code, amount) for ``entry_id``, taking each
    account's id from its code in the same statement; a leg whose account does not exist yet
    is left out (the caller creates it and posts the rest)."""
    amount = case({code: literal(value, BigInteger) for code, value in legs}, value=Account.code)
    rows = select(entry_id, Account.id, amount).where(Account.code.in_([c for c, _ in legs]))
    return insert(Posting).from_select(["entry_id", "account_id", "amount_sats"], rows)


async def write_entry(
    session: AsyncSession,
    entry: dict[str, Any],
    legs: Sequence[tuple[str, int]],
    *,
    note: dict[str, Any] | None,
    sale_buyer: dict[str, Any] | None,
) -> tuple[int, int]:
    """Write an entry with its postings, its seal queue row, its memo note (queued for the
    notes chain) and who bought it (a sale): (entry id, postings written). Fewer postings
    than legs means some accounts do not exist yet (``post_missing`` writes the rest).

    Core statements, not the ORM's unit of work: this is on every settlement's path. On
    PostgreSQL it is one statement (data-modifying CTEs); SQLite has none, so there each
    row is its own INSERT."""
    if session.get_bind().dialect.name == "postgresql":
        return await _write_entry_cte(session, entry, legs, note=note, sale_buyer=sale_buyer)
    conn = await session.connection()
    entry_id = int(
        (await conn.execute(insert(Entry).values(entry).returning(Entry.id))).scalar_one()
    )
    written = (
        await conn.execute(_postings_from_codes(literal(entry_id, BigInteger), legs))
    ).rowcount
    await conn.execute(insert(SealQueue).values(entry_id=entry_id))
    if sale_buyer is not None:
        await conn.execute(insert(SaleBuyer).values(entry_id=entry_id, **sale_buyer))
    if note is not None:
        note_id = (
            await conn.execute(
                insert(EntryNote).values(entry_id=entry_id, **note).returning(EntryNote.id)
            )
        ).scalar_one()
        await conn.execute(insert(NoteSealQueue).values(note_id=note_id))
    return entry_id, int(written)


async def _write_entry_cte(
    session: AsyncSession,
    entry: dict[str, Any],
    legs: Sequence[tuple[str, int]],
    *,
    note: dict[str, Any] | None,
    sale_buyer: dict[str, Any] | None,
) -> tuple[int, int]:
    statement = _entry_statement(
        tuple(entry), len(legs), tuple(note or ()), tuple(sale_buyer or ())
    )
    params = {f"e_{name}": value for name, value in entry.items()}
    for index, (code, amount) in enumerate(legs):
        params[f"code_{index}"], params[f"amount_{index}"] = code, amount
    params.update({f"n_{name}": value for name, value in (note or {}).items()})
    params.update({f"b_{name}": value for name, value in (sale_buyer or {}).items()})
    row = (await (await session.connection()).execute(statement, params)).one()
    return int(row[0]), int(row[1])


@functools.cache
def _entry_statement(
    entry: tuple[str, ...], legs: int, note: tuple[str, ...], buyer: tuple[str, ...]
) -> Executable:
    """The one PostgreSQL statement of ``write_entry`` for this shape of entry, built once
    (a sale's shape repeats: building and keying it anew each time costs CPU on every
    settlement), with its values as bound parameters."""
    columns = Entry.__table__.c
    new = (
        insert(Entry)
        .values({name: bindparam(f"e_{name}", type_=columns[name].type) for name in entry})
        .returning(Entry.id)
        .cte("new_entry")
    )
    codes = [bindparam(f"code_{i}", type_=Account.code.type) for i in range(legs)]
    amount = case(
        *(
            (Account.code == code, bindparam(f"amount_{i}", type_=BigInteger))
            for i, code in enumerate(codes)
        )
    )
    postings = (
        insert(Posting)
        .from_select(
            ["entry_id", "account_id", "amount_sats"],
            select(new.c.id, Account.id, amount)
            .select_from(new)
            .join(Account, Account.code.in_(codes)),
        )
        .returning(Posting.id)
        .cte("new_postings")
    )
    parts = [insert(SealQueue).from_select(["entry_id"], select(new.c.id)).cte("queued")]
    if buyer:
        parts.append(
            insert(SaleBuyer)
            .from_select(["entry_id", *buyer], select(new.c.id, *_params(SaleBuyer, "b", buyer)))
            .cte("buyer")
        )
    if note:
        noted = (
            insert(EntryNote)
            .from_select(["entry_id", *note], select(new.c.id, *_params(EntryNote, "n", note)))
            .returning(EntryNote.id)
            .cte("new_note")
        )
        parts.append(
            insert(NoteSealQueue).from_select(["note_id"], select(noted.c.id)).cte("note_queued")
        )
    counted = select(func.count()).select_from(postings).scalar_subquery()
    return select(new.c.id, counted).add_cte(*parts)


def _params(model: Any, prefix: str, names: Sequence[str]) -> list[Any]:
    """Bound parameters typed as the model's columns (a UTC timestamp, a 64-bit id)."""
    table: Table = model.__table__
    return [bindparam(f"{prefix}_{name}", type_=table.c[name].type) for name in names]


async def post_missing(
    session: AsyncSession,
    entry_id: int,
    legs: Sequence[tuple[str, int]],
    specs: Sequence[tuple[str, str, int | None]],
    now: datetime,
) -> None:
    """Create the accounts ``write_entry`` did not find and post their legs."""
    by_code = await ensure_accounts(session, specs, now)
    posted = set(
        (
            await session.execute(select(Posting.account_id).where(Posting.entry_id == entry_id))
        ).scalars()
    )
    rest = [
        {"entry_id": entry_id, "account_id": by_code[code].id, "amount_sats": amount}
        for code, amount in legs
        if by_code[code].id not in posted
    ]
    await (await session.connection()).execute(insert(Posting), rest)


async def _accounts_by_code(session: AsyncSession, codes: Sequence[str]) -> Sequence[Account]:
    result = await session.execute(select(Account).where(Account.code.in_(codes)))
    return result.scalars().all()


async def lock_head(session: AsyncSession) -> ChainHead | None:
    """Take the chain head FOR UPDATE (creating it on first use); None if another sealer
    holds it (that sealer will take our entries too, or the next run will)."""
    await insert_ignore(session, ChainHead, {"id": HEAD_ID, "seq": 0, "hash": GENESIS_HASH}, ["id"])
    result = await session.execute(
        select(ChainHead).where(ChainHead.id == HEAD_ID).with_for_update(skip_locked=True)
    )
    return result.scalar_one_or_none()


async def notes_head(session: AsyncSession) -> ChainHead:
    """The notes chain's head; only the holder of the entries head (``lock_head``) writes it."""
    await insert_ignore(
        session, ChainHead, {"id": NOTES_HEAD_ID, "seq": 0, "hash": GENESIS_HASH}, ["id"]
    )
    result = await session.execute(select(ChainHead).where(ChainHead.id == NOTES_HEAD_ID))
    return result.scalar_one()


async def unsealed_notes(session: AsyncSession, limit: int) -> Sequence[EntryNote]:
    result = await session.execute(
        select(EntryNote)
        .join(NoteSealQueue, NoteSealQueue.note_id == EntryNote.id)
        .order_by(EntryNote.id)
        .limit(limit)
    )
    return result.scalars().all()


async def dequeue_notes(session: AsyncSession, note_ids: Sequence[int]) -> None:
    await session.execute(delete(NoteSealQueue).where(NoteSealQueue.note_id.in_(note_ids)))


async def note_chain_rows(
    session: AsyncSession, after_seq: int, limit: int, until_seq: int | None = None
) -> Rows:
    """Up to ``limit`` notes chain links after ``after_seq`` (and up to ``until_seq``), in
    order, with their notes: (seq, note_id, prev_hash, hash, note's id, entry_id, memo,
    author, created_at), the note's columns None where its row is gone."""
    query = (
        select(
            NoteLink.seq,
            NoteLink.note_id,
            NoteLink.prev_hash,
            NoteLink.hash,
            EntryNote.id,
            EntryNote.entry_id,
            EntryNote.memo,
            EntryNote.author,
            EntryNote.created_at,
        )
        .outerjoin(EntryNote, EntryNote.id == NoteLink.note_id)
        .where(NoteLink.seq > after_seq)
        .order_by(NoteLink.seq)
        .limit(limit)
    )
    if until_seq is not None:
        query = query.where(NoteLink.seq <= until_seq)
    return await _rows(session, query)


async def read_notes_head(session: AsyncSession) -> tuple[int, str]:
    head = await session.get(ChainHead, NOTES_HEAD_ID)
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)


async def count_notes(session: AsyncSession) -> tuple[int, int]:
    """(all notes, notes queued for sealing)."""
    total = (await session.execute(select(func.count(EntryNote.id)))).scalar_one()
    queued = (await session.execute(select(func.count(NoteSealQueue.note_id)))).scalar_one()
    return int(total), int(queued)


async def unsealed_entries(session: AsyncSession, limit: int, after_id: int = 0) -> Sequence[Entry]:
    result = await session.execute(
        select(Entry)
        .join(SealQueue, SealQueue.entry_id == Entry.id)
        .where(Entry.id > after_id)
        .order_by(Entry.id)
        .limit(limit)
    )
    return result.scalars().all()


async def dequeue(session: AsyncSession, entry_ids: Sequence[int]) -> None:
    await session.execute(delete(SealQueue).where(SealQueue.entry_id.in_(entry_ids)))


async def count_unsealed(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(SealQueue.entry_id)))).scalar_one())


async def count_links(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(ChainLink.seq)))).scalar_one())


async def links_of(session: AsyncSession, entry_ids: Sequence[int]) -> dict[int, ChainLink]:
    if not entry_ids:
        return {}
    result = await session.execute(select(ChainLink).where(ChainLink.entry_id.in_(entry_ids)))
    return {link.entry_id: link for link in result.scalars().all()}


#: The entry columns ``chain_rows`` and ``unsealed_rows`` read, in this order (that of
#: ``chain.ChainRecord``'s fields, postings aside).
_ENTRY_COLUMNS = (
    Entry.id,
    Entry.idempotency_key,
    Entry.kind,
    Entry.created_at,
    Entry.invoice_id,
    Entry.gross_sats,
    Entry.share_bps,
    Entry.affiliate_user_id,
    Entry.reverses_entry_id,
    Entry.terms,
)


def _chain_window(after_seq: int, limit: int, until_seq: int | None) -> Subquery:
    query = select(ChainLink.seq, ChainLink.entry_id, ChainLink.prev_hash, ChainLink.hash).where(
        ChainLink.seq > after_seq
    )
    if until_seq is not None:
        query = query.where(ChainLink.seq <= until_seq)
    return query.order_by(ChainLink.seq).limit(limit).subquery()


async def chain_rows(
    session: AsyncSession, after_seq: int, limit: int, until_seq: int | None = None
) -> Rows:
    """Up to ``limit`` chain links after ``after_seq`` (and up to ``until_seq``), in order,
    each with its entry: (seq, entry_id, prev_hash, hash, *entry columns), the entry's None
    where its row is gone.

    Read a window at a time by key (``ledger verify`` and ``export`` walk the whole chain):
    each window is an index range and a few thousand lookups, where one ordered query over
    the whole ledger sorted every posting first (on disk, at a million payments)."""
    window = _chain_window(after_seq, limit, until_seq)
    query = (
        select(window, *_ENTRY_COLUMNS)
        .select_from(window)
        .outerjoin(Entry, Entry.id == window.c.entry_id)
        .order_by(window.c.seq)
    )
    return await _rows(session, query)


async def chain_postings(
    session: AsyncSession, after_seq: int, limit: int, until_seq: int | None = None
) -> Rows:
    """The postings of the entries ``chain_rows`` reads for the same window: (entry_id,
    account code, amount), in no particular order."""
    window = _chain_window(after_seq, limit, until_seq)
    query = (
        select(Posting.entry_id, Account.code, Posting.amount_sats)
        .select_from(window)
        .join(Posting, Posting.entry_id == window.c.entry_id)
        .join(Account, Account.id == Posting.account_id)
    )
    return await _rows(session, query)


async def unsealed_rows(session: AsyncSession, after_id: int, limit: int) -> Rows:
    """Up to ``limit`` entries queued for sealing after ``after_id``, in id order: the entry
    columns of ``chain_rows``."""
    query = (
        select(*_ENTRY_COLUMNS)
        .join(SealQueue, SealQueue.entry_id == Entry.id)
        .where(Entry.id > after_id)
        .order_by(Entry.id)
        .limit(limit)
    )
    return await _rows(session, query)


async def read_head(session: AsyncSession) -> tuple[int, str]:
    head = await session.get(ChainHead, HEAD_ID)
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)


async def entry_by_id(session: AsyncSession, entry_id: int) -> Entry | None:
    return await session.get(Entry, entry_id)


async def entry_by_key(session: AsyncSession, key: str) -> Entry | None:
    result = await session.execute(select(Entry).where(Entry.idempotency_key == key))
    return result.scalar_one_or_none()


async def entry_reversing(session: AsyncSession, entry_id: int) -> Entry | None:
    result = await session.execute(select(Entry).where(Entry.reverses_entry_id == entry_id))
    return result.scalar_one_or_none()


async def postings_of(
    session: AsyncSession, entry_ids: Sequence[int]
) -> dict[int, list[tuple[str, int]]]:
    if not entry_ids:
        return {}
    result = await session.execute(
        select(Posting.entry_id, Account.code, Posting.amount_sats)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.entry_id.in_(entry_ids))
        .order_by(Posting.id)
    )
    grouped: dict[int, list[tuple[str, int]]] = {entry_id: [] for entry_id in entry_ids}
    for entry_id, code, amount in result.all():
        grouped[entry_id].append((code, amount))
    return grouped


async def latest_memos(session: AsyncSession, entry_ids: Sequence[int]) -> dict[int, str]:
    if not entry_ids:
        return {}
    newest = (
        select(EntryNote.entry_id, func.max(EntryNote.id).label("note_id"))
        .where(EntryNote.entry_id.in_(entry_ids))
        .group_by(EntryNote.entry_id)
        .subquery()
    )
    result = await session.execute(
        select(EntryNote.entry_id, EntryNote.memo).join(newest, newest.c.note_id == EntryNote.id)
    )
    return {entry_id: memo for entry_id, memo in result.all()}


async def list_entries(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    user_id: int | None = None,
    kind: EntryKind | None = None,
    invoice_id: str | None = None,
) -> Sequence[Entry]:
    query = select(Entry)
    if before_id is not None:
        query = query.where(Entry.id < before_id)
    if kind is not None:
        query = query.where(Entry.kind == kind)
    if invoice_id is not None:
        query = query.where(Entry.invoice_id == invoice_id)
    if user_id is not None:
        touching = (
            select(Posting.entry_id)
            .join(Account, Account.id == Posting.account_id)
            .where(Account.user_id == user_id)
        )
        query = query.where(Entry.id.in_(touching))
    result = await session.execute(query.order_by(Entry.id.desc()).limit(limit))
    return result.scalars().all()


async def account_sum(
    session: AsyncSession, code: str, *, exclude_kinds: Sequence[str] = ()
) -> int:
    query = (
        select(func.coalesce(func.sum(Posting.amount_sats), 0))
        .join(Account, Account.id == Posting.account_id)
        .where(Account.code == code)
    )
    if exclude_kinds:
        query = query.join(Entry, Entry.id == Posting.entry_id).where(
            Entry.kind.not_in(exclude_kinds)
        )
    return int((await session.execute(query)).scalar_one())


async def all_account_sums(session: AsyncSession) -> dict[str, int]:
    result = await session.execute(
        select(Account.code, func.coalesce(func.sum(Posting.amount_sats), 0))
        .outerjoin(Posting, Posting.account_id == Account.id)
        .group_by(Account.code)
    )
    return {code: int(total) for code, total in result.all()}


async def account_sums_checked(session: AsyncSession) -> AsyncIterator[tuple[str, int, int]]:
    """Per account, by code: (code, balance, the part of it from entries that are chained or
    queued for sealing). The two differ only by postings of entries ``ledger verify`` never
    reads: summed here in the database, so the check keeps no per-account table in memory."""
    read = case(
        (
            (ChainLink.entry_id.is_not(None)) | (SealQueue.entry_id.is_not(None)),
            Posting.amount_sats,
        ),
        else_=0,
    )
    query = (
        select(
            Account.code,
            func.coalesce(func.sum(Posting.amount_sats), 0),
            func.coalesce(func.sum(read), 0),
        )
        .outerjoin(Posting, Posting.account_id == Account.id)
        .outerjoin(ChainLink, ChainLink.entry_id == Posting.entry_id)
        .outerjoin(SealQueue, SealQueue.entry_id == Posting.entry_id)
        .group_by(Account.code)
        .order_by(Account.code)
        .execution_options(yield_per=1000)
    )
    async for code, balance, checked in await session.stream(query):
        yield code, int(balance), int(checked)


async def count_note_links(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(NoteLink.seq)))).scalar_one())


async def count_entries(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(Entry.id)))).scalar_one())


async def chain_seq_after(
    session: AsyncSession, after_seq: int, offset: int, *, notes: bool = False
) -> int | None:
    """The seq of the link ``offset`` links past ``after_seq`` in the entries (or notes)
    chain, None when the chain ends before it: where ``ledger verify`` cuts the chain into
    parts (one index range per call, whatever gaps the seqs have)."""
    seq = NoteLink.seq if notes else ChainLink.seq
    query = select(seq).where(seq > after_seq).order_by(seq).offset(offset).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def export_snapshot(session: AsyncSession) -> str | None:
    """This transaction's snapshot, for other connections to read the very same database
    (``import_snapshot``); None where the database cannot share one (SQLite). The
    transaction must stay open while they import it."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return str((await session.execute(text("SELECT pg_export_snapshot()"))).scalar_one())


async def import_snapshot(session: AsyncSession, snapshot: str) -> None:
    """Read what the transaction that exported ``snapshot`` reads (PostgreSQL). Must run
    before any query of this fresh read transaction."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    # SET takes no bind parameters; the id is PostgreSQL's own (hex digits and dashes).
    if not all(c in "0123456789ABCDEFabcdef-" for c in snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    await session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))


async def one_snapshot(session: AsyncSession) -> None:
    """Make the rest of this read transaction see one snapshot of the database. A check that
    reads in several statements (entries, then the chain, then the queues) must not see the
    sealer's commits land half-way. SQLite's read transactions already are one snapshot; on
    PostgreSQL READ COMMITTED takes a new one per statement. Must run before any query."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))


async def recent_sale_postings(
    session: AsyncSession, account_code: str, limit: int
) -> list[tuple[int, datetime]]:
    """The newest sale postings to an account: (amount, when), newest first."""
    rows = await session.execute(
        select(Posting.amount_sats, Entry.created_at)
        .join(Entry, Entry.id == Posting.entry_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.code == account_code, Entry.kind.in_(SALE_KINDS))
        .order_by(Entry.id.desc())
        .limit(limit)
    )
    return [(amount, when) for amount, when in rows.all()]


#: One posting as the transparency figures read it: (entry id, created at, kind, gross,
#: affiliate id, kind and gross of the entry it reverses, account code, amount).
PostingRow = tuple[int, datetime, str, int | None, int | None, str | None, int | None, str, int]


async def stream_postings(
    session: AsyncSession, end: datetime | None = None
) -> AsyncIterator[PostingRow]:
    """Every posting of entries created before ``end`` (all when None), in entry order,
    streamed in batches."""
    reversed_entry = aliased(Entry)
    query = (
        select(
            Entry.id,
            Entry.created_at,
            Entry.kind,
            Entry.gross_sats,
            Entry.affiliate_user_id,
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
    if end is not None:
        query = query.where(Entry.created_at < end)
    async for row in await session.stream(query):
        yield tuple(row)  # type: ignore[misc]
