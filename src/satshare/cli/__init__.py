"""Command line: serve | migrate | config check | api-key | ledger | figures | payout |
affiliate | admin | worker | backup | restore | sim.

A composition root: it may import everything (the container, the API, the bot, the jobs,
the emulators); its commands call use cases (``flows``) and open no unit of work themselves
(see ``tests/test_architecture.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sys
import tempfile
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel, SecretStr
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from satshare import __version__
from satshare.cli import backup as backup_commands
from satshare.cli.admin import admin_app
from satshare.cli.affiliates import affiliate_app
from satshare.cli.audit import audited
from satshare.cli.broadcasts import broadcast_app
from satshare.cli.common import (
    ContainerUnavailable,
    Group,
    JsonOption,
    State,
    configure_logging,
    err,
    fail,
    frozen_heap,
    opened,
    out,
    print_json,
    progress_bar,
    run,
    settings,
)
from satshare.cli.figures import figures_app
from satshare.cli.payouts import payout_app
from satshare.cli.worker import worker_command
from satshare.config import PlanSettings, Settings, redact_url

if TYPE_CHECKING:
    from satshare.container import Container

app = typer.Typer(
    cls=Group,
    name="satshare",
    help="SatShare: Telegram channel subscriptions for bitcoin, split with affiliates.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
config_app = typer.Typer(cls=Group, help="Configuration tools.", no_args_is_help=True)
api_key_app = typer.Typer(cls=Group, help="Manage API keys.", no_args_is_help=True)
ledger_app = typer.Typer(cls=Group, help="Ledger tools.", no_args_is_help=True)
sim_app = typer.Typer(cls=Group, help="Run the local emulators on their own.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(api_key_app, name="api-key")
app.add_typer(ledger_app, name="ledger")
app.add_typer(figures_app, name="figures")
app.add_typer(sim_app, name="sim")
app.add_typer(payout_app, name="payout")
app.add_typer(affiliate_app, name="affiliate")
app.command("backup")(backup_commands.backup)
app.command("restore")(backup_commands.restore)
app.add_typer(admin_app, name="admin")
app.add_typer(broadcast_app, name="broadcast")
app.command("worker")(worker_command)

SANDBOX_PLANS = [
    PlanSettings(
        id="demo-monthly",
        title="Demo channel, 30 days",
        description="Sandbox plan: a private channel for 30 days.",
        price_sats=10_000,
        duration_days=30,
        channels=[-1001000000001],
    ),
    PlanSettings(
        id="demo-yearly",
        title="Demo channel, 365 days",
        description="Sandbox plan: a private channel for a year.",
        price_sats=100_000,
        duration_days=365,
        channels=[-1001000000001],
    ),
]


@app.callback()
def main_callback(
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            metavar="PATH",
            help="Path to satshare.yaml (default: $SATSHARE_CONFIG, then ./satshare.yaml).",
        ),
    ] = None,
) -> None:
    State.config_path = config


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema to the latest revision."""
    from satshare import migrate
    from satshare.db import Database

    cfg = settings()

    async def go() -> tuple[str | None, str | None]:
        db = Database(cfg.database.url)
        try:
            before = await migrate.current_revision(db)
            await migrate.upgrade(db)
            return before, await migrate.current_revision(db)
        finally:
            await db.dispose()

    try:
        before, after = run(go())
    except OSError as exc:
        raise fail(f"cannot reach the database ({exc}); check database.url") from None
    if before == after:
        out.print(f"Database is up to date (revision {after}).")
    else:
        out.print(f"Database migrated from {before or 'empty'} to revision {after}.")


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration and print every setting SatShare would run with (secrets
    masked, passwords in URLs hidden)."""
    cfg = settings()
    # In sandbox mode, what serve runs with: the emulators as processors, its payout choices
    # and demo plans, each marked (the configuration alone would show the unset values).
    configured, sandboxed = cfg, False
    if cfg.sandbox_mode:
        from satshare.sandbox import preview

        cfg, sandboxed = preview(cfg), True
        if not cfg.plans:
            cfg.plans = list(SANDBOX_PLANS)
    table = Table(title="SatShare configuration", show_header=False)
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("mode", "[yellow]sandbox[/] (no processor configured)" if sandboxed else "live")
    mark = " [yellow](sandbox)[/]"
    made_at_start = _made_at_start(configured) if sandboxed else set()
    for name in type(cfg).model_fields:
        value = getattr(cfg, name)
        if name == "plans":
            continue
        if isinstance(value, BaseModel):
            given = getattr(configured, name)
            for key, item in value:
                if f"{name}.{key}" in made_at_start:
                    table.add_row(f"{name}.{key}", "[dim]made at each start[/]" + mark)
                    continue
                changed = sandboxed and getattr(given, key) != item
                table.add_row(f"{name}.{key}", _shown(key, item) + (mark if changed else ""))
        else:
            table.add_row(name, _shown(name, value))
    out.print(table)
    demo = sandboxed and not configured.plans
    plans = Table(title="Plans (the sandbox's demo plans)" if demo else "Plans", show_header=True)
    for column in ("id", "price", "days", "channels", "rails"):
        plans.add_column(column, overflow="fold")
    for plan in cfg.plans:
        plans.add_row(
            escape(plan.id),
            _price(plan),
            str(plan.duration_days),
            ", ".join(str(c) for c in plan.channels) or "[yellow]none[/]",
            ", ".join(plan.providers) if plan.providers else "every enabled rail",
        )
    if cfg.plans:
        out.print(plans)
    else:
        out.print("Plans: none (add plans: to satshare.yaml)")
    for notice in configured.notices():
        out.print(f"[yellow]note:[/] {escape(notice)}", highlight=False, soft_wrap=True)
    out.print("[green]Configuration is valid.[/]")


def _made_at_start(configured: Settings) -> set[str]:
    """The secrets sandbox mode makes at each start (``sandbox.start_sandbox``): ``config
    check`` says so rather than showing them unset."""
    made = {"btcpay.api_key", "btcpay.webhook_secret"}
    if configured.telegram_sandbox:  # no token of one's own: the sandbox bot's
        made.add("telegram.token")
    return made


#: Longer texts (terms, welcome texts) are cut in ``config check``: it lists settings.
LONG_TEXT = 60


def _shown(key: str, value: object) -> str:
    """A setting's value for ``config check``: secrets never, URLs without passwords."""
    if isinstance(value, SecretStr):
        return "[dim]set (hidden)[/]" if value.get_secret_value() else "[dim]empty[/]"
    if value is None:
        return "[dim]—[/]"
    if isinstance(value, str) and key.endswith("url"):
        return escape(redact_url(value))
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return escape(value[:LONG_TEXT].rstrip()) + f"… [dim]({len(value)} characters)[/]"
    if isinstance(value, BaseModel):
        return escape(", ".join(f"{k}={_plain(v)}" for k, v in value))
    if isinstance(value, list):
        return escape(", ".join(_plain(v) for v in value)) or "[dim]none[/]"
    if isinstance(value, dict):
        return escape(", ".join(f"{k}={_plain(v)}" for k, v in value.items())) or "[dim]none[/]"
    return escape(str(value))


