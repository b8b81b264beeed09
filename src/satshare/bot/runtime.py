"""The bot's running pieces: the PTB application, the services it may use, the handlers'
``BotContext``, and shared helpers."""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from telegram import Update
from telegram import User as TelegramUser
from telegram.ext import Application, CallbackContext, ExtBot

from satshare.aftercommit import Doorbell
from satshare.bot import texts
from satshare.clock import Clock
from satshare.config import Settings, TelegramSettings
from satshare.db import Database
from satshare.i18n import pick_language, translate
from satshare.payments.flows import PaymentsContext
from satshare.payouts.flows import PayoutsContext
from satshare.plans.models import Plan
from satshare.users import repository as users_repo
from satshare.users import service as users
from satshare.users.models import User

log = logging.getLogger(__name__)

PLATFORM = "telegram"


@dataclass(frozen=True, slots=True)
class BotServices:
    """What the bot may use, handed to ``build_runtime`` by the composition root."""

    config: Settings
    db: Database
    clock: Clock
    payments: PaymentsContext
    payouts: PayoutsContext
    #: Rung after a commit that queued outbox messages: the sender listens to it.
    outbox: Doorbell


@dataclass
class BotRuntime:
    services: BotServices
    settings: TelegramSettings
    application: Application  # type: ignore[type-arg]
    username: str = "satshare_bot"
    shop_name: str = "SatShare"
    #: (user id, invoice id) → last refresh, so "Check payment" cannot hammer the processor.
    recent_checks: dict[str, float] = field(default_factory=dict)
    #: Long polling: the task that polls while this process holds the polling lock.
    polling: asyncio.Task[None] | None = None

    @property
    def config(self) -> Settings:
        return self.services.config

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def payments(self) -> PaymentsContext:
        return self.services.payments

    @property
    def payouts(self) -> PayoutsContext:
        return self.services.payouts

    @property
    def public_checkout(self) -> bool:
        """Telegram refuses URL buttons to non-public hosts; only https links become buttons."""
        return self.config.server.base_url.startswith("https://")

    def referral_link(self, code: str) -> str:
        return f"https://t.me/{self.username}?start=ref_{code}"

    def now(self) -> datetime:
        return self.services.clock.now()


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The context every handler receives (``ContextTypes(context=BotContext)``): the bot's
    services by name, instead of a lookup in ``bot_data``."""

    @property
    def runtime(self) -> BotRuntime:
        runtime: BotRuntime = self.application.bot_data["runtime"]
        return runtime

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def payments(self) -> PaymentsContext:
        return self.runtime.payments

    @property
    def payouts(self) -> PayoutsContext:
        return self.runtime.payouts

    def now(self) -> datetime:
        return self.runtime.now()


def t(language: str, message: str, **values: object) -> str:
    return translate(language, message, **values)


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def display_name(user: User) -> str:
    return f"@{user.username}" if user.username else f"#{user.id}"


def plan_price(language: str, plan: Plan) -> str:
    """What a plan costs, as the buyer will read it: sats, or its fiat price."""
    if plan.price_sats is not None:
        return translate(language, texts.AMOUNT_SATS, amount=sats(plan.price_sats))
    if plan.fiat_amount is not None:
        return f"{plan.fiat_amount} {plan.fiat_currency}"
    return f"{plan.price_stars} Stars"


def sats(amount: int) -> str:
    return f"{amount:,}".replace(",", "\u202f")  # thin space: readable in both languages


async def ensure_user(
    runtime: BotRuntime, tg_user: TelegramUser, *, referral: str | None = None
) -> tuple[User, bool, str | None]:
    """The SatShare user behind a Telegram user, registering on first contact.

    Returns (user, created, referral_problem) where the problem is None, "own", "unknown" or
    "already" (the referrer is set once, at registration only).
    """
    external_id = str(tg_user.id)
    db = runtime.db
    async with db.reading() as session:
        existing = await users_repo.by_external_id(session, PLATFORM, external_id)
    if existing is not None:
        if existing.unreachable_at is not None:
            async with db.transaction() as session:
                user = await users_repo.get(session, existing.id)
                assert user is not None
                await users.mark_reachable(session, user, runtime.now())
        problem = None
        if referral is not None:
            problem = "own" if referral.lower() == existing.referral_code else "already"
        return existing, False, problem
    problem = None
    if referral is not None:
        async with db.reading() as session:
            referrer = await users_repo.by_referral_code(session, referral.lower())
        if referrer is None:
            problem, referral = "unknown", None
    registration = users.Registration(
        platform=PLATFORM,
        external_id=external_id,
        username=tg_user.username,
        language=pick_language(tg_user.language_code),
        referral=referral,
    )
    try:
        async with db.transaction() as session:
            user = await users.register(session, registration, runtime.now())
    except IntegrityError:  # the same user's other update registered them a moment ago
        async with db.reading() as session:
            raced = await users_repo.by_external_id(session, PLATFORM, external_id)
        assert raced is not None
        return raced, False, problem
    return user, True, problem


async def user_of(update: Update, context: BotContext) -> User:
    assert update.effective_user is not None
    user, _, _ = await ensure_user(context.runtime, update.effective_user)
    return user
