"""Ledger verification: the chain, the balances, and tamper detection naming the row."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from satshare.db import Database
from satshare.ledger import service as ledger
from satshare.ledger.chain import (
    GENESIS_HASH,
    ChainRecord,
    NoteRecord,
    canonical_bytes,
    chain_hash,
    format_time,
)
from satshare.ledger.verify import verify_ledger
from satshare.money import split


async def _seed(db: Database, count: int = 5) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with db.transaction() as session:
        for n in range(count):
            sale = split(10_000 + n, 5000)
            await ledger.post_entry(
                session,
                ledger.NewEntry(
                    idempotency_key=f"test:{n}",
                    kind="sale",
                    legs=ledger.sale_legs(
                        provider="btcpay",
                        split=sale,
                        received_sats=sale.gross_sats,
                        affiliate_user_id=None if n % 2 else 1,
                        buyer_user_id=2,
                    )
                    if n % 2 == 0
                    else ledger.sale_legs(
                        provider="btcpay",
                        split=split(10_000 + n, 0),
                        received_sats=10_000 + n,
                        affiliate_user_id=None,
                        buyer_user_id=2,
                    ),
                    gross_sats=10_000 + n,
                    share_bps=5000 if n % 2 == 0 else 0,
                    affiliate_user_id=1 if n % 2 == 0 else None,
                    memo=f"sale {n}",
                ),
                now,
            )
    async with db.transaction() as session:
        assert await ledger.seal_pending(session, now) == count


@pytest.fixture
async def db(database_url: str) -> Database:
    database = Database(database_url)
    async with database.transaction() as session:
        for user_id in (1, 2):
            await session.execute(
                text(
                    "INSERT INTO users (id, platform, username, language, referral_code, "
                    "created_at, updated_at) VALUES (:id, 'api', 'u', 'en', :code, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": user_id, "code": f"code{user_id}x"},
            )
    return database


async def test_clean_ledger_verifies(db: Database) -> None:
    await _seed(db)
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems
    assert report.entries == 5
    assert report.head_seq == 5
    await db.dispose()


async def test_chain_hash_is_reproducible_from_the_documented_recipe(db: Database) -> None:
    await _seed(db, 2)
    async with db.reading() as session:
        rows = (
            await session.execute(
                text("SELECT seq, hash, prev_hash FROM ledger_chain ORDER BY seq")
            )
        ).all()
    assert rows[0].prev_hash == GENESIS_HASH
    assert rows[1].prev_hash == rows[0].hash
    record = ChainRecord(
        seq=1,
        entry_id=12,
        idempotency_key="x",
        kind="sale",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        invoice_id=None,
        gross_sats=3,
        share_bps=5000,
        affiliate_user_id=7,
        reverses_entry_id=None,
        postings=(("revenue:owner", -2), ("clearing:btcpay", 3), ("payable:affiliate:7", -1)),
    )
    assert canonical_bytes(record) == (
        b'{"affiliate_user_id":7,"created_at":"2026-01-01T00:00:00.000000Z","entry_id":12,'
        b'"gross_sats":3,"idempotency_key":"x","invoice_id":null,"kind":"sale","postings":'
        b'[["clearing:btcpay",3],["payable:affiliate:7",-1],["revenue:owner",-2]],'
        b'"reverses_entry_id":null,"seq":1,"share_bps":5000}'
    )
    import hashlib

    assert (
        chain_hash(GENESIS_HASH, record)
        == hashlib.sha256(bytes(32) + canonical_bytes(record)).hexdigest()
    )
    await db.dispose()


GUARDED = (
    "ledger_entries",
    "ledger_postings",
    "ledger_entry_notes",
    "ledger_chain",
    "ledger_note_chain",
)


async def _without_guards(db: Database, statement: str) -> None:
    """An attacker with database access: the append-only triggers are dropped first."""
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            for table in GUARDED:
                await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            for table in GUARDED:
                for action in ("update", "delete"):
                    await conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{action}"))
        await conn.execute(text(statement))
        if db.dialect == "postgresql":
            for table in GUARDED:
                await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE ledger_postings SET amount_sats = amount_sats - 1 WHERE id = "
            "(SELECT MIN(p.id) FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id "
            "WHERE e.id = 3 AND p.amount_sats < 0)",
            "entry seq 3",
        ),
        ("UPDATE ledger_entries SET gross_sats = 1 WHERE id = 2", "entry seq 2"),
        # Not a share at all: named, not raised (the terms cannot even be computed).
        ("UPDATE ledger_entries SET share_bps = 20000 WHERE id = 1", "entry seq 1"),
        ("UPDATE ledger_entries SET idempotency_key = 'forged' WHERE id = 4", "entry seq 4"),
        (
            "DELETE FROM ledger_postings WHERE entry_id = "
            "(SELECT id FROM ledger_entries WHERE id = 5)",
            "entry seq 5",
        ),
    ],
)
async def test_tampering_is_detected_and_named(db: Database, statement: str, expected: str) -> None:
    await _seed(db)
    await _without_guards(db, statement)
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert not report.ok
    assert report.problems[0].startswith(expected), report.problems
    await db.dispose()


async def test_deleted_entry_breaks_the_chain(db: Database) -> None:
    await _seed(db)
    await _without_guards(
        db,
        "DELETE FROM ledger_note_chain WHERE note_id IN "
        "(SELECT id FROM ledger_entry_notes WHERE entry_id = 2)",
    )
    for table in ("ledger_postings", "ledger_entry_notes", "ledger_chain"):
        await _without_guards(db, f"DELETE FROM {table} WHERE entry_id = 2")
    await _without_guards(db, "DELETE FROM ledger_entries WHERE id = 2")
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert not report.ok
    assert report.problems[0].startswith("entry seq 3"), report.problems
    await db.dispose()


async def test_split_must_match_the_terms_on_the_entry(db: Database) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with db.transaction() as session:
        await ledger.post_entry(
            session,
            ledger.NewEntry(
                idempotency_key="bad-split",
                kind="sale",
                legs=[
                    ledger.Leg("clearing:btcpay", 100),
                    ledger.Leg("revenue:owner", -60),
                    ledger.Leg("payable:affiliate:1", -40),
                ],
                gross_sats=100,
                share_bps=5000,
                affiliate_user_id=1,
            ),
            now,
        )
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert any("split does not match" in p for p in report.problems)
    await db.dispose()


async def test_truncate_is_refused_on_every_append_only_table(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (its DELETE fires the row triggers)")
    await _seed(db)
    counts = {}
    async with db.engine.connect() as conn:
        for table in GUARDED:
            counts[table] = (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar()
    for table in GUARDED:
        with pytest.raises(DBAPIError, match=f"append-only.*TRUNCATE on {table} refused"):
            async with db.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {table} CASCADE"))
    async with db.engine.connect() as conn:
        for table in GUARDED:
            count = (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar()
            assert count == counts[table] > 0, table
    async with db.reading() as session:
        assert (await verify_ledger(session)).ok
    await db.dispose()


async def _as_attacker(db: Database, statement: str) -> None:
    """Someone with full control of the database: every trigger and foreign key is off
    (PostgreSQL: a superuser in replica mode; SQLite: the file opened directly)."""
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(statement))
        return
    path = make_url(db.url).database
    assert path
    raw = sqlite3.connect(path)  # foreign keys are off unless asked for
    try:
        for table in GUARDED:
            for action in ("update", "delete"):
                raw.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        raw.execute(statement)
        raw.commit()
    finally:
        raw.close()


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("DELETE FROM ledger_entry_notes WHERE entry_id = 2", "note seq 2 (note 2)"),
        ("UPDATE ledger_entry_notes SET memo = 'refund, approved' WHERE id = 3", "note seq 3"),
        ("UPDATE ledger_entry_notes SET author = 'admin' WHERE id = 1", "note seq 1"),
        ("DELETE FROM ledger_note_chain WHERE seq = 5", "notes chain head says seq 5"),
        (
            "INSERT INTO ledger_entry_notes (entry_id, memo, author, created_at) "
            "VALUES (1, 'forged', 'system', CURRENT_TIMESTAMP)",
            "6 memo notes exist but 5 are chained and 0 queued",
        ),
    ],
)
async def test_verify_names_a_deleted_altered_or_forged_memo_note(
    db: Database, statement: str, expected: str
) -> None:
    await _seed(db)
    async with db.reading() as session:
        assert (await verify_ledger(session)).notes == 5
    await _as_attacker(db, statement)
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert not report.ok
    assert report.problems[0].startswith(expected), report.problems
    await db.dispose()


async def test_memo_edits_are_chained_and_verified(db: Database) -> None:
    await _seed(db, 2)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    async with db.transaction() as session:
        await ledger.add_memo(session, 1, "corrected memo", author="api-key:1", now=now)
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems
    assert (report.notes, report.unsealed_notes) == (2, 1)
    async with db.transaction() as session:
        assert await ledger.seal_pending(session, now) == 1
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems
    assert (report.notes, report.unsealed_notes) == (3, 0)
    await _as_attacker(db, "DELETE FROM ledger_entry_notes WHERE memo = 'corrected memo'")
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert report.problems[0].startswith("note seq 3 (note 3): the note row is missing")
    await db.dispose()


async def test_verify_and_export_walk_the_ledger_a_window_at_a_time(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger is read a few entries at a time (#15): each entry whole with its
    postings, progress counts up to the total, and tampering in the middle is named as
    before."""
    from satshare.ledger import flows
    from satshare.ledger import service as ledger_service

    await _seed(db, 7)
    monkeypatch.setattr(ledger_service, "STREAM_BATCH", 2)  # 2 entries (4 to 6 rows) a query
    seen: list[tuple[int, int]] = []
    report = await flows.verify(db, lambda done, total: seen.append((done, total)))
    assert report.ok, report.problems
    assert (report.entries, report.postings, report.notes) == (7, 18, 7)
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1] == (14, 14)  # 7 entries, then 7 notes
    lines: list[str] = []
    exported: list[tuple[int, int]] = []
    assert await flows.export(db, lines.append, lambda d, t: exported.append((d, t))) == 7
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 8))
    assert exported[-1] == (7, 7)
    await _without_guards(db, "UPDATE ledger_postings SET amount_sats = 1 WHERE id = 9")
    report = await flows.verify(db)
    assert report.problems[0].startswith("entry seq 4 (transaction 4): hash mismatch")
    await db.dispose()