def _plain(value: object) -> str:
    if isinstance(value, SecretStr):
        return "(hidden)"
    if isinstance(value, BaseModel):
        return "{" + ", ".join(f"{k}={_plain(v)}" for k, v in value) + "}"
    return str(value)


def _price(plan: PlanSettings) -> str:
    if plan.price is not None:
        return f"{plan.price.amount} {plan.price.currency}"
    return f"{plan.price_sats} sats"


@api_key_app.command("create")
@audited("api_key.create", "api-key:{name}")
def api_key_create(
    name: Annotated[
        str, typer.Option("--name", metavar="NAME", help="What the key is for, e.g. 'website'.")
    ],
    scopes: Annotated[
        str, typer.Option("--scopes", metavar="SCOPES", help="Comma separated: read, write, admin.")
    ] = "read",
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            metavar="PLATFORM",
            help="Bind the key to one platform (telegram, discord, website, api): it creates "
            "users of that platform and sees no other platform's users.",
        ),
    ] = None,
) -> None:
    """Create an API key. The key is printed once, alone on the last line of stdout."""
    from satshare.apikeys import flows as key_flows
    from satshare.apikeys import service as apikeys
    from satshare.users.models import PLATFORMS

    if platform is not None and platform not in PLATFORMS:
        raise fail(f"unknown platform {platform!r}; use one of: {', '.join(PLATFORMS)}")
    cfg = settings()

    async def go() -> tuple[int, str, str]:
        parsed = apikeys.parse_scopes(scopes)
        async with opened(cfg) as container:
            issued = await key_flows.create(
                container.db, name, parsed, container.clock.now(), platform=platform
            )
            return issued.key.id, issued.key.scopes, issued.plaintext

    key_id, granted, plaintext = run(go())
    bound = f", bound to platform {platform}" if platform else ""
    print(f"Created API key {key_id} '{name}' with scopes {granted}{bound}.")
    print("Store it now: it is shown only once.")
    print(plaintext)


