"""the ledger's figures: per-day and per-user sums kept by the sealer, built from the history

Revision ID: 0016_f_figures
Revises: 0014
Create Date: 2026-12-01 10:00:00.000000

The tables of ``satshare.ledger.figures`` (sums of the sealed entries, per day, per user and
day, per user, per referred buyer), who bought each sale entry (``ledger_sale_buyers``, from
the payments), the referral counts per user (registrations and link clicks), and an index
for an affiliate's sales in a time range. The upgrade fills them from the existing history
in SQL, with the same definitions as the sealer's fold (``ledger/figures/fold.py``), whose
result a test compares with this backfill's; ``satshare figures rebuild`` refolds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0016_f_figures"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTER = sa.BigInteger()
RANKED = (
    "referral_value_sats",
    "referral_paying",
    "referral_value_7d",
    "referral_value_30d",
    "referral_buyers_7d",
    "referral_buyers_30d",
    "earned_sats",
    "earned_1d",
    "earned_7d",
    "earned_30d",
)
USER_COLUMNS = (
    "balance_sats",
    "earned_sats",
    "owed_sats",
    "commissions",
    "referred_sales_sats",
    "clawed_back_sats",
    "paid_out_sats",
    "referral_paying",
    "referral_sales_sats",
    "referral_value_sats",
    "referral_value_7d",
    "referral_value_30d",
    "referral_buyers_7d",
    "referral_buyers_30d",
    "earned_1d",
    "earned_7d",
    "earned_30d",
    "commissions_1d",
    "commissions_7d",
    "commissions_30d",
    "referred_sales_1d",
    "referred_sales_7d",
    "referred_sales_30d",
)
USER_DAY_COLUMNS = (
    "referred_sales_sats",
    "commissions",
    "earned_sats",
    "clawed_back_sats",
    "earning_postings",
    "paid_out_sats",
    "owed_delta_sats",
    "unrefunded_commission_sats",
    "referral_value_sats",
)
DAY_COLUMNS = (
    "new_payments",
    "renewals",
    "paid_registrations",
    "entries",
    "sales",
    "refunds",
    "gross_sats",
    "owner_share_sats",
    "affiliate_share_sats",
    "stars_received",
    "paid_out_sats",
    "owed_delta_sats",
)


def _counters(names: Sequence[str]) -> list[sa.Column[int]]:
    return [sa.Column(name, COUNTER, nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "ledger_sale_buyers",
        sa.Column(
            "entry_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey(
                "ledger_entries.id", name="fk_ledger_sale_buyers_entry_id_ledger_entries"
            ),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("buyer_user_id", sa.BigInteger(), nullable=False),
        sa.Column("referrer_user_id", sa.BigInteger(), nullable=True),
        sa.Column("renewal", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index("ix_ledger_sale_buyers_buyer", "ledger_sale_buyers", ["buyer_user_id"])
    op.create_table(
        "figures_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("rolled_day", sa.Date(), nullable=True),
    )
    op.create_table(
        "figures_days",
        sa.Column("day", sa.Date(), primary_key=True),
        *_counters(DAY_COLUMNS),
    )
    op.create_table(
        "figures_user_days",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("day", sa.Date(), primary_key=True),
        *_counters(USER_DAY_COLUMNS),
    )
    op.create_table(
        "figures_users",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *_counters(USER_COLUMNS),
    )
    for column in RANKED:
        op.create_index(
            f"ix_figures_users_{column}", "figures_users", [sa.text(f"{column} DESC"), "user_id"]
        )
    op.create_table(
        "figures_buyer_days",
        sa.Column("buyer_user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("payments", COUNTER, nullable=False),
    )
    op.create_table(
        "figures_buyers",
        sa.Column("buyer_user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("referrer_user_id", sa.BigInteger(), nullable=True),
        sa.Column("sales", COUNTER, nullable=False),
        sa.Column("payments", COUNTER, nullable=False),
        sa.Column("last_day", sa.Date(), nullable=True),
    )
    op.create_index("ix_figures_buyers_last_day", "figures_buyers", ["last_day"])
    op.create_table(
        "referral_counts",
        sa.Column(
            "user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("users.id", name="fk_referral_counts_user_id_users", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("registered", COUNTER, nullable=False),
        sa.Column("clicks", COUNTER, nullable=False),
    )
    op.create_index(
        "ix_ledger_entries_affiliate_created",
        "ledger_entries",
        ["affiliate_user_id", "created_at"],
    )
    op.create_index("ix_users_created_at", "users", ["created_at"])
    op.create_index("ix_referral_clicks_created_at", "referral_clicks", ["created_at"])
    paid = sa.text("started_at IS NOT NULL")
    op.create_index(
        "ix_subscriptions_ends_at",
        "subscriptions",
        ["ends_at"],
        postgresql_where=paid,
        sqlite_where=paid,
    )
    op.add_column(
        "subscriptions",
        sa.Column("payments", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("subscriptions", sa.Column("last_paid_sats", sa.BigInteger(), nullable=True))
    _backfill()


# -- the backfill: the fold's definitions, over the whole history at once ---------------------

SALES = "('sale', 'stars_sale')"
PAYOUTS = "('payout_hold', 'payout', 'payout_release')"


def _backfill() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"

    def day(column: str) -> str:
        return f"(({column}) AT TIME ZONE 'UTC')::date" if postgres else f"date({column})"

    def sealed(alias: str) -> str:
        return f"{alias}.id NOT IN (SELECT entry_id FROM ledger_seal_queue)"

    def refunded(alias: str) -> str:
        """A reversal of the entry, itself sealed (an unsealed one is the sealer's to fold)."""
        return (
            f"EXISTS (SELECT 1 FROM ledger_entries rv WHERE rv.reverses_entry_id = {alias}.id"
            f" AND {sealed('rv')})"
        )

    affiliate = "(a.user_id IS NOT NULL AND a.code = 'payable:affiliate:' || a.user_id)"
    today = datetime.now(UTC).date()
    # asyncpg takes dates as dates; SQLite stores and compares them as ISO text.
    edges = {
        f"e{n}": (today - timedelta(days=n))
        if postgres
        else (today - timedelta(days=n)).isoformat()
        for n in (1, 7, 30)
    }
    edge = {n: f":e{n}" for n in (1, 7, 30)}

    # A renewal: its subscription had a payment settled before it (in id order: settlements
    # of one subscription take turns on its row).
    bind.execute(
        sa.text(
            "INSERT INTO ledger_sale_buyers (entry_id, buyer_user_id, referrer_user_id, renewal)"
            " SELECT p.ledger_entry_id, p.user_id, u.referrer_id, rank() OVER (PARTITION BY"
            " i.subscription_id ORDER BY p.id) > 1 FROM payments p"
            " JOIN invoices i ON i.id = p.invoice_id JOIN users u ON u.id = p.user_id"
            f" JOIN ledger_entries e ON e.id = p.ledger_entry_id WHERE e.kind IN {SALES}"
        )
    )
    _subscriptions(bind, postgres)
    bind.execute(
        sa.text(
            "INSERT INTO figures_buyer_days (buyer_user_id, day, payments) "
            f"SELECT b.buyer_user_id, {day('e.created_at')}, count(*) FROM ledger_entries e"
            " JOIN ledger_sale_buyers b ON b.entry_id = e.id"
            f" WHERE b.referrer_user_id IS NOT NULL AND e.kind IN {SALES} AND {sealed('e')}"
            f" AND NOT {refunded('e')} GROUP BY b.buyer_user_id, {day('e.created_at')}"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO figures_buyers"
            " (buyer_user_id, referrer_user_id, sales, payments, last_day)"
            " SELECT b.buyer_user_id, max(b.referrer_user_id), count(*),"
            " coalesce((SELECT sum(d.payments) FROM figures_buyer_days d"
            "  WHERE d.buyer_user_id = b.buyer_user_id), 0),"
            " (SELECT max(d.day) FROM figures_buyer_days d"
            "  WHERE d.buyer_user_id = b.buyer_user_id AND d.payments > 0)"
            " FROM ledger_sale_buyers b JOIN ledger_entries e ON e.id = b.entry_id"
            f" WHERE e.kind IN {SALES} AND {sealed('e')} GROUP BY b.buyer_user_id"
        )
    )

    bind.execute(
        sa.text(
            f"INSERT INTO figures_days (day, {', '.join(DAY_COLUMNS)}) "
            f"SELECT day, {', '.join(f'sum({c})' for c in DAY_COLUMNS)} FROM ("
            f"  SELECT {day('e.created_at')} AS day,"
            f"   CASE WHEN b.entry_id IS NOT NULL AND e.kind IN {SALES} AND NOT b.renewal"
            "    THEN 1 ELSE 0 END AS new_payments,"
            f"   CASE WHEN b.entry_id IS NOT NULL AND e.kind IN {SALES} AND b.renewal"
            "    THEN 1 ELSE 0 END AS renewals,"
            "   0 AS paid_registrations, 1 AS entries,"
            f"   CASE WHEN e.kind IN {SALES} THEN 1 ELSE 0 END AS sales,"
            f"   CASE WHEN e.kind NOT IN {SALES} AND o.kind IN {SALES} THEN 1 ELSE 0 END"
            "      AS refunds,"
            "   CASE WHEN e.kind = 'sale' THEN coalesce(e.gross_sats, 0)"
            f"    WHEN e.kind NOT IN {SALES} AND o.kind = 'sale'"
            "     THEN -coalesce(o.gross_sats, 0) ELSE 0 END AS gross_sats,"
            "   0 AS owner_share_sats, 0 AS affiliate_share_sats, 0 AS stars_received,"
            "   0 AS paid_out_sats, 0 AS owed_delta_sats"
            "  FROM ledger_entries e LEFT JOIN ledger_entries o ON o.id = e.reverses_entry_id"
            "  LEFT JOIN ledger_sale_buyers b ON b.entry_id = e.id"
            f"  WHERE {sealed('e')}"
            "  UNION ALL"
            f"  SELECT {day('e.created_at')}, 0, 0, 0, 0, 0, 0, 0,"
            "   CASE WHEN a.code = 'revenue:owner' THEN -p.amount_sats ELSE 0 END,"
            f"   CASE WHEN {affiliate} AND e.kind NOT IN {PAYOUTS} THEN -p.amount_sats ELSE 0"
            "    END,"
            "   CASE WHEN a.code = 'revenue:xtr' THEN -p.amount_sats ELSE 0 END,"
            "   CASE WHEN a.code = 'payable:payouts' AND e.kind = 'payout' THEN p.amount_sats"
            "    ELSE 0 END,"
            f"   CASE WHEN {affiliate} OR (a.code = 'payable:payouts'"
            "    AND e.affiliate_user_id IS NOT NULL) THEN -p.amount_sats ELSE 0 END"
            "  FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id"
            "  JOIN ledger_accounts a ON a.id = p.account_id"
            f"  WHERE {sealed('e')}"
            "  UNION ALL"
            f"  SELECT {day('u.created_at')}, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0"
            "  FROM figures_buyers f JOIN users u ON u.id = f.buyer_user_id WHERE f.sales > 0"
            ") t GROUP BY day"
        )
    )
    zeros = {c: "0" for c in USER_DAY_COLUMNS}

    def user_day_part(user: str, values: dict[str, str], source: str) -> str:
        columns = ", ".join(f"{values.get(c, zeros[c])} AS {c}" for c in USER_DAY_COLUMNS)
        return f"SELECT {user} AS user_id, {day('e.created_at')} AS day, {columns} {source}"

    parts = [
        user_day_part(
            "e.affiliate_user_id",
            {"referred_sales_sats": "coalesce(e.gross_sats, 0)"},
            f"FROM ledger_entries e WHERE e.kind IN {SALES} AND e.affiliate_user_id IS NOT NULL"
            f" AND {sealed('e')}",
        ),
        user_day_part(
            "a.user_id",
            {
                "commissions": f"CASE WHEN e.kind IN {SALES} THEN 1 ELSE 0 END",
                "earned_sats": f"CASE WHEN e.kind NOT IN {PAYOUTS} THEN -p.amount_sats ELSE 0 END",
                "clawed_back_sats": f"CASE WHEN e.kind NOT IN {PAYOUTS} AND e.kind NOT IN"
                f" {SALES} AND p.amount_sats > 0 THEN p.amount_sats ELSE 0 END",
                "earning_postings": f"CASE WHEN e.kind NOT IN {PAYOUTS} THEN 1 ELSE 0 END",
                "owed_delta_sats": "-p.amount_sats",
                "unrefunded_commission_sats": f"CASE WHEN e.kind IN {SALES} AND p.amount_sats < 0"
                f" AND NOT {refunded('e')} THEN -p.amount_sats ELSE 0 END",
            },
            "FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id"
            f" JOIN ledger_accounts a ON a.id = p.account_id WHERE {affiliate} AND {sealed('e')}",
        ),
        user_day_part(
            "e.affiliate_user_id",
            {
                "paid_out_sats": "CASE WHEN e.kind = 'payout' THEN p.amount_sats ELSE 0 END",
                "owed_delta_sats": "-p.amount_sats",
            },
            "FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id"
            " JOIN ledger_accounts a ON a.id = p.account_id WHERE a.code = 'payable:payouts'"
            f" AND e.affiliate_user_id IS NOT NULL AND {sealed('e')}",
        ),
        user_day_part(
            "b.referrer_user_id",
            {"referral_value_sats": "coalesce(e.gross_sats, 0)"},
            "FROM ledger_entries e JOIN ledger_sale_buyers b ON b.entry_id = e.id"
            f" WHERE b.referrer_user_id IS NOT NULL AND e.kind IN {SALES} AND {sealed('e')}"
            f" AND NOT {refunded('e')}",
        ),
    ]
    bind.execute(
        sa.text(
            f"INSERT INTO figures_user_days (user_id, day, {', '.join(USER_DAY_COLUMNS)}) "
            f"SELECT user_id, day, {', '.join(f'sum({c})' for c in USER_DAY_COLUMNS)} FROM ("
            + " UNION ALL ".join(parts)
            + ") t GROUP BY user_id, day"
        )
    )
    user_zeros = {c: "0" for c in USER_COLUMNS}

    def user_part(user: str, values: dict[str, str], source: str) -> str:
        columns = ", ".join(f"{values.get(c, user_zeros[c])} AS {c}" for c in USER_COLUMNS)
        return f"SELECT {user} AS user_id, {columns} {source}"

    def windowed(column: str, n: int) -> str:
        return f"CASE WHEN day > {edge[n]} THEN {column} ELSE 0 END"

    users = [
        user_part(
            "user_id",
            {
                "earned_sats": "earned_sats",
                "owed_sats": "owed_delta_sats",
                "commissions": "commissions",
                "referred_sales_sats": "referred_sales_sats",
                "clawed_back_sats": "clawed_back_sats",
                "paid_out_sats": "paid_out_sats",
                "referral_value_sats": "referral_value_sats",
                "referral_value_7d": windowed("referral_value_sats", 7),
                "referral_value_30d": windowed("referral_value_sats", 30),
                **{
                    f"{name}_{n}d": windowed(source, n)
                    for name, source in (
                        ("earned", "earned_sats"),
                        ("commissions", "commissions"),
                        ("referred_sales", "referred_sales_sats"),
                    )
                    for n in (1, 7, 30)
                },
            },
            "FROM figures_user_days",
        ),
        user_part(
            "a.user_id",
            {"balance_sats": "-p.amount_sats"},
            "FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id"
            f" WHERE {affiliate} AND p.entry_id NOT IN (SELECT entry_id FROM ledger_seal_queue)",
        ),
        user_part(
            "referrer_user_id",
            {
                "referral_paying": "CASE WHEN payments > 0 THEN 1 ELSE 0 END",
                **{
                    f"referral_buyers_{n}d": f"CASE WHEN payments > 0 AND last_day > {edge[n]}"
                    " THEN 1 ELSE 0 END"
                    for n in (7, 30)
                },
            },
            "FROM figures_buyers WHERE referrer_user_id IS NOT NULL",
        ),
        user_part(
            "b.referrer_user_id",
            {"referral_sales_sats": "coalesce(e.gross_sats, 0)"},
            "FROM ledger_entries e JOIN ledger_sale_buyers b ON b.entry_id = e.id"
            f" WHERE b.referrer_user_id IS NOT NULL AND e.kind = 'sale' AND {sealed('e')}"
            f" AND NOT {refunded('e')}",
        ),
    ]
    bind.execute(
        sa.text(
            f"INSERT INTO figures_users (user_id, {', '.join(USER_COLUMNS)}) "
            f"SELECT user_id, {', '.join(f'sum({c})' for c in USER_COLUMNS)} FROM ("
            + " UNION ALL ".join(users)
            + ") t GROUP BY user_id"
        ),
        edges,
    )
    bind.execute(
        sa.text("INSERT INTO figures_state (id, version, rolled_day) VALUES (1, 1, :today)"),
        {"today": today if postgres else today.isoformat()},
    )
    bind.execute(
        sa.text(
            "INSERT INTO referral_counts (user_id, registered, clicks) "
            "SELECT user_id, sum(registered), sum(clicks) FROM ("
            "  SELECT referrer_id AS user_id, 1 AS registered, 0 AS clicks FROM users"
            "  WHERE referrer_id IS NOT NULL"
            "  UNION ALL SELECT affiliate_user_id, 0, 1 FROM referral_clicks"
            ") t GROUP BY user_id"
        )
    )


def _subscriptions(bind: sa.engine.Connection, postgres: bool) -> None:
    """Each subscription's payments so far and its last bitcoin payment's amount."""
    paid = "SELECT i.subscription_id, {what} FROM payments p JOIN invoices i ON i.id = p.invoice_id"
    if postgres:
        bind.execute(
            sa.text(
                "UPDATE subscriptions s SET payments = t.n FROM ("
                + paid.format(what="count(*) AS n")
                + " GROUP BY i.subscription_id) t WHERE t.subscription_id = s.id"
            )
        )
        bind.execute(
            sa.text(
                "UPDATE subscriptions s SET last_paid_sats = t.amount FROM ("
                + paid.format(what="i.amount_sats AS amount").replace(
                    "SELECT", "SELECT DISTINCT ON (i.subscription_id)", 1
                )
                + " WHERE i.currency = 'SAT' ORDER BY i.subscription_id, p.id DESC) t"
                " WHERE t.subscription_id = s.id"
            )
        )
        return
    bind.execute(
        sa.text(
            "UPDATE subscriptions SET payments = (SELECT count(*) FROM payments p"
            " JOIN invoices i ON i.id = p.invoice_id WHERE i.subscription_id = subscriptions.id),"
            " last_paid_sats = (SELECT i.amount_sats FROM payments p"
            " JOIN invoices i ON i.id = p.invoice_id WHERE i.subscription_id = subscriptions.id"
            " AND i.currency = 'SAT' ORDER BY p.id DESC LIMIT 1)"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_ends_at", table_name="subscriptions")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would
    # trip the invoices' foreign key to it.
    op.drop_column("subscriptions", "last_paid_sats")
    op.drop_column("subscriptions", "payments")
    op.drop_index("ix_referral_clicks_created_at", table_name="referral_clicks")
    op.drop_index("ix_users_created_at", table_name="users")
    op.drop_index("ix_ledger_entries_affiliate_created", table_name="ledger_entries")
    for table in (
        "referral_counts",
        "figures_buyers",
        "figures_buyer_days",
        "figures_users",
        "figures_user_days",
        "figures_days",
        "figures_state",
        "ledger_sale_buyers",
    ):
        op.drop_table(table)
