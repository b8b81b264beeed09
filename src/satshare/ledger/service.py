"""Posting to the ledger. Never commits: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.ledger import accounts, repository
from satshare.ledger.chain import ChainRecord, NoteRecord, chain_hash
from satshare.ledger.figures import service as figures
from satshare.ledger.models import (
    PAYOUT_KINDS,
    ChainLink,
    Entry,
    EntryKind,
    EntryNote,
    NoteLink,
    NoteSealQueue,
)
from satshare.money import MoneyError, Split, require_sats
from satshare.users import repository as users

MAX_LEGS = 50
#: Entries the payout state machine owns: corrected by cancelling the payout, not reversing.


@dataclass(frozen=True, slots=True)
class Leg:
    account: str
    amount_sats: int  # debit positive, credit negative


@dataclass(frozen=True, slots=True)
class NewEntry:
    idempotency_key: str
    kind: EntryKind
    legs: Sequence[Leg]
    memo: str | None = None
    created_by: str = "system"
    invoice_id: str | None = None
    gross_sats: int | None = None
    share_bps: int | None = None
    affiliate_user_id: int | None = None
    reverses: Entry | None = None
    terms: str | None = None
    #: For a sale: the buyer and their referrer, whom the referral figures count by, and
    #: whether its subscription was paid before (not part of the entry's hash:
    #: ``ledger_sale_buyers``).
    buyer_user_id: int | None = None
    referrer_user_id: int | None = None
    renewal: bool = False
    #: The users the legs' accounts name are known to exist (a sale's buyer and referrer,
    #: read in the same transaction): no need to look them up again.
    owners_known: bool = False


def validate_legs(legs: Sequence[Leg], *, known_accounts: bool = False) -> None:
    """Check the shape of an entry. Account codes must be canonical, unless
    ``known_accounts``: a reversal mirrors accounts already in the ledger, which may predate
    that rule and must stay reversible."""
    if len(legs) < 2:
        raise InvalidRequest("a ledger entry needs at least two postings")
    if len(legs) > MAX_LEGS:
        raise InvalidRequest(f"a ledger entry takes at most {MAX_LEGS} postings")
    seen: set[str] = set()
    for index, leg in enumerate(legs):
        try:
            if known_accounts:
                accounts.kind_of(leg.account)
            else:
                accounts.require_canonical(leg.account)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"postings[{index}].account: {exc.detail}", field=f"postings.{index}.account"
            ) from exc
        if leg.account in seen:
            raise InvalidRequest(f"account {leg.account!r} appears twice; merge its postings")
        seen.add(leg.account)
        try:
            require_sats(leg.amount_sats, allow_zero=False, allow_negative=True)
        except MoneyError as exc:
            raise InvalidRequest(f"postings[{index}].amount_sats: {exc}") from exc
    totals: dict[str, int] = {}
    for leg in legs:
        currency = accounts.currency_of(leg.account)
        totals[currency] = totals.get(currency, 0) + leg.amount_sats
    for currency, total in totals.items():
        if total != 0:
            unit = "sats" if currency == accounts.SATS else currency
            raise InvalidRequest(
                f"postings must sum to zero in each currency (debits positive, credits "
                f"negative); the {unit} postings sum to {total}",
                imbalance=total,
                currency=currency,
            )


async def post_entry(session: AsyncSession, new: NewEntry, now: datetime) -> Entry:
    """Write one balanced entry. Takes no shared lock: the sealer chains it afterwards.

    Returns the entry as written (not attached to the session: entries are append-only, so
    there is nothing for the unit of work to track). Raises IntegrityError on a duplicate
    idempotency key (or a second reversal).
    """
    mirrors_ledger = new.reverses is not None  # a reversal names the original's accounts
    validate_legs(new.legs, known_accounts=mirrors_ledger)
    if not mirrors_ledger and not new.owners_known:
        await _require_owners(session, new.legs)
    values = {
        "idempotency_key": new.idempotency_key,
        "kind": new.kind,
        "created_at": now,
        "invoice_id": new.invoice_id,
        "gross_sats": new.gross_sats,
        "share_bps": new.share_bps,
        "affiliate_user_id": new.affiliate_user_id,
        "reverses_entry_id": new.reverses.id if new.reverses else None,
        "created_by": new.created_by,
        "terms": new.terms,
    }
    legs = [(leg.account, leg.amount_sats) for leg in new.legs]
    # Flush what the caller's unit of work holds first: the rows below are written past it.
    await session.flush()
    entry_id, written = await repository.write_entry(
        session,
        values,
        legs,
        note=(
            {"memo": new.memo, "author": new.created_by, "created_at": now} if new.memo else None
        ),
        sale_buyer=(
            {
                "buyer_user_id": new.buyer_user_id,
                "referrer_user_id": new.referrer_user_id,
                "renewal": new.renewal,
            }
            if new.buyer_user_id is not None
            else None
        ),
    )
    if written < len(legs):  # an account's first posting: create it, then post the rest
        specs = [
            (leg.account, accounts.kind_of(leg.account), accounts.user_of(leg.account))
            for leg in new.legs
        ]
        await repository.post_missing(session, entry_id, legs, specs, now)
    return Entry(id=entry_id, **values)


async def _require_owners(session: AsyncSession, legs: Sequence[Leg]) -> None:
    for index, leg in enumerate(legs):
        owner = accounts.user_of(leg.account)
        if owner is not None and await users.get(session, owner) is None:
            raise InvalidRequest(
                f"postings[{index}].account: account {leg.account!r} names user {owner}, who "
                "does not exist",
                field=f"postings.{index}.account",
            )


async def _add_note(
    session: AsyncSession, entry_id: int, memo: str, *, author: str, now: datetime
) -> None:
    note = EntryNote(entry_id=entry_id, memo=memo, author=author, created_at=now)
    session.add(note)
    await session.flush()
    session.add(NoteSealQueue(note_id=note.id))


def note_record(seq: int, note: EntryNote) -> NoteRecord:
    return NoteRecord(
        seq=seq,
        note_id=note.id,
        entry_id=note.entry_id,
        memo=note.memo,
        author=note.author,
        created_at=note.created_at,
    )


def chain_record(seq: int, entry: Entry, postings: list[tuple[str, int]]) -> ChainRecord:
    return ChainRecord(
        seq=seq,
        entry_id=entry.id,
        idempotency_key=entry.idempotency_key,
        kind=entry.kind,
        created_at=entry.created_at,
        invoice_id=entry.invoice_id,
        gross_sats=entry.gross_sats,
        share_bps=entry.share_bps,
        affiliate_user_id=entry.affiliate_user_id,
        reverses_entry_id=entry.reverses_entry_id,
        postings=tuple(postings),
        terms=entry.terms,
    )


class StoredLink(NamedTuple):
    """A chain link as stored (entries or notes chain)."""

    seq: int
    #: The entry's (or the note's) id the link names.
    item_id: int
    prev_hash: str
    hash: str


#: Entries (or notes) read per query when walking the whole ledger (``ledger verify``,
#: ``ledger export``): memory holds one such window, however long the ledger.
STREAM_BATCH = 5000


#: Named tuples built straight from a tuple of their fields in order, without the generated
#: ``__new__`` taking them one by one: ``ledger verify`` builds two per link (#15).
_tuple_of = tuple.__new__


def _record(seq: int, row: Sequence[Any], postings: list[tuple[str, int]]) -> ChainRecord:
    """A chain record from the entry columns of ``repository.chain_rows`` (row[0:10], in the
    record's order: built positionally, as ``ledger verify`` builds one per entry)."""
    return _tuple_of(ChainRecord, (seq, *row[:9], tuple(postings), row[9]))


async def chained_entries(
    session: AsyncSession, after: int = 0, until: int | None = None
) -> AsyncIterator[list[tuple[StoredLink, ChainRecord | None]]]:
    """The hash chain in order (the links after seq ``after`` up to ``until``: the whole
    chain by default), each link with the record its entry has now (None where the entry
    row is gone), ``STREAM_BATCH`` links at a time: memory stays flat however long the
    ledger (``ledger verify`` and ``ledger export``)."""
    while rows := await repository.chain_rows(session, after, STREAM_BATCH, until):
        postings: dict[int, list[tuple[str, int]]] = {}
        window = await repository.chain_postings(session, after, STREAM_BATCH, until)
        for entry_id, code, amount in window:
            postings.setdefault(entry_id, []).append((code, amount))
        batch = [
            (
                _tuple_of(StoredLink, row[:4]),
                _record(row[0], row[4:], postings.get(row[4], [])) if row[4] is not None else None,
            )
            for row in rows
        ]
        after = rows[-1][0]
        yield batch


async def unsealed_records(session: AsyncSession) -> AsyncIterator[list[ChainRecord]]:
    """Entries not chained yet (seq 0), in id order, a window at a time."""
    after = 0
    while rows := await repository.unsealed_rows(session, after, STREAM_BATCH):
        postings = await repository.postings_of(session, [row[0] for row in rows])
        yield [_record(0, row, postings[row[0]]) for row in rows]
        after = rows[-1][0]


async def chained_notes(
    session: AsyncSession, after: int = 0, until: int | None = None
) -> AsyncIterator[list[tuple[StoredLink, NoteRecord | None]]]:
    """The notes chain in order (after seq ``after`` up to ``until``: all by default), each
    link with its note's record (None where the note row is gone), a window at a time."""
    while rows := await repository.note_chain_rows(session, after, STREAM_BATCH, until):
        yield [
            (
                StoredLink(row[0], row[1], row[2], row[3]),
                NoteRecord(
                    seq=row[0],
                    note_id=row[4],
                    entry_id=row[5],
                    memo=row[6],
                    author=row[7],
                    created_at=row[8],
                )
                if row[4] is not None
                else None,
            )
            for row in rows
        ]
        after = rows[-1][0]


async def seal_pending(session: AsyncSession, now: datetime, limit: int = 1000) -> int:
    """Append unsealed entries to the hash chain and unsealed memo notes to the notes chain,
    oldest first, up to ``limit`` of each, and fold the entries into the figures
    (``ledger.figures``). Returns the larger of the two counts, so a caller that repeats
    while a full batch was sealed drains both.

    Only one sealer works at a time (the chain head row lock); a second one returns 0 at
    once rather than queueing behind it.
    """
    head = await repository.lock_head(session)
    if head is None:
        return 0
    notes = await _seal_notes(session, now, limit)
    entries = await repository.unsealed_entries(session, limit)
    # The figures fold what is chained, in this transaction (and move their windows).
    await figures.fold_sealed(session, [e.id for e in entries], now)
    if not entries:
        return notes
    postings = await repository.postings_of(session, [e.id for e in entries])
    seq, prev = head.seq, head.hash
    links = []
    for entry in entries:
        seq += 1
        digest = chain_hash(prev, chain_record(seq, entry, postings[entry.id]))
        links.append(
            ChainLink(seq=seq, entry_id=entry.id, prev_hash=prev, hash=digest, sealed_at=now)
        )
        prev = digest
    session.add_all(links)
    head.seq, head.hash = seq, prev
    await session.flush()
    await repository.dequeue(session, [e.id for e in entries])
    return max(len(links), notes)


async def _seal_notes(session: AsyncSession, now: datetime, limit: int) -> int:
    notes = await repository.unsealed_notes(session, limit)
    if not notes:
        return 0
    head = await repository.notes_head(session)
    seq, prev = head.seq, head.hash
    for note in notes:
        seq += 1
        digest = chain_hash(prev, note_record(seq, note))
        session.add(NoteLink(seq=seq, note_id=note.id, prev_hash=prev, hash=digest, sealed_at=now))
        prev = digest
    head.seq, head.hash = seq, prev
    await session.flush()
    await repository.dequeue_notes(session, [n.id for n in notes])
    return len(notes)


def sale_legs(
    *,
    provider: str,
    split: Split,
    received_sats: int,
    affiliate_user_id: int | None,
    buyer_user_id: int,
) -> list[Leg]:
    """Legs of a settled sale: clearing receives the money, owner and affiliate are credited.

    An overpayment is held for the buyer, never split: commission is paid only on the sale.
    """
    overpaid = received_sats - split.gross_sats
    if overpaid < 0:
        raise ValueError("received less than the sale amount")
    legs = [Leg(accounts.clearing(provider), received_sats)]
    if split.owner_sats:
        legs.append(Leg(accounts.OWNER_REVENUE, -split.owner_sats))
    if split.affiliate_sats:
        if affiliate_user_id is None:
            raise ValueError("an affiliate share needs an affiliate")
        legs.append(Leg(accounts.affiliate_payable(affiliate_user_id), -split.affiliate_sats))
    if overpaid:
        legs.append(Leg(accounts.customer_payable(buyer_user_id), -overpaid))
    return legs


def stars_sale_legs(
    *, stars: int, affiliate_user_id: int | None, commission_sats: int
) -> list[Leg]:
    """A sale paid in Telegram Stars: the owner receives the Stars (XTR); the affiliate's
    share, if any, is credited in sats as a commission expense of the owner."""
    legs = [Leg(accounts.STARS_CLEARING, stars), Leg(accounts.STARS_REVENUE, -stars)]
    if commission_sats:
        if affiliate_user_id is None:
            raise ValueError("a commission needs an affiliate")
        legs += [
            Leg(accounts.STARS_COMMISSION, commission_sats),
            Leg(accounts.affiliate_payable(affiliate_user_id), -commission_sats),
        ]
    return legs


async def reverse_entry(
    session: AsyncSession, entry_id: int, *, memo: str | None, author: str, now: datetime
) -> Entry:
    original = await repository.entry_by_id(session, entry_id)
    if original is None:
        raise NotFound(f"transaction {entry_id} does not exist")
    if original.kind in PAYOUT_KINDS:
        raise Conflict(
            f"transaction {entry_id} belongs to a payout; cancel the payout (or let it fail) "
            "and the hold is released by its own entry"
        )
    if original.kind == EntryKind.REVERSAL:
        raise Conflict(
            f"transaction {entry_id} is itself a reversal; post a new adjustment instead"
        )
    existing = await repository.entry_reversing(session, entry_id)
    if existing is not None:
        raise Conflict(
            f"transaction {entry_id} was already reversed by transaction {existing.id}",
            reversal_transaction_id=existing.id,
        )
    postings = (await repository.postings_of(session, [entry_id]))[entry_id]
    legs = [Leg(code, -amount) for code, amount in postings]
    return await post_entry(
        session,
        NewEntry(
            idempotency_key=f"reversal:{entry_id}",
            kind=EntryKind.REVERSAL,
            legs=legs,
            memo=memo or f"reversal of transaction {entry_id}",
            created_by=author,
            invoice_id=original.invoice_id,
            reverses=original,
        ),
        now,
    )


async def add_memo(
    session: AsyncSession, entry_id: int, memo: str, *, author: str, now: datetime
) -> None:
    if await repository.entry_by_id(session, entry_id) is None:
        raise NotFound(f"transaction {entry_id} does not exist")
    await _add_note(session, entry_id, memo, author=author, now=now)
    await session.flush()
