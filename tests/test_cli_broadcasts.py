"""`satshare broadcast` against the Telegram emulator: send (marked by the command, sent by
the running service, followed with a progress bar), list, cancel, and the one-line
refusals."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest
from typer.testing import CliRunner

from satshare.bot.broadcasts import BroadcastSender
from satshare.broadcasts import service
from satshare.broadcasts.compose import Content
from satshare.broadcasts.segments import Segment, SegmentKind
from satshare.cli import app, common
from satshare.cli import broadcasts as broadcast_cli
from tests.broadcastkit import TOKEN, Rig, close_rig, open_rig

runner = CliRunner()


async def cli(*args: str) -> tuple[int, str, str]:
    # The CLI runs its own event loop, as it does from a shell.
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setattr(common.out, "width", 200)
    return monkeypatch


async def _running_service(rig: Rig, stop: asyncio.Event) -> None:
    """What the running service does: its broadcasts job (here every 0.1 s)."""
    sender = BroadcastSender(rig.db, rig.clock, rig.bot)
    while not stop.is_set():
        await sender.run_due()
        await asyncio.sleep(0.1)


async def test_broadcast_send_list_and_cancel(
    database_url: str, environment: pytest.MonkeyPatch
) -> None:
    rig = await open_rig(database_url)
    try:
        environment.setenv("SATSHARE_DATABASE__URL", database_url)
        # A payment processor and no bot token: nothing could ever send it.
        live = {"URL": "https://btcpay.example.com", "STORE_ID": "S1"}
        live |= {"API_KEY": secrets.token_hex(20), "WEBHOOK_SECRET": secrets.token_hex(16)}
        for name, value in live.items():
            environment.setenv(f"SATSHARE_BTCPAY__{name}", value)
        code, _, err = await cli("broadcast", "send", "1")
        assert code == 2 and "telegram.token is not set, so no process can send" in err
        for name in live:
            environment.delenv(f"SATSHARE_BTCPAY__{name}")
        environment.setenv("SATSHARE_TELEGRAM__TOKEN", TOKEN)
        environment.setenv("SATSHARE_TELEGRAM__API_BASE_URL", rig.server.url)
        for telegram_id in range(1, 7):
            await rig.user(telegram_id, language="ru" if telegram_id % 2 else "en")
        rig.telegram.users[6].blocked_bot = True
        async with rig.db.transaction() as session:
            first = await service.create(
                session,
                Content("Hello", text_ru="Привет"),
                Segment(SegmentKind.ALL),
                send_at=None,
                author="test",
                now=rig.clock.now(),
            )
            second = await service.create(
                session,
                Content("Later"),
                Segment(SegmentKind.ALL),
                send_at=None,
                author="test",
                now=rig.clock.now(),
            )

        # No service running: marked for sending, then one line says what is missing.
        environment.setattr(broadcast_cli, "NO_SENDER_SECONDS", 1)
        code, _, err = await cli("broadcast", "send", str(first.id))
        assert code == 2
        assert f"no sender has taken broadcast {first.id} for 1 s" in err
        assert "the service must be running" in err and "satshare serve" in err
        assert rig.received(1) == []  # the command sent nothing itself

        stop = asyncio.Event()
        running = asyncio.create_task(_running_service(rig, stop))
        try:
            code, out, err = await cli("broadcast", "send", str(first.id))
        finally:
            stop.set()
            await running
        assert code == 0, err
        assert f"broadcast {first.id} is done: 5 sent, 1 blocked the bot, 0 failed" in out
        assert "6/6" in out  # the progress bar's last state
        assert [m.text for m in rig.received(1)] == ["Привет"]
        assert [m.text for m in rig.received(2)] == ["Hello"]
        code, out, _ = await cli("broadcast", "send", str(first.id))
        assert code == 0 and "5 sent" in out
        assert len(rig.received(1)) == 1  # sending again sends nothing

        code, out, _ = await cli("broadcast", "cancel", str(second.id))
        assert code == 0 and f"broadcast {second.id} is canceled" in out
        code, _, err = await cli("broadcast", "send", str(second.id))
        assert code == 2 and "was canceled" in err
        code, out, _ = await cli("broadcast", "list")
        assert code == 0 and "done" in out and "canceled" in out and "kind=all" in out
        code, _, err = await cli("broadcast", "send", "999")
        assert code == 2 and "broadcast 999 does not exist" in err
    finally:
        await close_rig(rig)
