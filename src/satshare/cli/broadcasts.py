"""`satshare broadcast ...`: list, show, send (with a progress bar) and cancel broadcasts.

``send`` delivers in this process through the configured bot (``telegram.token``), paced at
``telegram.max_messages_per_second``, and follows another sender's progress instead when
``satshare serve`` already holds the broadcast. Compose broadcasts with the API
(``POST /api/v1/broadcasts``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from satshare.broadcasts import flows
from satshare.broadcasts.models import Broadcast, BroadcastStatus
from satshare.broadcasts.repository import Progress as BroadcastProgress
from satshare.cli.common import fail, opened, out, run, settings
from satshare.clock import Clock
from satshare.config import Settings
from satshare.db import Database

broadcast_app = typer.Typer(help="Broadcasts: list, show, send with a progress bar, cancel.")

#: Seconds between progress reads while another process sends.
FOLLOW_INTERVAL = 0.5


def _line(b: Broadcast, done: int) -> str:
    return f"broadcast {b.id} is {b.status}: {done} of {b.recipients} recipients done"


@broadcast_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
) -> None:
    """List broadcasts, newest first, with their progress."""
    cfg = settings()

    async def go() -> list[tuple[Broadcast, BroadcastProgress]]:
        async with opened(cfg) as container:
            return await flows.listing(container.db, limit=limit)

    table = Table("id", "status", "segment", "recipients", "sent", "blocked", "failed", "pending")
    for b, p in run(go()):
        segment = ", ".join(f"{k}={v}" for k, v in b.segment.items())
        table.add_row(
            str(b.id),
            b.status,
            segment,
            str(b.recipients),
            str(p.sent),
            str(p.blocked),
            str(p.failed),
            str(p.open),
        )
    out.print(table)


@broadcast_app.command("cancel")
def cancel_command(broadcast_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Cancel a broadcast: nobody still pending gets it."""
    cfg = settings()

    async def go() -> str:
        async with opened(cfg) as container:
            broadcast, progress = await flows.cancel(
                container.db, broadcast_id, container.clock.now()
            )
            return _line(broadcast, progress.sent + progress.blocked + progress.failed)

    out.print(run(go()), highlight=False)


@broadcast_app.command("send")
def send_command(
    broadcast_id: Annotated[int, typer.Argument(min=1)],
) -> None:
    """Send a broadcast now with a progress bar (a scheduled one waits for its send_at)."""
    cfg = settings()
    if cfg.telegram_sandbox:
        raise fail(
            "telegram.token is not set: the sandbox's Telegram lives inside `satshare serve`; "
            f"send it there with POST /api/v1/broadcasts/{broadcast_id}/send"
        )
    line = run(_send(cfg, broadcast_id))
    out.print(line, highlight=False)


async def _send(cfg: Settings, broadcast_id: int) -> str:
    from satshare.bot.app import build_runtime
    from satshare.bot.broadcasts import BroadcastSender, Delivery

    async with opened(cfg) as container:
        db, clock = container.db, container.clock
        broadcast, before = await flows.request_send(db, broadcast_id, clock.now())
        if broadcast.status == BroadcastStatus.SCHEDULED:
            return (
                f"broadcast {broadcast_id} is scheduled for {broadcast.send_at:%Y-%m-%d %H:%M} "
                "UTC; the running `satshare serve` sends it then"
            )
        runtime = build_runtime(
            container.bot_services(),
            token=container.telegram_token,
            api_base_url=container.telegram_api_base_url,
        )
        await runtime.application.initialize()
        try:
            with _bar() as bar:
                task = bar.add_task(
                    f"broadcast {broadcast_id}",
                    total=broadcast.recipients,
                    completed=broadcast.recipients - before.open,
                )
                start = broadcast.recipients - before.open

                def advance(delivery: Delivery) -> None:
                    done = delivery.sent + delivery.blocked + delivery.failed
                    bar.update(task, completed=start + delivery.interrupted + done)

                sender = BroadcastSender(db, clock, runtime.application.bot)
                while not (await sender.deliver(broadcast_id, on_progress=advance)).held:
                    # Another sender holds it: follow until it is done, or its lease runs
                    # out (it died) and this one takes over.
                    if not await _follow(db, clock, broadcast_id, bar, task):
                        break
                    start = broadcast.recipients - (await _open(db, broadcast_id))
        finally:
            await runtime.application.shutdown()
        final, progress = await flows.show(db, broadcast_id)
        return (
            f"broadcast {broadcast_id} is {final.status}: {progress.sent} sent, "
            f"{progress.blocked} blocked the bot, {progress.failed} failed, "
            f"{progress.open} pending"
        )


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=out,
    )


async def _open(db: Database, broadcast_id: int) -> int:
    return (await flows.progress(db, broadcast_id)).open


async def _follow(
    db: Database, clock: Clock, broadcast_id: int, bar: Progress, task: TaskID
) -> bool:
    """Show another sender's progress. False once the broadcast is over; True when that
    sender's lease ran out (this one may take over)."""
    while True:
        broadcast, progress = await flows.show(db, broadcast_id)
        bar.update(task, completed=broadcast.recipients - progress.open)
        if broadcast.status != BroadcastStatus.SENDING:
            return False
        if broadcast.lease_until is None or broadcast.lease_until < clock.now():
            return True
        await asyncio.sleep(FOLLOW_INTERVAL)
