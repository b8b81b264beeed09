"""the index the purge of old outgoing-webhook messages reads

Revision ID: 0018_webhook_purge
Revises: 0017_dash_tallies
Create Date: 2026-12-01 05:30:00.000000

The hourly housekeeping deletes messages older than ``webhooks.keep_days`` whose deliveries
are all done (their deliveries and attempts go with them, by the foreign keys' cascade).
Finding a message's deliveries needs an index on ``webhook_deliveries.message_id``: the
unique one starts with ``endpoint_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018_webhook_purge"
down_revision: str | None = "0017_dash_tallies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_message_id", "webhook_deliveries", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_message_id", table_name="webhook_deliveries")
