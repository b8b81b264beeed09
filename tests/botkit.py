"""The bot under test: SatShare (API + PTB bot) against the Telegram and BTCPay emulators,
each on its own loopback HTTP server, and helpers to act as Telegram users."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from satshare.api.app import create_app
from satshare.apikeys import service as apikeys
from satshare.bot.app import build_runtime, start_bot, stop_bot
from satshare.bot.dispatcher import OutboxDispatcher
from satshare.bot.runtime import BotRuntime
from satshare.clock import Clock, SystemClock
from satshare.container import Container, build_container, prepare
from satshare.ledger.verify import verify_ledger
from satshare.sim.telegram import SimMessage, TelegramEmulator
from satshare.sim.telegram import build_app as build_telegram_app
from tests.conftest import BTCPaySim, make_settings
from tests.servers import RunningServer, free_port, start_server

TOKEN = "7000000001:AAH-test-token-for-the-emulator-0123456"
ADMIN_CHAT = 555_000_001
CHANNELS = (-1001000000001, -1001000000002)


@dataclass
class BotStack:
    container: Container
    server: RunningServer
    telegram: TelegramEmulator
    telegram_server: RunningServer
    btcpay: BTCPaySim
    runtime: BotRuntime
    dispatcher: OutboxDispatcher
    admin_key: str

    @property
    def url(self) -> str:
        return self.server.url

    # -- acting as users --------------------------------------------------------------

    def new_user(self, name: str = "user", language: str = "en") -> int:
        return self.telegram.add_user(
            first_name=name.title(), username=name, language_code=language
        ).id

    async def say(self, user_id: int, text: str, replies: int = 1) -> list[SimMessage]:
        """Send text as the user and wait for ``replies`` new messages from the bot."""
        before = len(self.telegram.sent_to(user_id))
        self.telegram.user_sends(user_id, text)
        await self.wait_messages(user_id, before + replies)
        return self.telegram.sent_to(user_id)[before:]

    async def press(self, user_id: int, message: SimMessage, label_or_data: str) -> int:
        data = next(
            (
                b["callback_data"]
                for b in message.buttons()
                if "callback_data" in b and label_or_data in (b["text"], b["callback_data"])
            ),
            None,
        )
        assert data is not None, f"no button {label_or_data!r} in {message.buttons()}"
        update_id = self.telegram.user_presses(user_id, message.message_id, data)
        await wait_for(lambda: self.telegram.callback_answered(update_id))
        return update_id

    async def wait_messages(
        self, chat_id: int, count: int, timeout: float = 30
    ) -> list[SimMessage]:
        await wait_for(lambda: len(self.telegram.sent_to(chat_id)) >= count, timeout)
        return self.telegram.sent_to(chat_id)

    def last(self, chat_id: int) -> SimMessage:
        return self.telegram.sent_to(chat_id)[-1]

    async def notify(self) -> None:
        """Run the notification sender now (the jobs would, a moment later)."""
        await self.container.sealer.flush()
        await self.dispatcher.flush()

    async def user_row(self, telegram_id: int) -> Any:
        from satshare.users import repository

        async with self.container.db.reading() as session:
            return await repository.by_external_id(session, "telegram", str(telegram_id))


async def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out waiting for the bot")


def text_of(message: SimMessage) -> str:
    return message.text or message.caption or ""


async def open_bot_stack(
    database_url: str,
    btcpay: BTCPaySim,
    *,
    clock: Clock | None = None,
    telegram: dict[str, Any] | None = None,
    **overrides: Any,
) -> BotStack:
    emulator = TelegramEmulator(TOKEN, chat_burst=20, chat_rate=20)
    telegram_server = await start_server(build_telegram_app(emulator))
    for chat_id in CHANNELS:
        emulator.add_chat(chat_id, f"Premium {chat_id}")
    admin = emulator.add_user(ADMIN_CHAT, first_name="Admin")
    admin.started = True
    port = free_port()
    settings = make_settings(
        database_url,
        btcpay.url,
        port,
        telegram={
            "token": TOKEN,
            "api_base_url": telegram_server.url,
            "admin_chat_ids": [ADMIN_CHAT],
            "support_contact": "@owner",
            **(telegram or {}),
        },
        **overrides,
    )
    container = build_container(settings, clock=clock or SystemClock())
    await prepare(container)
    api = create_app(container.api_services())
    server = await start_server(api, port=port)
    btcpay.emulator.add_webhook(
        "test-store",
        f"{server.url}/api/v1/webhooks/btcpay",
        settings.btcpay.webhook_secret.get_secret_value(),  # type: ignore[union-attr]
    )
    runtime = build_runtime(container.bot_services(), token=TOKEN, api_base_url=telegram_server.url)
    dispatcher = await start_bot(runtime)
    api.state.bot = runtime
    async with container.db.transaction() as session:
        issued = await apikeys.create(session, "test-admin", ("admin",), container.clock.now())
    return BotStack(
        container, server, emulator, telegram_server, btcpay, runtime, dispatcher, issued.plaintext
    )


async def close_bot_stack(stack: BotStack) -> None:
    with contextlib.suppress(TimeoutError):
        await stack.btcpay.emulator.wait_idle(timeout=5)
    await stop_bot(stack.runtime, stack.dispatcher)
    await stack.server.stop()
    await stack.telegram.aclose()
    await stack.telegram_server.stop()
    await stack.container.sealer.flush()
    async with stack.container.db.reading() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems
    await stack.container.aclose()
