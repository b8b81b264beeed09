"""The hash chain: pure functions shared by the writer, the verifier and the export recipe.

hash(entry) = sha256(bytes.fromhex(prev_hash) || canonical(entry)), where canonical(entry) is
compact JSON with sorted keys. ``docs/ledger.md`` shows how to recompute it independently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _json_string
from typing import NamedTuple

from satshare.ledger.models import GENESIS_HASH

__all__ = [
    "GENESIS_HASH",
    "ChainRecord",
    "NoteRecord",
    "canonical_bytes",
    "chain_hash",
    "format_time",
]


def format_time(moment: datetime) -> str:
    """``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC. Written field by field, which makes the same
    characters in a third of the time of ``strftime`` (every entry and note is hashed on
    each ``ledger verify``); ``strftime`` writes years before 1000 unpadded, so those keep it."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    year = utc.year
    if year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f"{year}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond:06d}Z"
    )


class ChainRecord(NamedTuple):
    """Everything about an entry that the hash commits to (memos are notes, chained apart).
    A named tuple: ``ledger verify`` makes one per entry, and it is the quickest to build."""

    seq: int
    entry_id: int
    idempotency_key: str
    kind: str
    created_at: datetime
    invoice_id: str | None
    gross_sats: int | None
    share_bps: int | None
    affiliate_user_id: int | None
    reverses_entry_id: int | None
    postings: tuple[tuple[str, int], ...]
    terms: str | None = None

    def as_dict(self) -> dict[str, object]:
        fields = self._hashed()
        if self.terms is not None:  # entries from before terms were recorded hash without it
            fields["terms"] = self.terms
        return fields

    def _hashed(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "entry_id": self.entry_id,
            "idempotency_key": self.idempotency_key,
            "kind": self.kind,
            "created_at": format_time(self.created_at),
            "invoice_id": self.invoice_id,
            "gross_sats": self.gross_sats,
            "share_bps": self.share_bps,
            "affiliate_user_id": self.affiliate_user_id,
            "reverses_entry_id": self.reverses_entry_id,
            # (code, amount) pairs, sorted: JSON writes each pair as an array.
            "postings": sorted(self.postings),
        }


class NoteRecord(NamedTuple):
    """Everything about a memo note that the notes chain commits to."""

    seq: int
    note_id: int
    entry_id: int
    memo: str
    author: str
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "note_id": self.note_id,
            "entry_id": self.entry_id,
            "memo": self.memo,
            "author": self.author,
            "created_at": format_time(self.created_at),
        }


#: Compact JSON with sorted keys, ASCII only: the definition of the canonical form. Built
#: once: ``json.dumps`` with these options builds an encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class _NotPlain(Exception):
    """A field holds something other than the plain int, str or None the quick writer
    knows: the record is written by the JSON encoder instead."""


def _number(value: int | None) -> str:
    if value is None:
        return "null"
    if type(value) is not int:  # a bool or an int subclass: JSON's own rules apply
        raise _NotPlain
    return int.__repr__(value)


def _text(value: str | None) -> str:
    if value is None:
        return "null"
    if not isinstance(value, str):
        raise _NotPlain
    return _json_string(value)


def _entry_json(record: ChainRecord) -> str:
    """``_CANONICAL.encode(record.as_dict())``, written directly: the keys in their sorted
    order, strings through JSON's own escaping. Four times quicker than building the dict
    and encoding it, which was most of hashing an entry (``ledger verify`` hashes every one);
    a property test holds it to the encoder's characters."""
    postings = ",".join(
        [f"[{_text(code)},{_number(amount)}]" for code, amount in sorted(record.postings)]
    )
    terms = "" if record.terms is None else f',"terms":{_text(record.terms)}'
    return (
        f'{{"affiliate_user_id":{_number(record.affiliate_user_id)},'
        f'"created_at":"{format_time(record.created_at)}",'
        f'"entry_id":{_number(record.entry_id)},'
        f'"gross_sats":{_number(record.gross_sats)},'
        f'"idempotency_key":{_text(record.idempotency_key)},'
        f'"invoice_id":{_text(record.invoice_id)},'
        f'"kind":{_text(record.kind)},'
        f'"postings":[{postings}],'
        f'"reverses_entry_id":{_number(record.reverses_entry_id)},'
        f'"seq":{_number(record.seq)},'
        f'"share_bps":{_number(record.share_bps)}{terms}}}'
    )


def _note_json(record: NoteRecord) -> str:
    """``_CANONICAL.encode(record.as_dict())`` for a note, written directly (see above)."""
    return (
        f'{{"author":{_text(record.author)},'
        f'"created_at":"{format_time(record.created_at)}",'
        f'"entry_id":{_number(record.entry_id)},'
        f'"memo":{_text(record.memo)},'
        f'"note_id":{_number(record.note_id)},'
        f'"seq":{_number(record.seq)}}}'
    )


def canonical_bytes(record: ChainRecord | NoteRecord) -> bytes:
    try:
        text = _entry_json(record) if isinstance(record, ChainRecord) else _note_json(record)
    except _NotPlain:
        text = _CANONICAL.encode(record.as_dict())
    return text.encode("ascii")


def chain_hash(prev_hash: str, record: ChainRecord | NoteRecord) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_bytes(record)).hexdigest()


def sorted_postings(postings: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(postings))
