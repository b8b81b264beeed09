"""Backups of the whole database and their restore (``satshare backup`` / ``restore``).

SQLite: the online backup API of Python's sqlite3 module copies a consistent snapshot
while SatShare keeps running (WAL readers and writers go on). PostgreSQL: ``pg_dump`` in
its custom format (one consistent snapshot, compressed) and ``pg_restore``; PostgreSQL's
own tools are the only ones that dump every object (the ledger's append-only triggers
included), so nothing here re-implements them. The connection goes to them through the
libpq environment (PGHOST, PGPASSWORD, ...), never on the command line, where other users
of the machine could read the password.

A restore refuses a database that holds data (any row besides the schema revision) unless
``force``: then the schema is dropped first. Every refusal is a ``BackupError`` whose
message is one line naming the fix.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from satshare.db import Database, is_sqlite, sqlite_file

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
#: Tables whose rows do not make a database "hold data": a freshly migrated one has them.
SCHEMA_ONLY_TABLES = frozenset({"alembic_version"})


class BackupError(Exception):
    """Something the operator must fix; the message is one line and says how."""


@dataclass(frozen=True, slots=True)
class Done:
    kind: str  # "sqlite" or "postgresql"
    path: Path
    size: int


def backup(url: str, path: Path) -> Done:
    """Write a consistent copy of the database at ``url`` to ``path`` (replaced atomically
    if it exists, so a half-written file never takes a good backup's name)."""
    path = path.expanduser()
    if path.is_dir():
        raise BackupError(f"{path} is a directory; give a file name, e.g. {path}/satshare.bak")
    if not path.parent.is_dir():
        raise BackupError(f"the directory {path.parent} does not exist; create it first")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        if is_sqlite(url):
            _sqlite_backup(_sqlite_file(url, must_exist=True), Path(temporary))
            kind = "sqlite"
        else:
            _run(
                ["pg_dump", "--format=custom", "--no-owner", f"--file={temporary}"],
                url,
                "pg_dump",
            )
            kind = "postgresql"
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return Done(kind, path, path.stat().st_size)


def restore(url: str, path: Path, *, force: bool = False) -> Done:
    """Replace the database at ``url`` with the backup at ``path``."""
    path = path.expanduser()
    kind = _kind_of(path)
    wanted = "sqlite" if is_sqlite(url) else "postgresql"
    if kind != wanted:
        raise BackupError(
            f"{path} is a {_NAMES[kind]} backup but database.url points to {_NAMES[wanted]}; "
            "restore it into a database of the same kind"
        )
    if kind == "sqlite":
        _check_sqlite_backup(path)
        target = _sqlite_file(url, must_exist=False)
        if target.exists():
            holding = _sqlite_tables_with_rows(target)
            _refuse_unless_forced(holding, force)
        _sqlite_backup(path, target)
    else:
        _run(["pg_restore", "--list", str(path)], url, "pg_restore", connect=False)
        asyncio.run(_empty_postgres(url, force))
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={_libpq_url(url)}",
                str(path),
            ],
            url,
            "pg_restore",
        )
    return Done(kind, path, path.stat().st_size)


_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _kind_of(path: Path) -> str:
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file")
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a SatShare backup (neither SQLite nor pg_dump's format)")


def _refuse_unless_forced(holding: list[str], force: bool) -> None:
    if holding and not force:
        shown = ", ".join(holding[:3]) + (", ..." if len(holding) > 3 else "")
        raise BackupError(
            f"the database already holds data (tables {shown}); restore into an empty "
            "database, or add --force to replace everything in it"
        )


# -- SQLite -----------------------------------------------------------------------------


def _sqlite_file(url: str, *, must_exist: bool) -> Path:
    path = sqlite_file(url)
    if path is None:
        raise BackupError("database.url is an in-memory SQLite database: nothing to back up")
    if must_exist and not path.is_file():
        raise BackupError(f"the SQLite database {path} does not exist; check database.url")
    return path


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy page by page, writers may go on."""
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite could not copy {source} to {target}: {exc}") from None


def _check_sqlite_backup(path: Path) -> None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be read as an SQLite database: {exc}") from None
    if found is None:
        raise BackupError(f"{path} is an SQLite file but not a SatShare database")


def _sqlite_tables_with_rows(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return [
            table
            for table in tables
            if table not in SCHEMA_ONLY_TABLES
            and db.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")').fetchone()[0]
        ]


# -- PostgreSQL -------------------------------------------------------------------------


async def _empty_postgres(url: str, force: bool) -> None:
    """Leave the public schema empty for pg_restore: refused when it holds data (unless
    forced); a schema without data (e.g. just migrated) is simply dropped."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            tables = [
                str(name)
                for name in (
                    await conn.execute(
                        text(
                            "SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' "
                            "ORDER BY table_name"
                        )
                    )
                ).scalars()
            ]
            holding = [
                table
                for table in tables
                if table not in SCHEMA_ONLY_TABLES
                and (await conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{table}")'))).scalar()
            ]
            _refuse_unless_forced(holding, force)
            if tables:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
    except OSError as exc:
        raise BackupError(f"cannot reach the database ({exc}); check database.url") from None
    finally:
        await db.dispose()


def _libpq_url(url: str) -> str:
    """The URL libpq understands (no SQLAlchemy driver, no password: that goes in the
    environment)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql", password=None, query={}).render_as_string(
        hide_password=False
    )


def _libpq_env(url: str) -> dict[str, str]:
    parsed = make_url(url)
    env = dict(os.environ)
    values = {
        "PGHOST": parsed.host,
        "PGPORT": str(parsed.port) if parsed.port else None,
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
        # asyncpg's ?ssl=require is libpq's sslmode.
        "PGSSLMODE": parsed.query.get("sslmode") or parsed.query.get("ssl"),
    }
    env.update({k: str(v) for k, v in values.items() if v})
    return env


def _run(command: list[str], url: str, tool: str, *, connect: bool = True) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(
            f"{tool} is not installed; it comes with the PostgreSQL client tools "
            "(Debian/Ubuntu: apt install postgresql-client, of the server's major version)"
        )
    result = subprocess.run(  # noqa: S603 - PostgreSQL's own tool, no shell
        command,
        env=_libpq_env(url) if connect else dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise BackupError(f"{tool} failed: {reason.removeprefix(f'{tool}: ')}")
