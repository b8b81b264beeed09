"""The bot's running pieces: the PTB application, the container, and shared helpers."""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from telegram import Update
from telegram import User as TelegramUser
from telegram.ext import Application, ContextTypes

from satshare.bot import texts
from satshare.config import TelegramSettings
from satshare.container import Container
from satshare.i18n import Plural, pick_language, translate
from satshare.plans.models import Plan
from satshare.users import repository as users_repo
from satshare.users import service as users
from satshare.users.models import User

log = logging.getLogger(__name__)

PLATFORM = "telegram"


@dataclass
class BotRuntime:
    container: Container
    settings: TelegramSettings
    application: Application  # type: ignore[type-arg]
    username: str = "satshare_bot"
    shop_name: str = "SatShare"
    #: (user id, invoice id) → last refresh, so "Check payment" cannot hammer the processor.
    recent_checks: dict[str, float] = field(default_factory=dict)
    #: Channel titles as Telegram gave them (getChat), for naming join buttons.
    chat_titles: dict[int, str] = field(default_factory=dict)

    @property
    def public_checkout(self) -> bool:
        """Telegram refuses URL buttons to non-public hosts; only https links become buttons."""
        return self.container.settings.server.base_url.startswith("https://")

    def referral_link(self, code: str) -> str:
        return f"https://t.me/{self.username}?start=ref_{code}"

    def now(self) -> datetime:
        return self.container.clock.now()


def runtime_of(context: ContextTypes.DEFAULT_TYPE) -> BotRuntime:
    runtime: BotRuntime = context.application.bot_data["runtime"]
    return runtime


def t(language: str, message: str | Plural, **values: object) -> str:
    return translate(language, message, **values)


def plan_wording(runtime: BotRuntime, plan: Plan, language: str) -> tuple[str, str]:
    """A plan's title and description in ``language`` (plans[].translations), else as set."""
    wording = runtime.container.settings.plan_text(plan.id, language)
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
    db = runtime.container.db
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


async def user_of(update: Update, context: ContextTypes.DEFAULT_TYPE) -> User:
    assert update.effective_user is not None
    user, _, _ = await ensure_user(runtime_of(context), update.effective_user)
    return user
