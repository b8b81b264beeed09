"""the dashboard's tallies and the per-month affiliate figures, counted from what is there

Revision ID: 0017_dash_tallies
Revises: 0016_f_figures
Create Date: 2026-11-30 12:30:00.000000

``satshare.tallies``: the changes queue, the totals (subscriptions in the active state per
plan with their last payments, subscribers, payouts per state), the subscriptions whose
paid time ends on each day, each user's active subscriptions. And ``figures_user_months``
(``ledger.figures``): each affiliate's figures per month, with the index the monthly
report's pages read. The upgrade fills them in SQL from the subscriptions, the payouts and
the per-day figures, with the definitions of ``tallies.service.rebuild`` and the sealer's
fold; ``satshare figures check`` compares both with counts over the rows themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_dash_tallies"
down_revision: str | None = "0016_f_figures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTER = sa.BigInteger()
MONTH_COLUMNS = (
    "referred_sales_sats",
    "commissions",
    "earned_sats",
    "clawed_back_sats",
    "paid_out_sats",
)


def upgrade() -> None:
    op.create_table(
        "tally_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("count", COUNTER, nullable=False),
        sa.Column("sats", COUNTER, nullable=False),
    )
    op.create_table(
        "tallies",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("count", COUNTER, nullable=False),
        sa.Column("sats", COUNTER, nullable=False),
    )
    op.create_table(
        "tally_ends_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("count", COUNTER, nullable=False),
    )
    op.create_table(
        "tally_subscribers",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("subscriptions", COUNTER, nullable=False),
    )
    op.create_table(
        "figures_user_months",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("month", sa.Date(), primary_key=True),
        *[sa.Column(name, COUNTER, nullable=False) for name in MONTH_COLUMNS],
    )
    op.create_index(
        "ix_figures_user_months_ranked",
        "figures_user_months",
        ["month", sa.text("earned_sats DESC"), "user_id"],
    )
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    day = "((s.ends_at) AT TIME ZONE 'UTC')::date" if postgres else "date(s.ends_at)"
    month = "date_trunc('month', d.day)::date" if postgres else "date(d.day, 'start of month')"
    active = "s.status = 'active' AND s.ends_at IS NOT NULL"
    bind.execute(sa.text("INSERT INTO tallies (key, count, sats) VALUES ('version', 0, 0)"))
    bind.execute(
        sa.text(
            "INSERT INTO tallies (key, count, sats) SELECT 'active:' || s.plan_id, count(*),"
            f" coalesce(sum(s.last_paid_sats), 0) FROM subscriptions s WHERE {active}"
            " GROUP BY s.plan_id"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO tallies (key, count, sats) SELECT 'payouts:' || p.status, count(*),"
            " coalesce(sum(p.amount_sats), 0) FROM payouts p GROUP BY p.status"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO tally_subscribers (user_id, subscriptions) SELECT s.user_id, count(*)"
            f" FROM subscriptions s WHERE {active} GROUP BY s.user_id"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO tallies (key, count, sats) SELECT 'subscribers', count(*), 0"
            " FROM tally_subscribers"
        )
    )
    bind.execute(
        sa.text(
            f"INSERT INTO tally_ends_days (day, count) SELECT {day}, count(*) FROM subscriptions s"
            f" WHERE s.started_at IS NOT NULL AND s.ends_at IS NOT NULL GROUP BY {day}"
        )
    )
    sums = ", ".join(f"sum(d.{c})" for c in MONTH_COLUMNS)
    nonzero = " OR ".join(f"sum(d.{c}) <> 0" for c in MONTH_COLUMNS)
    bind.execute(
        sa.text(
            f"INSERT INTO figures_user_months (user_id, month, {', '.join(MONTH_COLUMNS)})"
            f" SELECT d.user_id, {month}, {sums} FROM figures_user_days d"
            f" GROUP BY d.user_id, {month} HAVING {nonzero}"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_figures_user_months_ranked", table_name="figures_user_months")
    for table in (
        "figures_user_months",
        "tally_subscribers",
        "tally_ends_days",
        "tallies",
        "tally_changes",
    ):
        op.drop_table(table)
