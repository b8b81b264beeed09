"""fault safety: payout re-checks with backoff, invoice reconcile schedule, idempotency claims

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 02:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import satshare.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_check_at", satshare.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("checks", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("escalated_at", satshare.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_check_at", satshare.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_invoices_next_check_at", ["next_check_at"], unique=False)
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_at", satshare.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("effect_committed_at", satshare.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("effect_committed_at")
        batch_op.drop_column("claimed_at")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_next_check_at")
        batch_op.drop_column("next_check_at")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("checks")
        batch_op.drop_column("next_check_at")
