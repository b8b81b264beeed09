"""Migrations create exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from satshare import migrate
from satshare.db import Database
from satshare.models import Base

pytestmark = pytest.mark.integration  # every test migrates a database


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": migrate.ours}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
        assert await migrate.current_revision(db) == migrate.head_revision()
    finally:
        await db.dispose()


async def test_the_start_up_revision_check_agrees_with_alembic(tmp_path: Path) -> None:
    """``serve`` reads both revisions without loading Alembic (#15): the same answers."""
    from alembic.script import ScriptDirectory

    assert migrate.head_revision() == (
        ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    )
    db = Database(f"sqlite:///{tmp_path / 'revisions.db'}")

    def alembics(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    try:
        assert await migrate.current_revision(db) is None  # an empty database
        for revision in ("0001", "0011", "head"):
            await migrate.upgrade(db, revision)
            async with db.engine.connect() as connection:
                expected = await connection.run_sync(alembics)
            assert await migrate.current_revision(db) == expected
        assert expected == migrate.head_revision()
    finally:
        await db.dispose()


async def test_downgrade_to_nothing_and_back(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'cycle.db'}")
    try:
        await migrate.upgrade(db)
        await migrate.upgrade(db, "head")  # idempotent
        from alembic import command

        def down(connection: Connection) -> None:
            config = migrate.alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")

        async with db.engine.begin() as connection:
            await connection.run_sync(down)
        async with db.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == migrate.head_revision()
    finally:
        await db.dispose()


async def test_notes_written_before_the_notes_chain_are_queued_and_sealed(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from satshare.ledger import service as ledger
    from satshare.ledger.verify import verify_ledger

    db = Database(f"sqlite:///{tmp_path / 'notes.db'}")
    try:
        await migrate.upgrade(db, "0009")
        async with db.transaction() as session:
            for statement in (
                "INSERT INTO ledger_accounts (id, code, kind, created_at) VALUES "
                "(1, 'equity:owner', 'equity', CURRENT_TIMESTAMP), "
                "(2, 'expense:x', 'expense', CURRENT_TIMESTAMP)",
                "INSERT INTO ledger_entries (id, idempotency_key, kind, created_at, created_by) "
                "VALUES (1, 'old', 'adjustment', CURRENT_TIMESTAMP, 'system')",
                "INSERT INTO ledger_postings (entry_id, account_id, amount_sats) "
                "VALUES (1, 1, 10), (1, 2, -10)",
                "INSERT INTO ledger_seal_queue (entry_id) VALUES (1)",
                "INSERT INTO ledger_entry_notes (entry_id, memo, author, created_at) VALUES "
                "(1, 'first', 'system', CURRENT_TIMESTAMP), "
                "(1, 'second', 'system', CURRENT_TIMESTAMP)",
            ):
                await session.execute(text(statement))
        await migrate.upgrade(db)
        async with db.reading() as session:
            report = await verify_ledger(session)
        assert report.ok, report.problems
        assert (report.notes, report.unsealed_notes) == (0, 2)
        async with db.transaction() as session:
            assert await ledger.seal_pending(session, datetime.now(UTC)) == 2
        async with db.reading() as session:
            report = await verify_ledger(session)
        assert report.ok, report.problems
        assert (report.entries, report.notes, report.unsealed_notes) == (1, 2, 0)
    finally:
        await db.dispose()
