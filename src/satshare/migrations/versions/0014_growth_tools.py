"""growth tools: broadcasts, promo codes, trials, referee bonus

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 05:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import satshare.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_ru", sa.Text(), nullable=True),
        sa.Column("photo", sa.Text(), nullable=True),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("send_at", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sender", sa.String(64), nullable=True),
        sa.Column("lease_until", satshare.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_broadcasts_status_send_at", "broadcasts", ["status", "send_at"])
    op.create_table(
        "broadcast_recipients",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "broadcast_id",
            BigId,
            sa.ForeignKey("broadcasts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_attempt_at", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("broadcast_id", "user_id"),
    )
    op.create_index(
        "ix_broadcast_recipients_status",
        "broadcast_recipients",
        ["broadcast_id", "status", "id"],
    )

    op.create_table(
        "promo_codes",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("plans", sa.JSON(), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("once_per_user", sa.Boolean(), nullable=False),
        sa.Column("first_purchase_only", sa.Boolean(), nullable=False),
        sa.Column("valid_from", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", satshare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "promo_redemptions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(32), sa.ForeignKey("promo_codes.code"), nullable=False),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=True, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("original_sats", sa.BigInteger(), nullable=False),
        sa.Column("discount_sats", sa.BigInteger(), nullable=False),
        sa.Column("price_sats", sa.BigInteger(), nullable=False),
        sa.Column("bonus_days", sa.Integer(), nullable=False),
        sa.Column("reserved_until", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_promo_redemptions_code_status", "promo_redemptions", ["code", "status"])
    op.create_index("ix_promo_redemptions_user_id", "promo_redemptions", ["user_id"])
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_sats", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("discount_sats", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("promo_code", sa.String(32), nullable=True))
        batch_op.add_column(
            sa.Column("bonus_days", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trial_days", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    op.create_table(
        "trials",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("person", sa.String(160), nullable=False),
        sa.Column("plan_id", sa.String(64), sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("subscription_id", BigId, sa.ForeignKey("subscriptions.id"), nullable=False),
        sa.Column("started_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", satshare.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("person", "plan_id"),
    )


def downgrade() -> None:
    op.drop_table("trials")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("trial_days")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("bonus_days")
        batch_op.drop_column("promo_code")
        batch_op.drop_column("discount_sats")
        batch_op.drop_column("original_sats")
    op.drop_index("ix_promo_redemptions_user_id", table_name="promo_redemptions")
    op.drop_index("ix_promo_redemptions_code_status", table_name="promo_redemptions")
    op.drop_table("promo_redemptions")
    op.drop_table("promo_codes")
    op.drop_index("ix_broadcast_recipients_status", table_name="broadcast_recipients")
    op.drop_table("broadcast_recipients")
    op.drop_index("ix_broadcasts_status_send_at", table_name="broadcasts")
    op.drop_table("broadcasts")