@api_key_app.command("list")
def api_key_list(as_json: JsonOption = False) -> None:
    """List API keys (never the keys themselves)."""
    from satshare.apikeys import flows as key_flows

    cfg = settings()

    async def go() -> list[Any]:
        async with opened(cfg) as container:
            return list(await key_flows.list_keys(container.db))

    keys = run(go())
    if as_json:
        print_json(
            {
                "id": key.id,
                "name": key.name,
                "prefix": key.display_prefix,
                "scopes": key.scopes,
                "platform": key.platform,  # None: not bound to a platform (#14)
                "created_at": key.created_at,
                "last_used_at": key.last_used_at,
                "revoked_at": key.revoked_at,
            }
            for key in keys
        )
        return
    table = Table("id", "name", "prefix", "scopes", "created", "last used", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            # A platform-bound key says so where it is named (a column more would crop).
            escape(f"{key.name} ({key.platform} only)" if key.platform else key.name),
            key.display_prefix + "…",
            key.scopes,
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "—",
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "—",
        )
    out.print(table)


@api_key_app.command("revoke")
@audited("api_key.revoke", "api-key:{key}")
def api_key_revoke(
    key: Annotated[str, typer.Argument(metavar="KEY", help="The key's id or displayed prefix.")],
) -> None:
    """Revoke an API key; requests with it get 401 from now on."""
    from satshare.apikeys import flows as key_flows

    cfg = settings()

    async def go() -> tuple[int, str, datetime | None]:
        async with opened(cfg) as container:
            now = container.clock.now()
            revoked = await key_flows.revoke(container.db, key, now)
            # A key revoked before keeps that moment: say so rather than revoke it "again".
            earlier = revoked.revoked_at if revoked.revoked_at != now else None
            return revoked.id, revoked.name, earlier

    key_id, name, earlier = run(go())
    if earlier is not None:
        out.print(
            f"API key {key_id} '{escape(name)}' was already revoked on "
            f"{earlier:%Y-%m-%d %H:%M} UTC; nothing changed.",
            highlight=False,
        )
        return
    out.print(f"Revoked API key {key_id} '{escape(name)}'.", highlight=False)


@ledger_app.command("export")
def ledger_export(
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="PATH", help="Write to this file instead of stdout."
        ),
    ] = None,
) -> None:
    """Write the chained ledger as JSON Lines: one entry per line with postings and hashes.

    Streamed: memory stays flat however long the ledger; a progress bar on a terminal.
    Check it anywhere with docs/verify_ledger_export.py (Python's standard library only)."""
    from satshare.ledger import flows as ledger_flows

    cfg = settings()

    async def go(sink: Any) -> int:
        async with opened(cfg) as container:
            with frozen_heap(), progress_bar("exporting the ledger") as progress:
                return await ledger_flows.export(container.db, sink.write, progress)

    if output is None:
        count = run(go(sys.stdout))
    else:
        target = Path(output).expanduser()
        if target.is_dir():
            raise fail(f"{target} is a directory; give a file name, e.g. {target}/ledger.jsonl")
        if not target.parent.is_dir():
            raise fail(f"the directory {target.parent} does not exist; create it first")
        # Written beside the target and renamed at the end: an export that stops half-way
        # never takes the name of a complete one.
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        except OSError as exc:
            raise fail(f"cannot write in {target.parent} ({exc.strerror or exc})") from None
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as sink:
                count = run(go(sink))
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    err.print(f"Exported {count} chained entries.", highlight=False)