async def test_a_reversal_that_does_not_negate_its_original_is_named_in_place(
    db: Database,
) -> None:
    await _seed(db, 3)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    async with db.transaction() as session:
        await ledger.reverse_entry(session, 1, memo=None, author="test", now=now)  # 4
        await ledger.reverse_entry(session, 3, memo=None, author="test", now=now)  # 5
        await ledger.seal_pending(session, now)
        await ledger.reverse_entry(session, 2, memo=None, author="test", now=now)  # 6, unsealed
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems
    assert (report.entries, report.unsealed) == (5, 1)
    # Each reversal doubled, still balanced: none negates its original any more.
    await _without_guards(
        db, "UPDATE ledger_postings SET amount_sats = amount_sats * 2 WHERE entry_id >= 4"
    )
    async with db.reading() as session:
        report = await verify_ledger(session)
    # Checked after the stream, each problem still stands where it was found: after the
    # entry's own hash problem and before the next entry's.
    assert [p.split(" (stored")[0] for p in report.problems] == [
        "entry seq 4 (transaction 4): hash mismatch",
        "entry seq 4 (transaction 4): does not exactly negate the entry it reverses",
        "entry seq 5 (transaction 5): hash mismatch",
        "entry seq 5 (transaction 5): does not exactly negate the entry it reverses",
        "unsealed transaction 6: does not exactly negate the entry it reverses",
    ]
    await db.dispose()


