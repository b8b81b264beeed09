"""Sends the outbox through Telegram: one sender for every notification.

Rate limits are PTB's AIORateLimiter's job (it waits out a 429 a few times); what is still
refused is rescheduled for after ``retry_after``. A 403 means the user blocked the bot: they
are marked unreachable and nothing more is sent to them. A message is marked sent right
after Telegram accepts it, so it is not sent twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from satshare.background import CoalescingRunner
from satshare.bot import access as links
from satshare.bot import keyboards, texts
from satshare.bot.runtime import PLATFORM, BotRuntime, esc, sats, t
from satshare.notifications import service as outbox
from satshare.payouts.destinations import mask
from satshare.plans import service as plans
from satshare.users import repository as users_repo
from satshare.users import service as users

log = logging.getLogger(__name__)

ADMIN_KINDS = ("sale.new",)
ADMIN_PREFIX = "admin."
BATCH = 50


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: int
    kind: str
    user_id: int | None
    chat_id: int | None
    payload: dict[str, Any]
    dedupe_key: str
    attempts: int


def _retry_seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return value if isinstance(value, int | float) else value.total_seconds()


def _is_admin(kind: str) -> bool:
    return kind in ADMIN_KINDS or kind.startswith(ADMIN_PREFIX)


class OutboxDispatcher:
    def __init__(self, runtime: BotRuntime, bot: Bot) -> None:
        self.runtime = runtime
        self.bot = bot
        self._runner = CoalescingRunner(self.dispatch_all, "sending notifications")
        self.kick = self._runner.kick
        self.flush = self._runner.flush

    async def aclose(self) -> None:
        await self._runner.aclose()

    async def dispatch_all(self) -> int:
        """Send until nothing is due (fan-out rows written on the way included)."""
        total = 0
        while True:
            sent = await self.dispatch_once()
            total += sent
            if sent == 0:
                return total

    async def dispatch_once(self) -> int:
        now = self.runtime.now()
        async with self.runtime.container.db.transaction() as session:
            rows = await outbox.claim_due(session, now, BATCH)
            batch = [
                Outgoing(
                    r.id, r.kind, r.user_id, r.chat_id, dict(r.payload), r.dedupe_key, r.attempts
                )
                for r in rows
            ]
        for message in batch:
            await self._deliver(message)
        return len(batch)

    # -- delivery -----------------------------------------------------------------------

    async def _deliver(self, message: Outgoing) -> None:
        db = self.runtime.container.db
        now = self.runtime.now()
        if _is_admin(message.kind) and message.chat_id is None:
            await self._fan_out_to_admins(message)
            return
        recipient = await self._recipient(message)
        if isinstance(recipient, str):
            async with db.transaction() as session:
                await outbox.mark_skipped(session, message.id, recipient, now)
            return
        chat_id, language = recipient
        try:
            text, markup = await self._render(message, language)
            await self.bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                disable_web_page_preview=True,
            )
        except RetryAfter as exc:
            retry_at = now + timedelta(seconds=_retry_seconds(exc))
            async with db.transaction() as session:
                await outbox.retry_later(session, message.id, retry_at, str(exc))
            return
        except Forbidden as exc:
            async with db.transaction() as session:
                if message.user_id is not None:
                    await users.mark_unreachable(session, message.user_id, now)
                await outbox.mark_skipped(session, message.id, f"unreachable: {exc}", now)
            return
        except BadRequest as exc:
            async with db.transaction() as session:
                await outbox.mark_failed(session, message.id, f"refused: {exc}")
            return
        except (TimedOut, NetworkError) as exc:
            backoff = timedelta(seconds=min(600, 15 * 2**message.attempts))
            async with db.transaction() as session:
                await outbox.retry_later(session, message.id, now + backoff, str(exc))
            return
        async with db.transaction() as session:
            await outbox.mark_sent(session, message.id, self.runtime.now())

    async def _fan_out_to_admins(self, message: Outgoing) -> None:
        """One row per admin chat, so each admin gets it exactly once."""
        now = self.runtime.now()
        admins = self.runtime.settings.admin_chat_ids
        async with self.runtime.container.db.transaction() as session:
            for chat_id in admins:
                await outbox.enqueue(
                    session,
                    kind=message.kind,
                    dedupe_key=f"{message.dedupe_key}:chat:{chat_id}",
                    payload=message.payload,
                    chat_id=chat_id,
                    now=now,
                )
            if admins:
                await outbox.mark_sent(session, message.id, now)
            else:
                await outbox.mark_skipped(session, message.id, "no telegram.admin_chat_ids", now)

    async def _recipient(self, message: Outgoing) -> tuple[int, str] | str:
        if message.chat_id is not None:
            return message.chat_id, "en"
        if message.user_id is None:
            return "no recipient"
        async with self.runtime.container.db.reading() as session:
            user = await users_repo.get(session, message.user_id)
        if user is None:
            return "user gone"
        if user.platform != PLATFORM or not (user.external_id or "").lstrip("-").isdigit():
            return f"not reachable on Telegram (platform {user.platform})"
        if user.unreachable_at is not None:
            return "the user blocked the bot"
        return int(user.external_id or 0), user.language

    async def _render(
        self, message: Outgoing, language: str
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        p = message.payload
        kind = message.kind
        if kind == "payment.confirmed":
            return await self._payment_confirmed(message, language)
        if kind == "payment.refunded":
            return (
                t(
                    language,
                    texts.REFUNDED,
                    plan=esc(p.get("plan_title")),
                    stars=p.get("amount_stars"),
                ),
                None,
            )
        if kind == "commission.earned":
            return t(language, texts.COMMISSION, amount=sats(int(p["commission_sats"]))), None
        if kind == "referral.registered":
            username = p.get("referral_username")
            if username and p.get("referral_platform") == PLATFORM:
                name = f"@{username}"
            else:
                name = str(username or f"#{p['referral_user_id']}")
            return t(language, texts.NEW_REFERRAL, name=esc(name)), None
        if kind == "subscription.expired":
            return t(language, texts.EXPIRED, plan=esc(await self._plan_title(p))), None
        if kind == "subscription.reminder":
            until = datetime.fromisoformat(str(p["ends_at"])).strftime("%Y-%m-%d %H:%M")
            return t(
                language, texts.REMINDER, plan=esc(await self._plan_title(p)), until=until
            ), None
        if kind == "admin.payout_approval":
            markup = keyboards.payout_decision(language, int(p["payout_id"]))
            return payout_text(language, kind, p), markup
        if kind.startswith("payout.") or kind.startswith("admin.payout_"):
            return payout_text(language, kind, p), None
        if kind == "sale.new":
            return (
                t(
                    language,
                    texts.ADMIN_SALE,
                    plan=esc(p.get("plan_id")),
                    amount=sats(int(p["amount_sats"])),
                    owner=sats(int(p["owner_sats"])),
                    affiliate=sats(int(p["affiliate_sats"])),
                ),
                None,
            )
        return (
            t(language, texts.ADMIN_ALERT, what=esc(kind), invoice=esc(p.get("invoice_id", "-"))),
            None,
        )

    async def _plan_title(self, payload: dict[str, Any]) -> str:
        async with self.runtime.container.db.reading() as session:
            plan = await plans.get(session, str(payload.get("plan_id")))
        return plan.title if plan else str(payload.get("plan_id"))

    async def _payment_confirmed(
        self, message: Outgoing, language: str
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        p = message.payload
        until = datetime.fromisoformat(str(p["active_until"])).strftime("%Y-%m-%d %H:%M")
        text = t(language, texts.PAYMENT_CONFIRMED, plan=esc(p.get("plan_title")), until=until)
        chats = [int(c) for c in p.get("channels") or []]
        if not chats or message.user_id is None:
            return text, None
        invite_links = await links.safe_links_for(self.runtime, self.bot, message.user_id, chats)
        if invite_links is None:
            return text + "\n\n" + t(language, texts.ACCESS_UNAVAILABLE), None
        return text + "\n" + links.access_hint(self.runtime, language), keyboards.join_links(
            language, invite_links
        )


def payout_text(language: str, kind: str, p: dict[str, Any]) -> str:
    """The message for a payout's state change (and the admins' approval request)."""
    destination = esc(mask(p["destination"]))
    values = {
        "id": p["payout_id"],
        "amount": sats(int(p["amount_sats"])),
        "send": sats(int(p["send_sats"])),
        "destination": destination,
        "reason": esc(p.get("failure") or t(language, texts.PAYOUT_NO_REASON)),
    }
    status = kind.removeprefix("payout.")
    if kind == "admin.payout_approval":
        return t(language, texts.ADMIN_PAYOUT_APPROVAL, user=p.get("user_id", "?"), **values)
    if kind == "admin.payout_unknown":
        return t(language, texts.ADMIN_PAYOUT_UNKNOWN, user=p.get("user_id", "?"), **values)
    if kind == "admin.payout_contradiction":
        return t(
            language,
            texts.ADMIN_PAYOUT_CONTRADICTION,
            user=p.get("user_id", "?"),
            previous=esc(p.get("previous_status")),
            said=esc(p.get("provider_says")),
            **values,
        )
    if status == "paid":
        text = t(language, texts.PAYOUT_PAID, proof=esc(p.get("proof") or "-"), **values)
        if int(p.get("fee_sats") or 0):
            text += "\n" + t(language, texts.PAYOUT_PAID_FEE, fee=sats(int(p["fee_sats"])))
        return text
    if p.get("instant") and status in ("approved", "failed"):
        template = texts.PAYOUT_INSTANT if status == "approved" else texts.PAYOUT_INSTANT_FAILED
        return t(language, template, **values)
    templates = {
        "awaiting_approval": texts.PAYOUT_AWAITING_APPROVAL,
        "approved": texts.PAYOUT_APPROVED,
        "sending": texts.PAYOUT_SENDING,
        "failed": texts.PAYOUT_FAILED,
        "canceled": texts.PAYOUT_CANCELED,
        "unknown": texts.PAYOUT_UNKNOWN,
    }
    return t(language, templates.get(status, texts.PAYOUT_UNKNOWN), **values)