@ledger_app.command("verify")
def ledger_verify(
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the report as one JSON object instead of text (for scripts)."
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            metavar="N",
            help="Processes checking the chains side by side on PostgreSQL (default: one "
            "per CPU; 1 checks in this process alone).",
        ),
    ] = None,
) -> None:
    """Recompute the hash chains (entries, memo notes) and every balance; exit 1 naming the
    first bad row. Streamed: memory stays flat however long the ledger; a progress bar on a
    terminal. On PostgreSQL a long ledger is checked by several processes reading one
    snapshot."""
    from satshare.ledger import flows as ledger_flows

    cfg = settings()

    async def go() -> Any:
        async with opened(cfg) as container:
            with (
                frozen_heap(),
                progress_bar("verifying the ledger", quiet=json_output) as progress,
            ):
                return await ledger_flows.verify(
                    container.db, progress, workers=workers or os.cpu_count() or 1
                )

    report = run(go())
    if json_output:
        summary = {
            "ok": report.ok,
            "entries": report.entries,
            "postings": report.postings,
            "unsealed_entries": report.unsealed,
            "notes": report.notes,
            "unsealed_notes": report.unsealed_notes,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash,
            "problems": report.problems,
        }
        print(json.dumps(summary, indent=2))
        if not report.ok:
            raise typer.Exit(1)
        return
    if report.ok:
        out.print(
            f"[green]Ledger verified:[/] {report.entries} entries, {report.postings} postings, "
            f"{report.notes} memo notes, head seq {report.head_seq} hash {report.head_hash}"
        )
        return
    for problem in report.problems:
        err.print(f"[bold red]ledger:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    raise fail(f"ledger verification failed: {report.problems[0]}", code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(metavar="HOST", help="Override server.host.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, metavar="PORT", help="Override server.port.")
    ] = None,
    worker_socket: Annotated[
        int | None,
        typer.Option(
            hidden=True,
            metavar="FD",
            help="Internal: serve as one of server.workers on this inherited listening socket.",
        ),
    ] = None,
    worker_of: Annotated[
        int | None,
        typer.Option(
            hidden=True, metavar="PID", help="Internal: the pid of the process that started it."
        ),
    ] = None,
) -> None:
    """Run SatShare: REST API, checkout pages and background jobs (and the sandbox)."""
    # Starting allocates a million objects that live as long as the process; the cyclic
    # garbage collector would traverse all of them again and again meanwhile (a sixth of the
    # start's CPU). It resumes once /health answers, with them set aside (_serve_container).
    gc.disable()
    try:
        worker = (worker_socket, worker_of or os.getppid()) if worker_socket is not None else None
        _serve_command(host, port, worker)
    finally:
        gc.enable()


def _serve_command(host: str | None, port: int | None, worker: tuple[int, int] | None) -> None:
    cfg = settings()
    if host is not None:
        cfg.server.host = host
    if port is not None:
        cfg.server.port = port
    if cfg.sandbox_mode and not cfg.plans:
        cfg.plans = list(SANDBOX_PLANS)
    configure_logging(cfg)
    from satshare.cli.serving import DatabaseInUse, port_problem, redact_access_log, sole_server
    from satshare.db import sqlite_file

    redact_access_log()
    if worker is None:  # a worker's port is its first process's, in use by design
        problem = port_problem(cfg.server.host, cfg.server.port)
        if problem is not None:
            raise fail(problem, code=1)
    try:
        with sole_server(sqlite_file(cfg.database.url)):
            _run_fast(_serve(cfg, worker))
    except DatabaseInUse as exc:
        raise fail(str(exc), code=1) from None