async def test_an_entry_written_around_the_chain_shows_in_counts_and_balances(
    db: Database,
) -> None:
    await _seed(db, 2)
    async with db.transaction() as session:
        await ledger.post_entry(
            session,
            ledger.NewEntry(
                idempotency_key="around",
                kind=ledger.EntryKind.ADJUSTMENT,
                legs=[ledger.Leg("equity:owner", 7), ledger.Leg("expense:x", -7)],
            ),
            datetime(2026, 11, 3, tzinfo=UTC),
        )
    async with db.engine.begin() as conn:  # never chained, no longer queued
        await conn.execute(text("DELETE FROM ledger_seal_queue"))
    async with db.reading() as session:
        report = await verify_ledger(session)
    assert report.problems == [
        "1 entries are neither chained nor queued for sealing (written around the chain)",
        "account equity:owner: balance 7 differs from the sum of its entries' postings 0 (a "
        "posting outside any entry?)",
        "account expense:x: balance -7 differs from the sum of its entries' postings 0 (a "
        "posting outside any entry?)",
    ]
    await db.dispose()


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), UTC]),
    )
)
def test_the_hashed_time_is_strftimes_to_the_character(moment: datetime) -> None:
    """``format_time`` writes field by field for speed (#15); every hash ever made used
    ``strftime``, so the characters must be the same for any moment."""
    assert format_time(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_verify_in_parts_across_processes_reports_what_one_walk_does(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers, both chains are cut into parts checked in other processes on the
    same snapshot (#15); the report is the same to the character, problems in the same
    order: tampering inside a part, a gap and a broken link where a part begins, a deleted
    note, reversals found in parts. SQLite cannot share a snapshot across connections: it
    walks in this process, with the same report."""
    from satshare.ledger import verify

    await _seed(db, 9)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    async with db.transaction() as session:
        await ledger.reverse_entry(session, 1, memo=None, author="test", now=now)  # 10
        await ledger.reverse_entry(session, 5, memo=None, author="test", now=now)  # 11
        await ledger.seal_pending(session, now)
        await ledger.reverse_entry(session, 2, memo=None, author="test", now=now)  # 12
    monkeypatch.setattr(verify, "PART_LINKS", 2)
    monkeypatch.setattr(verify, "PARALLEL_FROM", 0)

    async def both() -> tuple[verify.VerifyReport, verify.VerifyReport, list[int]]:
        async with db.reading() as session:
            alone = await verify_ledger(session)
        seen: list[int] = []
        async with db.reading() as session:
            parts = await verify_ledger(session, lambda d, _: seen.append(d), workers=2)
        return alone, parts, seen

    alone, parts, seen = await both()
    assert alone.ok and parts == alone, parts.problems
    # 11 chained entries, 1 unsealed, 11 chained notes (the last reversal's is unsealed).
    if db.dialect == "postgresql":  # a part at a time
        assert seen == [2, 4, 6, 8, 10, 11, 12, 14, 16, 18, 20, 22, 23]
    else:  # in this process: a window at a time
        assert seen == [11, 12, 23]
    for statement in (
        "UPDATE ledger_postings SET amount_sats = amount_sats * 2 WHERE entry_id >= 10",
        "UPDATE ledger_entries SET idempotency_key = 'forged' WHERE id = 4",
        "DELETE FROM ledger_chain WHERE seq = 7",  # a part is (6, 8]
        "UPDATE ledger_chain SET prev_hash = hash WHERE seq = 9",  # begins (8, 10]
        "DELETE FROM ledger_entry_notes WHERE id = 5",
        "UPDATE ledger_note_chain SET prev_hash = hash WHERE seq = 3",
    ):
        await _as_attacker(db, statement)
    alone, parts, seen = await both()
    assert len(alone.problems) > 10, alone.problems
    assert parts == alone
    assert seen[-1] == 22  # one link fewer
    await db.dispose()


_texts = st.text(st.characters(codec=None), max_size=30)  # any code point, lone surrogates too
_ints = st.none() | st.integers(min_value=-(2**70), max_value=2**70)


@given(
    record=st.builds(
        ChainRecord,
        seq=st.integers(min_value=0, max_value=2**63),
        entry_id=st.integers(min_value=0, max_value=2**63) | st.booleans(),
        idempotency_key=_texts,
        kind=st.sampled_from(list(ledger.EntryKind)) | _texts,
        created_at=st.datetimes(timezones=st.just(UTC)),
        invoice_id=st.none() | _texts,
        gross_sats=_ints,
        share_bps=_ints | st.booleans(),
        affiliate_user_id=_ints,
        reverses_entry_id=_ints,
        postings=st.lists(st.tuples(_texts, st.integers()), max_size=4).map(tuple),
        terms=st.none() | _texts,
    ),
    note=st.builds(
        NoteRecord,
        seq=st.integers(min_value=0),
        note_id=st.integers(min_value=0),
        entry_id=st.integers(min_value=0),
        memo=_texts,
        author=_texts,
        created_at=st.datetimes(timezones=st.just(UTC)),
    ),
)
def test_canonical_bytes_are_the_json_encoders_to_the_byte(
    record: ChainRecord, note: NoteRecord
) -> None:
    """Records are written out directly for speed (#15); every hash ever made used the JSON
    encoder (sorted keys, compact, ASCII), so the bytes must be the same for any record,
    with whatever text, numbers (a bool too, which JSON writes as true/false) or None."""
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical_bytes(record) == encoder.encode(record.as_dict()).encode("ascii")
    assert canonical_bytes(note) == encoder.encode(note.as_dict()).encode("ascii")
