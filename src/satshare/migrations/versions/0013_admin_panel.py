"""admin panel: admin users, the audit log (append-only), plans' source

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 05:00:00.000000

Plans get ``source``: ``config`` (every plan so far: synced from satshare.yaml) or ``panel``
(created in the admin panel, never touched by the start-up sync).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import satshare.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT = "audit_events"
REFUSAL = "the audit log is append-only"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("username", name=op.f("uq_admin_users_username")),
    )
    op.create_table(
        AUDIT,
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("created_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_created_at", AUDIT, ["created_at"], unique=False)
    op.create_index("ix_audit_events_action", AUDIT, ["action"], unique=False)
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "source", sa.String(length=8), nullable=False, server_default=sa.text("'config'")
            )
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION satshare_audit_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '%: % on % refused', "
            f"'{REFUSAL}', TG_OP, TG_TABLE_NAME; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {AUDIT}_append_only BEFORE UPDATE OR DELETE ON {AUDIT} "
            "FOR EACH ROW EXECUTE FUNCTION satshare_audit_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {AUDIT}_no_truncate BEFORE TRUNCATE ON {AUDIT} "
            "FOR EACH STATEMENT EXECUTE FUNCTION satshare_audit_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {AUDIT}_no_{action.lower()} BEFORE {action} ON {AUDIT} "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {AUDIT}_no_truncate ON {AUDIT}")
        op.execute(f"DROP TRIGGER IF EXISTS {AUDIT}_append_only ON {AUDIT}")
        op.execute("DROP FUNCTION IF EXISTS satshare_audit_append_only()")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {AUDIT}_no_{action}")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("source")
    op.drop_index("ix_audit_events_action", table_name=AUDIT)
    op.drop_index("ix_audit_events_created_at", table_name=AUDIT)
    op.drop_table(AUDIT)
    op.drop_table("admin_users")