async def _serve(cfg: Settings, worker: tuple[int, int] | None = None) -> None:
    try:
        # The first process synced the plans before starting its workers.
        async with opened(cfg, sync_plans=worker is None, service=True) as container:
            if container.job_queue is not None and not container.runs_jobs:
                # workers mode: commits queue jobs, so the queue is open while serving.
                async with container.job_queue.open_async():
                    await _serve_container(cfg, container, worker)
            else:
                await _serve_container(cfg, container, worker)
    except ContainerUnavailable as exc:
        raise fail(exc.detail, code=1) from None


def _worker_argv(cfg: Settings, fd: int) -> list[str]:
    """How the first process starts one of its ``server.workers``: the same configuration
    (file, environment, overrides), serving on the inherited socket ``fd``."""
    config = ["--config", State.config_path] if State.config_path else []
    where = ["--host", cfg.server.host, "--port", str(cfg.server.port)]
    worker = [f"--worker-socket={fd}", f"--worker-of={os.getpid()}"]
    return [sys.executable, "-m", "satshare", *config, "serve", *where, *worker]


async def _serve_container(
    cfg: Settings, container: Container, worker: tuple[int, int] | None = None
) -> None:
    """The API, the bot and the jobs on an open container, until the server stops; with
    ``server.workers`` above 1, the first process binds the port and starts the others on
    its socket (``worker``: this process is one of those, on that inherited socket, started
    by that pid)."""
    import socket

    import uvicorn

    from satshare.api.app import create_app
    from satshare.cli.admin import issue_sandbox_login
    from satshare.cli.serving import GRACEFUL_SECONDS, Server, Workers, stop_when_orphaned
    from satshare.jobs import BotJobs, run_jobs

    # /ready and /metrics ask the PostgreSQL job queue this process works or feeds.
    api = create_app(container.api_services(job_queue=True))
    config = uvicorn.Config(
        api,
        host=cfg.server.host,
        port=cfg.server.port,
        log_level=cfg.log_level,
        log_config=None,  # uvicorn's lines go through satshare.logs like every other
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        # No route is a WebSocket: uvicorn would otherwise import the websockets package.
        ws="none",
    )
    server = Server(config)
    sockets: list[socket.socket] | None = None
    if worker is not None:
        sockets = [socket.socket(fileno=worker[0])]
    elif cfg.server.workers > 1:
        sockets = [config.bind_socket()]  # shared with the workers, started below
    serving = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if serving.done():
            # uvicorn logged why (the port was taken since the check, say) and exited.
            with contextlib.suppress(SystemExit):
                await serving
            raise fail(f"could not listen on {cfg.server.host}:{cfg.server.port}", code=1)
        await asyncio.sleep(0.05)
    runtime, dispatcher = None, None
    if cfg.bot_enabled:
        from telegram.error import InvalidToken, NetworkError

        from satshare.bot.app import build_runtime, start_bot

        runtime = build_runtime(
            container.bot_services(),
            token=container.telegram_token,
            api_base_url=container.telegram_api_base_url,
        )
        problem = None
        try:
            dispatcher = await start_bot(runtime, send_outbox=container.runs_jobs)
        except InvalidToken:
            problem = "Telegram refused telegram.token: check it with @BotFather"
        except NetworkError as exc:
            problem = (
                f"cannot reach the Bot API at {redact_url(container.telegram_api_base_url)} "
                f"({exc}); check telegram.api_base_url"
            )
        if problem is not None:
            # The web server is stopped and awaited before the one line: left running, its
            # app's lifespan was cancelled when the loop closed, with a traceback.
            server.should_exit = True
            with contextlib.suppress(Exception, SystemExit):
                await serving
            raise fail(problem, code=1)
        api.state.bot = runtime
    workers: Workers | None = None
    orphaned: asyncio.Task[None] | None = None
    if worker is not None:
        orphaned = asyncio.create_task(stop_when_orphaned(server, parent=worker[1]))
    else:
        # Issued once everything has started: a start that fails leaves the keys as they were.
        # The sandbox's module (the emulators), like the bot's, is imported only when this
        # configuration runs it: a process that never uses them does not load them (#15).
        sandbox_key, sandbox_login = None, None
        if container.sandbox is not None and cfg.sandbox.print_api_key:
            from satshare.sandbox import issue_sandbox_key

            sandbox_key = await issue_sandbox_key(container.db, container.clock)
            sandbox_login = await issue_sandbox_login(container)
        _banner(
            cfg,
            sandbox_key,
            runtime.username if runtime is not None else None,
            container.sandbox is not None and container.sandbox.telegram is not None,
            sandbox_login,
        )
        if sockets is not None:
            workers = Workers(
                cfg.server.workers, lambda fd: _worker_argv(cfg, fd), listening=sockets[0]
            )
            await workers.start()
    # Everything loaded to start (modules, the app, about a million objects) lives as long as
    # the process: set aside from the cyclic garbage collector, so its full collections
    # under load traverse what requests allocate, not all of that (a pause each time). The
    # start's own cyclic garbage is set aside with it rather than collected first: about a
    # thousand objects, where the full collection that would find them walks 200,000 and
    # held the event loop for a tenth of a second of CPU at every start (#15).
    gc.freeze()
    gc.enable()
    bot_jobs = BotJobs(runtime, dispatcher) if runtime and dispatcher else None
    # workers mode: this process only queues jobs (after each commit); workers run them.
    jobs = asyncio.create_task(
        run_jobs(container, bot_jobs) if container.runs_jobs else asyncio.Event().wait()
    )
    stopped = False

    async def stop_jobs_and_bot() -> None:
        """Jobs first (they send through the bot), then the bot, then (after this) the web
        server: the sandbox bot long-polls the emulator this server hosts."""
        nonlocal stopped
        if stopped:
            return
        stopped = True
        if workers is not None:
            workers.terminate()  # they stop alongside, each in the same order
        jobs.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await jobs
        if runtime is not None and dispatcher is not None:
            from satshare.bot.app import stop_bot

            await stop_bot(runtime, dispatcher)
        if container.sandbox is not None and container.sandbox.telegram is not None:
            # Ends the long poll the bot left open, so the web server stops at once.
            await container.sandbox.telegram.aclose()

    server.before_exit = stop_jobs_and_bot
    if container.sandbox is not None and container.sandbox.telegram is not None:
        server.answer_waiting = container.sandbox.telegram.aclose
    try:
        await serving
    finally:
        await stop_jobs_and_bot()
        if orphaned is not None:
            orphaned.cancel()
        if workers is not None:
            await workers.wait()


