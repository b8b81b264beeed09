"""``satshare backup PATH`` and ``satshare restore PATH [--force]`` (see satshare.backups
and docs/operations.md for a schedule)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from satshare.cli.common import fail, out, settings
from satshare.config import redact_url


def backup(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="File to write (replaced if it exists).")
    ],
) -> None:
    """Back up the whole database to PATH while SatShare runs (SQLite: online backup;
    PostgreSQL: pg_dump custom format)."""
    from satshare import backups

    cfg = settings()
    try:
        done = backups.backup(cfg.database.url, path)
    except backups.BackupError as exc:
        raise fail(str(exc), code=1) from None
    out.print(
        f"Backed up the {done.kind} database to {escape(str(done.path))} ({done.size:,} bytes).",
        highlight=False,
    )


def restore(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="A file written by `satshare backup`.")
    ],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a database that already holds data."),
    ] = False,
) -> None:
    """Restore PATH into the configured database (stop SatShare first). Refuses a database
    that holds data unless --force."""
    from satshare import backups

    cfg = settings()
    try:
        done = backups.restore(cfg.database.url, path, force=force)
    except backups.BackupError as exc:
        raise fail(str(exc), code=1) from None
    out.print(
        f"Restored {done.path} into {redact_url(cfg.database.url)}. Next: `satshare migrate` "
        "(if this SatShare is newer than the backup), then `satshare ledger verify`."
    )
