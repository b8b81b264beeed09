"""What every command shares: consoles, errors as one line, settings, the container."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperGroup, TyperOption

from satshare import logs
from satshare.config import ConfigError, Settings, load_settings, secret_values
from satshare.errors import DomainError

if TYPE_CHECKING:
    from typer._click import Command, Context, Parameter  # Typer's own copy of click

    from satshare.container import Container

T = TypeVar("T")

#: Output piped to a file or another program is not cut to 80 columns: a table keeps every
#: character (a terminal still gets its own width).
PIPED_WIDTH = 1_000
out = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err = Console(stderr=True)


class _NamedArgument(TyperArgument):
    """An argument its metavar names (PATH, PAYOUT_ID): shown by that name alone."""

    def display_type_rich(self, ctx: Context) -> str | None:
        return None


def _plain(params: list[Parameter]) -> list[Parameter]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.metavar:
            param.__class__ = _NamedArgument
    return params


class Group(TyperGroup):
    """Every satshare command group (``typer.Typer(cls=Group)``). Typer's help writes a
    parameter's type where its value would go: ``--force <bool>`` and ``--help <bool>`` as
    though a flag took true or false, ``PATH <path>`` beside an argument its metavar names
    already. Here a flag shows no value and such an argument its name alone; every option
    that takes a value names it itself (``metavar="SATS"``; tests/test_cli.py checks)."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _plain(super().get_params(ctx))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain(command.get_params(ctx))
        return command


#: ``--json`` on list commands: one JSON array for scripts instead of a table.
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print a JSON array instead of a table (for scripts).")
]


def print_json(rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows as one JSON array on stdout; times in ISO 8601."""

    def jsonable(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    print(json.dumps(list(rows), default=jsonable, ensure_ascii=False, indent=2))


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """For a command that walks a whole table (``ledger verify``, ``ledger export``): what is
    loaded so far (modules, the container, about a million objects) is set aside from the
    cyclic garbage collector, which otherwise traverses all of it at every full collection
    the walk's allocations trigger: half the CPU time of ``ledger verify``. Given back after."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def progress_bar(
    description: str, *, quiet: bool = False
) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on stderr for a long command, told (done, total) as it goes, gone
    when it ends. None (no bar) when stderr is not a terminal (piped, cron) or ``quiet``
    (``--json``): scripts read only the result."""
    if quiet or not err.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


class State:
    config_path: str | None = None


def fail(message: str, code: int = 2) -> typer.Exit:
    # The message is text, not Rich markup: "psycopg[binary]" or a value the user typed must
    # come out as written (and "[/...]" in one must not raise a MarkupError instead).
    err.print(f"[bold red]satshare:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings() -> Settings:
    try:
        return load_settings(State.config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]satshare:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def configure_logging(cfg: Settings) -> None:
    """Log lines for a long-running process (``serve``, ``worker``): ``log_format`` text or
    JSON lines, with every configured secret redacted."""
    logs.configure(cfg.log_level, cfg.log_format, secrets=secret_values(cfg))
    if cfg.log_level != "debug":
        # Both libraries narrate every migration step and job run at INFO.
        for noisy in ("alembic", "procrastinate"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    # httpx logs every request URL at INFO, and Bot API URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # PTB's limiter (bot/ratelimiter.py builds on it) logs a 429 it gave up on as an error
    # with a traceback; the outbox sender handles it (the message is sent again after
    # retry_after) and logs that itself.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except DomainError as exc:
        raise fail(exc.detail) from None


class ContainerUnavailable(DomainError):
    """The container could not open: the database is unreachable or not ready; the message
    says what to fix."""


@contextlib.asynccontextmanager
async def opened(
    cfg: Settings, *, sync_plans: bool = False, service: bool = False
) -> AsyncIterator[Container]:
    """The container for one command, ready (schema checked) and closed afterwards.

    Only ``serve`` syncs plans from the configuration: an admin command run from a directory
    without the service's satshare.yaml must not take its plans off sale. A command (not
    ``service``) never sends payouts or messages itself: the running service does, as after
    an approval through the API (on PostgreSQL the command queues the job for it). Raises
    ContainerUnavailable (a DomainError: ``run`` prints it as one line) when it cannot open."""
    from satshare.container import Role, StartupError, build_container, prepare
    from satshare.db import sqlite_file
    from satshare.jobqueue import QueueUnavailable

    database_file = sqlite_file(cfg.database.url)
    if database_file is not None and not database_file.is_file():
        # Opening it would create an empty file here (a command run from another directory
        # than the service's), then ask for a migration of that wrong, empty database.
        raise ContainerUnavailable(
            f"there is no SQLite database at {database_file}: run `satshare migrate` to "
            "create it, or run this where your satshare.yaml is (or give --config)"
        )
    try:
        container = build_container(cfg, role=Role.SERVICE if service else Role.COMMAND)
    except QueueUnavailable as exc:
        raise ContainerUnavailable(str(exc)) from None
    try:
        try:
            await prepare(container, sync_plans=sync_plans, resume_sandbox=service)
        except StartupError as exc:
            raise ContainerUnavailable(str(exc)) from None
        except OSError as exc:
            raise ContainerUnavailable(
                f"cannot reach the database ({exc}); check database.url"
            ) from None
        if container.job_queue is not None and not service:
            async with container.job_queue.open_async():
                yield container
                await _settled(container)
        else:
            yield container
    finally:
        await container.aclose()


async def _settled(container: Container) -> None:
    """A command's queued jobs reach the queue before it closes."""
    if container.job_waker is not None:
        await container.job_waker.settle()
