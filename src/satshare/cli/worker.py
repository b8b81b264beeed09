"""`satshare worker`: run background jobs from the PostgreSQL job queue (and, with
``metrics.worker_port``, serve this process's /metrics)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated

import typer

from satshare import metrics
from satshare.cli.common import ContainerUnavailable, configure_logging, fail, opened, settings
from satshare.config import Settings
from satshare.db import is_sqlite
from satshare.jobqueue import Queue


def worker_command(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, metavar="N", help="Jobs at a time (default: jobs.concurrency)."
        ),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            metavar="QUEUES",
            help=f"Only these queues, comma separated: {', '.join(Queue)} (default: all).",
        ),
    ] = None,
) -> None:
    """Run background jobs from the job queue on PostgreSQL (with jobs.mode: workers, or
    beside inline serve processes); Ctrl+C finishes the jobs in progress, then stops."""
    cfg = settings()
    if is_sqlite(cfg.database.url):
        raise fail(
            "satshare worker needs PostgreSQL (database.url): on SQLite one `satshare serve` "
            "runs every job itself"
        )
    if cfg.sandbox_mode:
        raise fail(
            "the sandbox's emulators live inside `satshare serve`, which runs its jobs itself; "
            "start workers once a payment processor is configured"
        )
    chosen = [q.strip() for q in queues.split(",") if q.strip()] if queues else []
    unknown = [q for q in chosen if q not in set(Queue)]
    if unknown:
        raise fail(f"unknown queue {unknown[0]!r}; use one or more of {', '.join(Queue)}")
    configure_logging(cfg)
    stop_metrics = _serve_metrics(cfg)
    try:
        asyncio.run(_work(cfg, concurrency or cfg.jobs.concurrency, chosen))
    except ContainerUnavailable as exc:
        raise fail(exc.detail, code=1) from None
    finally:
        stop_metrics()


def _serve_metrics(cfg: Settings) -> Callable[[], None]:
    """This worker's /metrics (job runs, settlements, Telegram errors are counted per
    process) on server.host:metrics.worker_port, when one is set."""
    port = cfg.metrics.worker_port
    if port is None:
        return lambda: None
    try:
        return metrics.serve_http(cfg.server.host, port)
    except OSError as exc:
        raise fail(
            f"cannot serve the worker's metrics on {cfg.server.host}:{port} "
            f"({exc.strerror or exc}); choose another metrics.worker_port",
            code=1,
        ) from None


async def _work(cfg: Settings, concurrency: int, queues: list[str]) -> None:
    from satshare.bot.app import build_runtime, start_sender, stop_bot
    from satshare.jobs import BotJobs, run_worker

    async with opened(cfg, service=True) as container:
        bot = None
        if cfg.telegram.configured:
            runtime = build_runtime(
                container.bot_services(),
                token=container.telegram_token,
                api_base_url=container.telegram_api_base_url,
            )
            bot = BotJobs(runtime, await start_sender(runtime))
        try:
            await run_worker(
                container,
                bot,
                concurrency=concurrency,
                queues=queues,
                install_signal_handlers=True,
            )
        finally:
            if bot is not None:
                with contextlib.suppress(Exception):
                    await stop_bot(bot.runtime, bot.dispatcher)