def _run_fast(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (a dependency where it builds): the event loop is
    most of the cost of a webhook's HTTP in and out."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def rule(title: str = "") -> None:
    """A banner's horizontal rule: as wide as the terminal, 80 columns in a log file."""
    (out if out.is_terminal else Console(width=80)).rule(title)


def _banner(
    cfg: Settings,
    sandbox_key: str | None,
    bot_username: str | None,
    bot_sandbox: bool,
    sandbox_login: tuple[str, str] | None = None,
) -> None:
    base = redact_url(cfg.server.base_url)
    if sandbox_key:
        rule(f"[bold yellow]SatShare {__version__} — SANDBOX MODE[/]")
        out.print(
            "[yellow]No payment processor is configured (btcpay.url is empty): invoices go to the "
            "built-in BTCPay emulator on regtest. Nothing here moves real coins.[/]",
            soft_wrap=True,
        )
    else:
        btcpay = redact_url(cfg.btcpay.url) if cfg.btcpay.url else "(not configured)"
        rule(f"[bold green]SatShare {__version__}[/] — BTCPay at {escape(btcpay)}")
    # Plain prints: URLs and keys must never be wrapped or cropped by the terminal width.
    print(f"API:            {base}/")
    print(f"API docs:       {base}/docs")
    print(f"Health:         {base}/health")
    if not sandbox_login:
        print(f"Admin panel:    {base}/admin  (accounts: satshare admin create-user)")
    plan_ids = ", ".join(p.id for p in cfg.plans) or "none (add plans: to satshare.yaml)"
    print(f"Plans:          {plan_ids}")
    for notice in cfg.notices():
        print(f"Note:           {notice}")
    mode = "webhook" if cfg.telegram.webhook_url else "long polling"
    if bot_username is None:
        print("Telegram:       OFF: telegram.token is not set, so the bot does not run (the")
        print("                sandbox chat exists only in sandbox mode, with no processor)")
    elif bot_sandbox:
        print(f"Telegram:       sandbox bot @{bot_username} on the Bot API emulator ({mode})")
        print(f"Sandbox chat:   {base}/sandbox")
    else:
        print(f"Telegram:       @{bot_username} ({mode})")
    if sandbox_key:
        print(f"Sandbox BTCPay: {base}/sim/btcpay/")
        host = base.split("://", 1)[1]
        print(f"Withdrawals:    to any Lightning Address <name>@{host} (paid by the emulator)")
        print(f"Admin API key for this session (shown once): {sandbox_key}")
    if sandbox_login:
        print(
            f"Admin panel:    {base}/admin  (sandbox only: user {sandbox_login[0]}, "
            f"password {sandbox_login[1]})"
        )
    if sandbox_key:
        print("Try it:")
        print(f'  curl -H "Authorization: Bearer {sandbox_key}" {base}/api/v1/subscriptions/types')
        print("Then create a user and a subscription (README: 'Sandbox walk-through'), open the")
        print("invoice's checkout_url in a browser and press 'Simulate payment'.")
    rule()
    sys.stdout.flush()


#: Where an emulator run on its own listens (each has its own default port).
SimHost = Annotated[str, typer.Option(metavar="HOST", help="Interface to listen on.")]
SimPort = Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")]


@sim_app.command("btcpay")
def sim_btcpay(
    host: SimHost = "127.0.0.1",
    port: SimPort = 14142,
    api_key: Annotated[
        str, typer.Option(metavar="KEY", help="The Greenfield API key it accepts.")
    ] = "sim-api-key",
    store_id: Annotated[
        str, typer.Option(metavar="STORE_ID", help="The store id it serves.")
    ] = "sim-store",
) -> None:
    """Run the BTCPay Server emulator alone (regtest; control API under /_sim)."""
    import uvicorn

    from satshare.sim.btcpay import BTCPayEmulator, build_app

    emulator = BTCPayEmulator(api_key=api_key, store_id=store_id, base_url=f"http://{host}:{port}")
    print(f"BTCPay emulator on http://{host}:{port}  api key: {api_key}  store: {store_id}")
    uvicorn.run(
        build_app(emulator), host=host, port=port, log_level="warning", timeout_graceful_shutdown=1
    )


#: Not a secret: the token the standalone emulator accepts unless told otherwise.
SIM_TELEGRAM_TOKEN = "7000000001:AAH-sandbox-token-for-the-emulator-000"  # noqa: S105


@sim_app.command("telegram")
def sim_telegram(
    host: SimHost = "127.0.0.1",
    port: SimPort = 18081,
    token: Annotated[
        str, typer.Option(metavar="TOKEN", help="The bot token it accepts.")
    ] = SIM_TELEGRAM_TOKEN,
    global_rate: Annotated[
        float, typer.Option(metavar="PER_SECOND", help="Messages per second for the bot.")
    ] = 30.0,
    chat_rate: Annotated[
        float, typer.Option(metavar="PER_SECOND", help="Messages per second per chat.")
    ] = 1.0,
    chat_burst: Annotated[
        float, typer.Option(metavar="MESSAGES", help="Short burst allowed per chat.")
    ] = 3.0,
) -> None:
    """Run the Telegram Bot API emulator alone (control API under /_sim)."""
    import uvicorn

    from satshare.sim.telegram import TelegramEmulator, build_app

    emulator = TelegramEmulator(
        token, global_rate=global_rate, chat_rate=chat_rate, chat_burst=chat_burst
    )
    print(f"Bot API emulator on http://{host}:{port}  token: {token}")
    uvicorn.run(
        build_app(emulator),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
        # A bot's idle pooled connection closed after uvicorn's default 5 s could be taken
        # for a request at that very moment (ReadError, a lost reply, under load); Telegram
        # keeps them open far longer.
        timeout_keep_alive=120,
    )


def main() -> None:
    app()
