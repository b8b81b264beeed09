"""truncate guards and the notes chain

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 03:00:00.000000

TRUNCATE is refused on every append-only ledger table (PostgreSQL: row triggers never fire
on TRUNCATE), and memo notes get a hash chain of their own, sealed like entries, so that
``satshare ledger verify`` sees a note deleted or altered. Notes that already exist are
queued: the sealer chains them on its next run.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import satshare.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables whose rows the triggers of 0001 protect from UPDATE and DELETE.
EARLIER_APPEND_ONLY = ("ledger_entries", "ledger_postings", "ledger_entry_notes", "ledger_chain")
NOTE_CHAIN = "ledger_note_chain"
APPEND_ONLY_TABLES = (*EARLIER_APPEND_ONLY, NOTE_CHAIN)
#: Same words as the triggers of 0001.
REFUSAL = "ledger is append-only; corrections are reversing entries"


def upgrade() -> None:
    op.create_table(
        NOTE_CHAIN,
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("note_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["note_id"],
            ["ledger_entry_notes.id"],
            name=op.f("fk_ledger_note_chain_note_id_ledger_entry_notes"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_note_chain")),
        sa.UniqueConstraint("hash", name=op.f("uq_ledger_note_chain_hash")),
        sa.UniqueConstraint("note_id", name=op.f("uq_ledger_note_chain_note_id")),
    )
    op.create_table(
        "ledger_note_seal_queue",
        sa.Column(
            "note_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["note_id"],
            ["ledger_entry_notes.id"],
            name=op.f("fk_ledger_note_seal_queue_note_id_ledger_entry_notes"),
        ),
        sa.PrimaryKeyConstraint("note_id", name=op.f("pk_ledger_note_seal_queue")),
    )
    op.execute("INSERT INTO ledger_note_seal_queue (note_id) SELECT id FROM ledger_entry_notes")
    if _postgresql():
        # The function of 0001 names the operation and the table in its refusal.
        op.execute(
            f"CREATE TRIGGER {NOTE_CHAIN}_append_only BEFORE UPDATE OR DELETE ON {NOTE_CHAIN} "
            "FOR EACH ROW EXECUTE FUNCTION satshare_ledger_append_only()"
        )
        # Row triggers never fire on TRUNCATE, which would empty a table (memos and all)
        # past them: a statement trigger refuses it.
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION satshare_ledger_append_only()"
            )
    else:
        # SQLite has no TRUNCATE: its DELETE without WHERE fires the row triggers.
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {NOTE_CHAIN}_no_{action.lower()} BEFORE {action} ON "
                f"{NOTE_CHAIN} BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )


def downgrade() -> None:
    if _postgresql():
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {NOTE_CHAIN}_append_only ON {NOTE_CHAIN}")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {NOTE_CHAIN}_no_{action}")
    op.drop_table("ledger_note_seal_queue")
    op.drop_table(NOTE_CHAIN)
    op.execute("DELETE FROM ledger_chain_head WHERE id = 2")  # the notes chain's head


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"
