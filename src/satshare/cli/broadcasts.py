"""`satshare broadcast ...`: list, send (with a progress bar) and cancel broadcasts.

``send`` marks the broadcast for sending and lets the running service send it (``satshare
serve``, or a ``satshare worker`` in ``jobs.mode: workers``), like every command that changes
state: on PostgreSQL it queues the sender's job at once, on SQLite the service's sweep finds
it within ``BROADCAST_INTERVAL_SECONDS``. Meanwhile it shows the progress the service makes;
Ctrl+C stops watching, not sending. When no sender takes the broadcast, it says the service
must be running instead of waiting forever. Compose broadcasts with the API
(``POST /api/v1/broadcasts``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from satshare.broadcasts import flows
from satshare.broadcasts.models import Broadcast, BroadcastStatus
from satshare.broadcasts.repository import Progress as BroadcastProgress
from satshare.cli.common import Group, fail, opened, out, run, settings
from satshare.config import Settings
from satshare.errors import DomainError

if TYPE_CHECKING:
    from rich.progress import Progress

broadcast_app = typer.Typer(
    cls=Group, help="Broadcasts: list, show, send with a progress bar, cancel."
)

#: Seconds between progress reads while the service sends.
FOLLOW_INTERVAL = 0.5
#: With no sender holding the broadcast this long, the service is not running (its sweep
#: runs every 5 s; a sender that died holds it until its lease ends, then this counts).
NO_SENDER_SECONDS = 20


def _line(b: Broadcast, done: int) -> str:
    return f"broadcast {b.id} is {b.status}: {done} of {b.recipients} recipients done"


@broadcast_app.command("list")
def list_command(
    limit: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="At most this many.")
    ] = 20,
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
            escape(segment),
            str(b.recipients),
            str(p.sent),
            str(p.blocked),
            str(p.failed),
            str(p.open),
        )
    out.print(table)


@broadcast_app.command("cancel")
def cancel_command(
    broadcast_id: Annotated[int, typer.Argument(min=1, metavar="BROADCAST_ID")],
) -> None:
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
    broadcast_id: Annotated[int, typer.Argument(min=1, metavar="BROADCAST_ID")],
) -> None:
    """Send a broadcast now (a scheduled one waits for its send_at) through the running
    service, and show its progress; Ctrl+C stops watching, not sending."""
    cfg = settings()
    if not cfg.bot_enabled:
        raise fail(
            "telegram.token is not set, so no process can send a broadcast: set it (the "
            "bot's token from @BotFather), start the service, then send again"
        )
    try:
        line = run(_send(cfg, broadcast_id))
    except KeyboardInterrupt:
        out.print(
            f"stopped watching; the service goes on sending broadcast {broadcast_id} "
            "(see `satshare broadcast list`)",
            highlight=False,
        )
        raise typer.Exit(130) from None
    out.print(line, highlight=False)


async def _send(cfg: Settings, broadcast_id: int) -> str:
    """Mark the broadcast for sending, then follow it; the final line."""
    async with opened(cfg) as container:
        db, clock = container.db, container.clock
        broadcast, _ = await flows.request_send(
            db, broadcast_id, clock.now(), container.after_commit
        )
        if broadcast.status == BroadcastStatus.SCHEDULED:
            assert broadcast.send_at is not None
            return (
                f"broadcast {broadcast_id} is scheduled for {broadcast.send_at:%Y-%m-%d %H:%M} "
                "UTC; the running service sends it then"
            )
        with _bar() as bar:
            task = bar.add_task(f"broadcast {broadcast_id}", total=broadcast.recipients)
            last_sender = clock.now()
            while True:
                broadcast, progress = await flows.show(db, broadcast_id)
                bar.update(task, completed=broadcast.recipients - progress.open)
                if broadcast.status != BroadcastStatus.SENDING:
                    break
                now = clock.now()
                if _held(broadcast, now):
                    last_sender = now
                elif now - last_sender > timedelta(seconds=NO_SENDER_SECONDS):
                    raise NoSender(
                        f"no sender has taken broadcast {broadcast_id} for "
                        f"{NO_SENDER_SECONDS} s: the service must be running to send it "
                        "(`make run` or `satshare serve`, and `satshare worker` with "
                        "jobs.mode: workers); it stays queued and is sent once one runs"
                    )
                await asyncio.sleep(FOLLOW_INTERVAL)
        return (
            f"broadcast {broadcast_id} is {broadcast.status}: {progress.sent} sent, "
            f"{progress.blocked} blocked the bot, {progress.failed} failed, "
            f"{progress.open} pending"
        )


class NoSender(DomainError):
    """No process took the broadcast: the service is not running."""


def _held(broadcast: Broadcast, now: datetime) -> bool:
    """A sender holds the broadcast (its lease has not run out)."""
    return broadcast.lease_until is not None and broadcast.lease_until >= now


def _bar() -> Progress:
    # Imported here: every command, serve too, imports this module to register it.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=out,
    )
