"""Run Alembic migrations from code (``satshare migrate``, start-up checks, tests).

Alembic itself is imported only to migrate: every start of ``serve`` and every ``/ready``
checks the schema revision, and loading Alembic (with Mako and Pygments) for that cost
about 8 MiB of resident memory and 0.3 s per start (#15). The check reads the head from
the migration scripts' own ``revision``/``down_revision`` lines and the database's revision
from Alembic's version table; a test compares both with Alembic's answers.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import column as sql_column
from sqlalchemy import inspect, select, table
from sqlalchemy.engine import Connection

from satshare.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

#: Tables another library owns in our database: procrastinate's job queue (migration 0015
#: applies its schema). Autogenerate and the schema comparison leave them alone.
FOREIGN_TABLE_PREFIXES = ("procrastinate_",)
VERSIONS = Path(__file__).parent / "migrations" / "versions"
#: Alembic's own table: one row, the revision the database is at.
_VERSION_TABLE = table("alembic_version", sql_column("version_num"))


def ours(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: compare only SatShare's own tables."""
    return not (type_ == "table" and name is not None and name.startswith(FOREIGN_TABLE_PREFIXES))


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "satshare:migrations")
    return config


@functools.cache
def head_revision() -> str:
    """The revision the code needs: the one no migration script revises. Read from the
    scripts' module-level ``revision`` and ``down_revision`` assignments without running
    them; anything but one plain chain (branches, merges) is left to Alembic."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        values = _assignments(path, ("revision", "down_revision"))
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            return _alembic_head()
        revisions.add(revision)
        if down is not None:
            revised.add(down)
    heads = revisions - revised
    if len(heads) != 1:
        return _alembic_head()
    return heads.pop()


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The literal values assigned to ``names`` at a script's top level."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets: list[ast.expr]
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names:
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError:
                    found[target.id] = value  # not a literal: Alembic decides
    return found


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(database: Database, revision: str = "head") -> None:
    from alembic import command

    def _run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(_run)


async def current_revision(database: Database) -> str | None:
    """The revision Alembic recorded in the database; None before the first migration."""

    def _read(connection: Connection) -> str | None:
        if not inspect(connection).has_table(_VERSION_TABLE.name):
            return None
        versions = connection.execute(select(_VERSION_TABLE.c.version_num)).scalars().all()
        # One row on a plain chain; several would be branches, which no head matches.
        return ",".join(sorted(versions)) or None

    async with database.engine.connect() as connection:
        return await connection.run_sync(_read)
