"""Double-entry ledger tables. Entries, postings, notes and chain links are append-only
(database triggers refuse UPDATE, DELETE and, on PostgreSQL, TRUNCATE); a memo edit is a new
note row, a correction is a reversing entry.

Entries are written without any shared lock. A sealer then appends them, in batches and in
order, to the hash chain (``ledger_chain``): one link per entry with its sequence number,
the previous link's hash and its own. Keeping the chain off the settlement path stops the
chain head from becoming one hot locked row that every payment waits for. Memo notes are
chained the same way, in a chain of their own (``ledger_note_chain``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId, UTCDateTime

GENESIS_HASH = "0" * 64


class EntryKind(StrEnum):
    SALE = "sale"
    STARS_SALE = "stars_sale"
    ADJUSTMENT = "adjustment"
    REVERSAL = "reversal"
    PAYOUT_HOLD = "payout_hold"
    PAYOUT = "payout"
    PAYOUT_RELEASE = "payout_release"


#: Entry kinds that record a sale (the affiliate's commission is in them).
SALE_KINDS = frozenset({EntryKind.SALE, EntryKind.STARS_SALE})
#: Entry kinds that move an affiliate's money into a payout and out (not earnings).
PAYOUT_KINDS = frozenset({EntryKind.PAYOUT_HOLD, EntryKind.PAYOUT, EntryKind.PAYOUT_RELEASE})


class Account(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # asset | revenue | liability | expense | equity
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Entry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    #: An ``EntryKind`` when written; read back as the stored string, whatever it is, so
    #: ``ledger verify`` can read (and report) any row of the history.
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    invoice_id: Mapped[str | None] = mapped_column(String(40), index=True)
    gross_sats: Mapped[int | None] = mapped_column(BigInteger)
    # The terms that applied, frozen on the entry so later changes never rewrite history.
    share_bps: Mapped[int | None] = mapped_column(Integer)
    #: How that share was decided: "base", "level:<name>", "custom:v<n>", "suspended".
    terms: Mapped[str | None] = mapped_column(String(80))
    affiliate_user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    reverses_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_entries.id"), unique=True
    )
    created_by: Mapped[str] = mapped_column(String(64), default="system")


class Posting(Base):
    __tablename__ = "ledger_postings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    # Signed: debits positive, credits negative; the postings of an entry sum to zero.
    amount_sats: Mapped[int] = mapped_column(BigInteger)


class EntryNote(Base):
    """Memo history of an entry; the newest note is the entry's memo."""

    __tablename__ = "ledger_entry_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    memo: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChainLink(Base):
    """An entry's place in the hash chain: sha256(prev_hash || canonical(entry))."""

    __tablename__ = "ledger_chain"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NoteLink(Base):
    """A note's place in the notes chain: sha256(prev_hash || canonical(note)).

    Memos are edited by adding notes, long after their entry was chained, so notes cannot be
    part of the entry's hash; the sealer chains them on their own, in the order it sees them.
    """

    __tablename__ = "ledger_note_chain"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    note_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry_notes.id"), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NoteSealQueue(Base):
    """Notes written but not yet chained; the sealer deletes what it chains."""

    __tablename__ = "ledger_note_seal_queue"

    note_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entry_notes.id"), primary_key=True, autoincrement=False
    )


class SealQueue(Base):
    """Entries written but not yet chained. Kept tiny: the sealer deletes what it chains."""

    __tablename__ = "ledger_seal_queue"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entries.id"), primary_key=True, autoincrement=False
    )


class ChainHead(Base):
    """Row 1: the entries chain's head, locked by the sealer, which serialises sealers (never
    settlements). Row 2: the notes chain's head, written only by the holder of row 1."""

    __tablename__ = "ledger_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
