"""Command line: serve | migrate | config check | api-key | ledger | payout | affiliate | sim."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from satshare import __version__
from satshare.cli.affiliates import affiliate_app
from satshare.cli.broadcasts import broadcast_app
from satshare.cli.common import (
    ContainerUnavailable,
    State,
    err,
    fail,
    opened,
    out,
    run,
    settings,
)
from satshare.cli.payouts import payout_app
from satshare.config import PlanSettings, Settings, redact_url

if TYPE_CHECKING:
    from satshare.container import Container

app = typer.Typer(
    name="satshare",
    help="SatShare: Telegram channel subscriptions for bitcoin, split with affiliates.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Configuration tools.", no_args_is_help=True)
api_key_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
ledger_app = typer.Typer(help="Ledger tools.", no_args_is_help=True)
sim_app = typer.Typer(help="Run the local emulators on their own.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(api_key_app, name="api-key")
app.add_typer(ledger_app, name="ledger")
app.add_typer(sim_app, name="sim")
app.add_typer(payout_app, name="payout")
app.add_typer(affiliate_app, name="affiliate")
app.add_typer(broadcast_app, name="broadcast")

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
    """Validate the configuration and print what SatShare would run with."""
    cfg = settings()
    table = Table(title="SatShare configuration", show_header=False)
    table.add_row(
        "mode", "[yellow]sandbox[/] (no processor configured)" if cfg.sandbox_mode else "live"
    )
    table.add_row("database.url", redact_url(cfg.database.url))
    table.add_row(
        "server", f"{cfg.server.host}:{cfg.server.port} → {redact_url(cfg.server.base_url)}"
    )
    table.add_row(
        "affiliate.share_bps", f"{cfg.affiliate.share_bps} ({cfg.affiliate.share_bps / 100:g}%)"
    )
    levels = ", ".join(f"{lv.name} {lv.share_bps / 100:g}%" for lv in cfg.affiliate.levels)
    table.add_row(
        "affiliate",
        f"levels: {levels or 'none'}; hold {cfg.affiliate.hold_days} d; "
        f"terms v{cfg.affiliate.terms_version}",
    )
    payouts = cfg.payouts
    table.add_row(
        "payouts",
        f"{cfg.payout_provider} on {cfg.payout_network}, min {payouts.min_sats} sats, "
        f"auto-approve up to {payouts.auto_approve_max_sats} sats"
        + (", instant Lightning split" if payouts.instant_lightning else ""),
    )
    table.add_row("btcpay.url", redact_url(cfg.btcpay.url) if cfg.btcpay.url else "—")
    payments = cfg.payments
    table.add_row(
        "payments",
        f"reconcile every {payments.reconcile_interval_seconds}s, "
        f"invoices expire after {payments.invoice_expiration_minutes} min",
    )
    table.add_row(
        "plans",
        ", ".join(f"{p.id} ({_price(p)} / {p.duration_days} d)" for p in cfg.plans) or "none",
    )
    out.print(table)
    out.print("[green]Configuration is valid.[/]")


def _price(plan: PlanSettings) -> str:
    if plan.price is not None:
        return f"{plan.price.amount} {plan.price.currency}"
    return f"{plan.price_sats} sats"


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Option("--name", help="What the key is for, e.g. 'website'.")],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma separated: read, write, admin.")
    ] = "read",
) -> None:
    """Create an API key. The key is printed once, alone on the last line of stdout."""
    from satshare.apikeys import service as apikeys

    cfg = settings()

    async def go() -> tuple[int, str, str]:
        parsed = apikeys.parse_scopes(scopes)
        async with opened(cfg) as container:
            async with container.db.transaction() as session:
                issued = await apikeys.create(session, name, parsed, container.clock.now())
            return issued.key.id, issued.key.scopes, issued.plaintext

    key_id, granted, plaintext = run(go())
    print(f"Created API key {key_id} '{name}' with scopes {granted}.")
    print("Store it now: it is shown only once.")
    print(plaintext)


@api_key_app.command("list")
def api_key_list() -> None:
    """List API keys (never the keys themselves)."""
    from satshare.apikeys import service as apikeys

    cfg = settings()

    async def go() -> list[Any]:
        async with opened(cfg) as container, container.db.reading() as session:
            return list(await apikeys.list_keys(session))

    keys = run(go())
    table = Table("id", "name", "prefix", "scopes", "created", "last used", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.display_prefix + "…",
            key.scopes,
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "—",
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "—",
        )
    out.print(table)


@api_key_app.command("revoke")
def api_key_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or displayed prefix.")],
) -> None:
    """Revoke an API key; requests with it get 401 from now on."""
    from satshare.apikeys import service as apikeys

    cfg = settings()

    async def go() -> tuple[int, str]:
        async with opened(cfg) as container:
            async with container.db.transaction() as session:
                revoked = await apikeys.revoke(session, key, container.clock.now())
            return revoked.id, revoked.name

    key_id, name = run(go())
    out.print(f"Revoked API key {key_id} '{name}'.")


@ledger_app.command("export")
def ledger_export(
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Write the chained ledger as JSON Lines: one entry per line with postings and hashes.

    Check it anywhere with docs/verify_ledger_export.py (Python's standard library only)."""
    from satshare.ledger.export import export_lines

    cfg = settings()

    async def go(sink: Any) -> int:
        count = 0
        async with opened(cfg) as container, container.db.reading() as session:
            async for line in export_lines(session):
                sink.write(line)
                count += 1
        return count

    if output is None:
        count = run(go(sys.stdout))
    else:
        with open(output, "w", encoding="utf-8") as handle:
            count = run(go(handle))
    err.print(f"Exported {count} chained entries.", highlight=False)


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Recompute the hash chains (entries, memo notes) and every balance; exit 1 naming the
    first bad row."""
    from satshare.ledger.verify import verify_ledger

    cfg = settings()

    async def go() -> Any:
        async with opened(cfg) as container, container.db.reading() as session:
            return await verify_ledger(session)

    report = run(go())
    if report.ok:
        out.print(
            f"[green]Ledger verified:[/] {report.entries} entries, {report.postings} postings, "
            f"{report.notes} memo notes, head seq {report.head_seq} hash {report.head_hash}"
        )
        return
    for problem in report.problems:
        err.print(f"[bold red]ledger:[/] {problem}", highlight=False, soft_wrap=True)
    raise fail(f"ledger verification failed: {report.problems[0]}", code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Override server.port.")] = None,
) -> None:
    """Run SatShare: REST API, checkout pages and background jobs (and the sandbox)."""
    cfg = settings()
    if host is not None:
        cfg.server.host = host
    if port is not None:
        cfg.server.port = port
    if cfg.sandbox_mode and not cfg.plans:
        cfg.plans = list(SANDBOX_PLANS)
    logging.basicConfig(
        level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if cfg.log_level != "debug":
        # Both libraries narrate every migration step and job run at INFO.
        for noisy in ("alembic", "procrastinate"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    # httpx logs every request URL at INFO, and Bot API URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _run_fast(_serve(cfg))


async def _serve(cfg: Settings) -> None:
    try:
        async with opened(cfg, sync_plans=True) as container:
            await _serve_container(cfg, container)
    except ContainerUnavailable as exc:
        raise fail(exc.detail, code=1) from None


async def _serve_container(cfg: Settings, container: Container) -> None:
    """The API, the bot and the jobs on an open container, until the server stops."""
    import uvicorn
    from telegram.error import InvalidToken, NetworkError

    from satshare.api.app import create_app
    from satshare.bot.app import build_runtime, start_bot, stop_bot
    from satshare.jobs import BotJobs, build_job_app, run_jobs
    from satshare.sandbox import issue_sandbox_key

    wants_key = container.sandbox is not None and cfg.sandbox.print_api_key
    sandbox_key = await issue_sandbox_key(container.db, container.clock) if wants_key else None
    api = create_app(container.api_services())
    server = uvicorn.Server(
        uvicorn.Config(
            api,
            host=cfg.server.host,
            port=cfg.server.port,
            log_level=cfg.log_level,
            proxy_headers=True,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # uvicorn already said why (e.g. the port is taken)
            raise fail(f"could not listen on {cfg.server.host}:{cfg.server.port}", code=1)
        await asyncio.sleep(0.05)
    runtime, dispatcher = None, None
    if cfg.bot_enabled:
        runtime = build_runtime(
            container.bot_services(),
            token=container.telegram_token,
            api_base_url=container.telegram_api_base_url,
        )
        try:
            dispatcher = await start_bot(runtime)
        except InvalidToken:
            server.should_exit = True
            raise fail(
                "Telegram refused telegram.token: check it with @BotFather", code=1
            ) from None
        except NetworkError as exc:
            server.should_exit = True
            raise fail(
                f"cannot reach the Bot API at {redact_url(container.telegram_api_base_url)} "
                f"({exc}); "
                "check telegram.api_base_url",
                code=1,
            ) from None
        api.state.bot = runtime
    _banner(
        cfg,
        sandbox_key,
        runtime.username if runtime is not None else None,
        container.sandbox is not None and container.sandbox.telegram is not None,
    )
    bot_jobs = BotJobs(runtime, dispatcher) if runtime and dispatcher else None
    jobs = asyncio.create_task(run_jobs(build_job_app(container, bot=bot_jobs)))
    try:
        await serving
    finally:
        jobs.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await jobs
        if runtime is not None and dispatcher is not None:
            await stop_bot(runtime, dispatcher)


def _run_fast(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (uvicorn[standard] brings it): the event loop is
    most of the cost of a webhook's HTTP in and out."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def _banner(
    cfg: Settings, sandbox_key: str | None, bot_username: str | None, bot_sandbox: bool
) -> None:
    base = redact_url(cfg.server.base_url)
    if sandbox_key:
        out.rule(f"[bold yellow]SatShare {__version__} — SANDBOX MODE[/]")
        out.print(
            "[yellow]No payment processor is configured (btcpay.url is empty): invoices go to the "
            "built-in BTCPay emulator on regtest. Nothing here moves real coins.[/]",
            soft_wrap=True,
        )
    else:
        btcpay = redact_url(cfg.btcpay.url) if cfg.btcpay.url else "(not configured)"
        out.rule(f"[bold green]SatShare {__version__}[/] — BTCPay at {btcpay}")
    # Plain prints: URLs and keys must never be wrapped or cropped by the terminal width.
    print(f"API:            {base}/")
    print(f"API docs:       {base}/docs")
    print(f"Health:         {base}/health")
    plan_ids = ", ".join(p.id for p in cfg.plans) or "none (add plans: to satshare.yaml)"
    print(f"Plans:          {plan_ids}")
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
        print(f"Sandbox BTCPay: {base}/sim/btcpay")
        host = base.split("://", 1)[1]
        print(f"Withdrawals:    to any Lightning Address <name>@{host} (paid by the emulator)")
        print(f"Admin API key for this session (shown once): {sandbox_key}")
        print("Try it:")
        print(f'  curl -H "Authorization: Bearer {sandbox_key}" {base}/api/v1/subscriptions/types')
        print("Then create a user and a subscription (README: 'Sandbox walk-through'), open the")
        print("invoice's checkout_url in a browser and press 'Simulate payment'.")
    out.rule()
    sys.stdout.flush()


@sim_app.command("btcpay")
def sim_btcpay(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 14142,
    api_key: Annotated[
        str, typer.Option(help="The Greenfield API key it accepts.")
    ] = "sim-api-key",
    store_id: Annotated[str, typer.Option(help="The store id it serves.")] = "sim-store",
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
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 18081,
    token: Annotated[str, typer.Option(help="The bot token it accepts.")] = SIM_TELEGRAM_TOKEN,
    global_rate: Annotated[float, typer.Option(help="Messages per second for the bot.")] = 30.0,
    chat_rate: Annotated[float, typer.Option(help="Messages per second per chat.")] = 1.0,
    chat_burst: Annotated[float, typer.Option(help="Short burst allowed per chat.")] = 3.0,
) -> None:
    """Run the Telegram Bot API emulator alone (control API under /_sim)."""
    import uvicorn

    from satshare.sim.telegram import TelegramEmulator, build_app

    emulator = TelegramEmulator(
        token, global_rate=global_rate, chat_rate=chat_rate, chat_burst=chat_burst
    )
    print(f"Bot API emulator on http://{host}:{port}  token: {token}")
    uvicorn.run(
        build_app(emulator), host=host, port=port, log_level="warning", timeout_graceful_shutdown=1
    )


def main() -> None:
    app()
