"""the job queue (procrastinate's schema, PostgreSQL only)

Revision ID: 0015
Revises: 0011
Create Date: 2026-11-30 06:00:00.000000

On PostgreSQL the background jobs run on procrastinate's queue, shared by every ``serve``
and ``satshare worker`` process; its tables, types and functions are procrastinate's own
schema, applied here so that ``satshare migrate`` creates everything. SQLite runs the same
jobs in-process and needs no schema. A later procrastinate upgrade that changes its schema
comes with a migration of ours applying procrastinate's migration files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0015"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Everything the schema creates, dropped in reverse on downgrade.
TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)


def _run_script(sql: str) -> None:
    """A multi-statement script through asyncpg's simple-query protocol: SQLAlchemy's
    asyncpg adapter prepares every statement, and a prepared statement holds one command."""
    adapted: Any = op.get_bind().connection.dbapi_connection
    adapted.run_async(lambda raw: raw.execute(sql))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _run_script(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _run_script(
        "".join(f"DROP TABLE IF EXISTS {table} CASCADE;\n" for table in TABLES)
        + """
        DO $$
        DECLARE routine record;
        BEGIN
            FOR routine IN
                SELECT oid::regprocedure AS signature FROM pg_proc
                WHERE proname LIKE 'procrastinate\\_%'
            LOOP
                EXECUTE 'DROP FUNCTION ' || routine.signature || ' CASCADE';
            END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1 CASCADE;
        DROP TYPE IF EXISTS procrastinate_job_event_type CASCADE;
        DROP TYPE IF EXISTS procrastinate_job_status CASCADE;
        """
    )
