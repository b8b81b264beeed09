"""The bot's running pieces: the PTB application, the services it may use, the handlers'
``BotContext``, and shared helpers."""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram import Update
from telegram import User as TelegramUser
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackContext, ExtBot

from satshare.aftercommit import Doorbell
from satshare.bot import texts
from satshare.bot.burst import Bursts
from satshare.clock import Clock
from satshare.config import DEFAULT_BRAND, Settings, TelegramSettings
from satshare.db import Database
from satshare.errors import Conflict, ServiceUnavailable
from satshare.i18n import Plural, format_number, pick_language, translate
from satshare.payments.flows import PaymentsContext
from satshare.payouts.flows import PayoutsContext
from satshare.plans.models import Plan
from satshare.ratelimits.shared import SharedRateLimit
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
    #: Telegram's bot-wide message rate, counted with every other SatShare process.
    telegram_rate: SharedRateLimit


@dataclass
class BotRuntime:
    services: BotServices
    settings: TelegramSettings
    application: Application  # type: ignore[type-arg]
    username: str = "satshare_bot"
    #: branding.name, else the bot's own name (getMe), once the bot has started.
    shop_name: str = DEFAULT_BRAND
    #: (user id, invoice id) → last refresh, so "Check payment" cannot hammer the processor.
    recent_checks: dict[str, float] = field(default_factory=dict)
    #: Channel titles as Telegram gave them (getChat), for naming join buttons.
    chat_titles: dict[int, str] = field(default_factory=dict)
    #: Long polling: the task that polls while this process holds the polling lock.
    polling: asyncio.Task[None] | None = None
    #: The questions concurrent handlers share one answer to (the update guard, first
    #: contact): see ``bot/burst.py``.
    bursts: Bursts = field(init=False)

    def __post_init__(self) -> None:
        self.bursts = Bursts(self.services.db, self.services.clock.now)

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

    async def refund_star_payment(self, telegram_user_id: int, charge_id: str) -> None:
        """``payments.ports.StarsRefunds``: return a Stars payment through the Bot API, with
        Telegram's answers turned into the domain's errors."""
        try:
            await self.application.bot.refund_star_payment(telegram_user_id, charge_id)
        except BadRequest as exc:
            # Refunded already (a retry after a crash between Telegram and our commit): done.
            if "ALREADY_REFUNDED" not in str(exc).upper():
                raise Conflict(f"Telegram refused the refund: {exc}") from exc
        except TelegramError as exc:
            raise ServiceUnavailable(f"Telegram did not answer the refund: {exc}") from exc


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


def t(language: str, message: str | Plural, **values: object) -> str:
    return translate(language, message, **values)


def plan_wording(runtime: BotRuntime, plan: Plan, language: str) -> tuple[str, str]:
    """A plan's title and description in ``language`` (plans[].translations), else as set."""
    wording = runtime.config.plan_text(plan.id, language)
    if wording is None:
        return plan.title, plan.description
    return wording.title, wording.description or plan.description


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def display_name(user: User) -> str:
    return f"@{user.username}" if user.username else f"#{user.id}"


def plan_price(language: str, plan: Plan) -> str:
    """What a plan costs, as the buyer will read it: sats, or its fiat price."""
    if plan.price_sats is not None:
        return translate(language, texts.AMOUNT_SATS, amount=sats(language, plan.price_sats))
    if plan.fiat_amount is not None:
        return f"{plan.fiat_amount} {plan.fiat_currency}"
    return f"{plan.price_stars} Stars"


def sats(language: str, amount: int) -> str:
    """An amount of sats as ``language`` writes numbers: 50,000 in English, 50 000 in Russian."""
    return format_number(language, amount)


async def ensure_user(
    runtime: BotRuntime, tg_user: TelegramUser, *, referral: str | None = None
) -> tuple[User, bool, str | None]:
    """The SatShare user behind a Telegram user, registering on first contact.

    Returns (user, created, referral_problem) where the problem is None, "own", "unknown" or
    "already" (the referrer is set once, at registration only).
    """
    registration = users.Registration(
        platform=PLATFORM,
        external_id=str(tg_user.id),
        username=tg_user.username,
        language=pick_language(tg_user.language_code),
        referral=referral,
    )
    contact = await runtime.bursts.first_contact(registration)
    return contact.user, contact.created, contact.referral_problem


async def user_of(update: Update, context: BotContext) -> User:
    assert update.effective_user is not None
    user, _, _ = await ensure_user(context.runtime, update.effective_user)
    return user
