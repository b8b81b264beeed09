"""Broadcast tests' rig: a migrated database with users (and their subscriptions, invoices,
referrals) written through the domain services or as rows, and the Telegram Bot API
emulator on loopback HTTP with a python-telegram-bot ``ExtBot`` paced like SatShare's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from limits.aio.storage import MemoryStorage
from telegram.ext import ExtBot

from satshare.bot.ratelimiter import SharedRateLimiter
from satshare.clock import FrozenClock
from satshare.db import Database
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.plans import service as plans
from satshare.ratelimits.shared import SharedRateLimit
from satshare.sim.telegram import TelegramEmulator
from satshare.sim.telegram import build_app as build_telegram_app
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.users import service as users
from tests.servers import RunningServer, start_server

TOKEN = "7000000002:AAH-broadcast-test-token-0123456789"
PLANS = (
    plans.PlanSpec(
        id="monthly",
        title="Monthly",
        description="",
        price_sats=50_000,
        duration_days=30,
        channels=(),
    ),
    plans.PlanSpec(
        id="yearly",
        title="Yearly",
        description="",
        price_sats=500_000,
        duration_days=365,
        channels=(),
    ),
)


@dataclass
class Rig:
    db: Database
    clock: FrozenClock
    telegram: TelegramEmulator
    server: RunningServer
    bot: ExtBot[int]
    #: Telegram id → SatShare user id.
    users: dict[int, int] = field(default_factory=dict)
    _invoices: int = 0

    async def user(
        self,
        telegram_id: int,
        *,
        language: str = "en",
        referrer: int | None = None,
        started: bool = True,
        platform: str = "telegram",
    ) -> int:
        """A user who started the bot (on the emulator too), registered as /start does."""
        if platform == "telegram":
            self.telegram.add_user(
                telegram_id, first_name=f"U{telegram_id}", language_code=language
            )
            self.telegram.users[telegram_id].started = started
        async with self.db.transaction() as session:
            user = await users.register(
                session,
                users.Registration(
                    platform=platform,
                    external_id=str(telegram_id),
                    username=f"u{telegram_id}",
                    language=language,
                    referral=None if referrer is None else str(self.users[referrer]),
                ),
                self.clock.now(),
            )
        self.users[telegram_id] = user.id
        return user.id

    async def subscription(
        self,
        telegram_id: int,
        plan_id: str,
        status: SubscriptionStatus,
        ends_in: timedelta | None,
        *,
        paid: bool = True,
    ) -> None:
        """A subscription row as settlement leaves it (and its paid invoice)."""
        now = self.clock.now()
        user_id = self.users[telegram_id]
        async with self.db.transaction() as session:
            subscription = Subscription(
                user_id=user_id,
                plan_id=plan_id,
                status=status,
                started_at=None if ends_in is None else now - timedelta(days=30),
                ends_at=None if ends_in is None else now + ends_in,
                created_at=now,
                updated_at=now,
            )
            session.add(subscription)
            await session.flush()
            self._invoices += 1
            session.add(
                Invoice(
                    id=f"inv_test_{self._invoices}",
                    provider="btcpay",
                    provider_invoice_id=f"p{self._invoices}",
                    subscription_id=subscription.id,
                    user_id=user_id,
                    plan_id=plan_id,
                    amount_sats=50_000,
                    paid_sats=50_000 if paid else 0,
                    status=InvoiceStatus.SETTLED if paid else InvoiceStatus.EXPIRED,
                    expires_at=now,
                    created_at=now,
                    updated_at=now,
                    settled_at=now if paid else None,
                )
            )

    def received(self, telegram_id: int) -> list[Any]:
        return self.telegram.sent_to(telegram_id)


async def open_rig(
    database_url: str,
    *,
    rate: float = 25.0,
    global_rate: float = 30.0,
    now: datetime | None = None,
) -> Rig:
    db = Database(database_url)
    clock = FrozenClock(now)
    async with db.transaction() as session:
        await plans.sync(session, list(PLANS), clock.now())
    emulator = TelegramEmulator(TOKEN, global_rate=global_rate)
    server = await start_server(build_telegram_app(emulator))
    # Paced as bot/app.py paces SatShare's bot on SQLite (its rate counted in memory).
    bot: ExtBot[int] = ExtBot(
        TOKEN,
        base_url=f"{server.url}/bot",
        rate_limiter=SharedRateLimiter(SharedRateLimit(MemoryStorage(), rate, identity="test")),
    )
    await bot.initialize()
    return Rig(db, clock, emulator, server, bot)


async def close_rig(rig: Rig) -> None:
    await rig.bot.shutdown()
    await rig.telegram.aclose()
    await rig.server.stop()
    await rig.db.dispose()
