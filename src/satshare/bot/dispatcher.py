"""Sends the outbox through Telegram: one sender for every notification.

Rate limits are the bot's rate limiter's job (``bot/ratelimiter.py``: the bot-wide rate
shared with every process, and PTB's wait for a 429, a few times); what is still refused is
rescheduled for after ``retry_after``. A 403 means the user blocked the bot: they are marked
unreachable and nothing more is sent to them. A message is marked sent right after Telegram
accepts it, so it is not sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from satshare import metrics
from satshare.aftercommit import Doorbell
from satshare.background import CoalescingRunner
from satshare.bot import access as links
from satshare.bot import keyboards, texts
from satshare.bot.broadcasts import markup as broadcast_markup
from satshare.bot.runtime import PLATFORM, BotRuntime, esc, sats, t
from satshare.broadcasts import flows as broadcast_flows
from satshare.broadcasts import service as broadcasts
from satshare.i18n import format_datetime
from satshare.notifications import flows as outbox
from satshare.notifications import messages
from satshare.notifications.flows import Claimed
from satshare.notifications.messages import (
    AccessResent,
    BroadcastPreview,
    CommissionEarned,
    CommissionReversed,
    InvoiceGone,
    InvoiceMismatch,
    Message,
    PaymentConfirmed,
    PaymentInvalidated,
    PaymentRefunded,
    PayoutApproval,
    PayoutChanged,
    PayoutContradiction,
    PayoutFacts,
    PayoutUnknown,
    ReferralRegistered,
    SaleNew,
    SubscriptionExpired,
    SubscriptionReminder,
    TrialStarted,
    WebhookFailing,
)
from satshare.payouts.destinations import mask
from satshare.payouts.models import PayoutStatus
from satshare.plans import flows as plan_flows
from satshare.users import flows as user_flows
from satshare.users.models import User

log = logging.getLogger(__name__)

#: Kinds for the admin chats besides every "admin." one.
ADMIN_KINDS = (SaleNew.kind,)
ADMIN_PREFIX = "admin."
BATCH = 50


#: An outbox row claimed for sending, as it is stored.
Outgoing = Claimed


def _retry_seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return value if isinstance(value, int | float) else value.total_seconds()


def _is_admin(kind: str) -> bool:
    return kind in ADMIN_KINDS or kind.startswith(ADMIN_PREFIX)


@dataclass(slots=True)
class Recipients:
    """A batch's recipients, read once before it is sent. A user found on the way to have
    blocked the bot is remembered, so their later messages in the batch are skipped, as
    when each message read its user (not sent into a second 403)."""

    users: Mapping[int, User]
    blocked: set[int] = field(default_factory=set)


class OutboxDispatcher:
    def __init__(self, runtime: BotRuntime, bot: Bot) -> None:
        self.runtime = runtime
        self.bot = bot
        self._runner = CoalescingRunner(self.dispatch_all, "sending notifications")
        self.kick = self._runner.kick
        self.flush = self._runner.flush
        self._listening: asyncio.Task[None] | None = None

    def listen(self, bell: Doorbell) -> None:
        """Send whenever ``bell`` rings (writers ring it after committing outbox rows)."""

        async def loop() -> None:
            while True:
                await bell.wait()
                self.kick()

        self._listening = asyncio.create_task(loop())

    async def aclose(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
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
        batch = await outbox.claim_due(self.runtime.db, now, BATCH)
        # The batch's recipients in one read, not one transaction per message (#15).
        wanted = {m.user_id for m in batch if m.chat_id is None and m.user_id is not None}
        recipients = Recipients(await user_flows.get_many(self.runtime.db, wanted))
        for message in batch:
            await self._deliver(message, recipients)
        return len(batch)

    # -- delivery -----------------------------------------------------------------------

    async def _deliver(self, message: Outgoing, recipients: Recipients) -> None:
        db = self.runtime.db
        now = self.runtime.now()
        if _is_admin(message.kind) and message.chat_id is None:
            await self._fan_out_to_admins(message)
            return
        recipient = self._recipient(message, recipients)
        if isinstance(recipient, str):
            await outbox.mark_skipped(db, message.id, recipient, now)
            metrics.outbox_finished("skipped")
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
            log.info(
                "Telegram asked to slow down: message %s is sent again at %s", message.id, retry_at
            )
            await outbox.retry_later(db, message.id, retry_at, str(exc))
            metrics.outbox_finished("retry")
            return
        except Forbidden as exc:
            if message.user_id is not None:
                recipients.blocked.add(message.user_id)
            await user_flows.unreachable(
                db, message.user_id, message.id, f"unreachable: {exc}", now
            )
            metrics.outbox_finished("skipped")
            return
        except BadRequest as exc:
            await outbox.mark_failed(db, message.id, f"refused: {exc}")
            metrics.outbox_finished("failed")
            return
        except (TimedOut, NetworkError) as exc:
            backoff = timedelta(seconds=min(600, 15 * 2**message.attempts))
            await outbox.retry_later(db, message.id, now + backoff, str(exc))
            metrics.outbox_finished("retry")
            return
        await outbox.mark_sent(db, message.id, self.runtime.now())
        metrics.outbox_finished("sent")

    async def _fan_out_to_admins(self, message: Outgoing) -> None:
        """One row per admin chat, so each admin gets it exactly once."""
        typed = messages.decode(message.kind, message.payload)
        now = self.runtime.now()
        await outbox.fan_out(
            self.runtime.db,
            message.id,
            typed,
            dedupe_key=message.dedupe_key,
            chat_ids=self.runtime.settings.admin_chat_ids,
            now=now,
        )

    @staticmethod
    def _recipient(message: Outgoing, recipients: Recipients) -> tuple[int, str] | str:
        """The chat and language to send to, or why there is none."""
        if message.chat_id is not None:
            return message.chat_id, "en"
        if message.user_id is None:
            return "no recipient"
        user = recipients.users.get(message.user_id)
        if user is None:
            return "user gone"
        if user.platform != PLATFORM or not (user.external_id or "").lstrip("-").isdigit():
            return f"not reachable on Telegram (platform {user.platform})"
        if user.unreachable_at is not None or user.id in recipients.blocked:
            return "the user blocked the bot"
        return int(user.external_id or 0), user.language

    async def _render(self, message: Outgoing, language: str) -> Rendered:
        typed = messages.decode(message.kind, message.payload)
        context = RenderContext(self.runtime, self.bot, language, message.user_id)
        renderer = RENDERERS.get(type(typed), _admin_alert)
        return await renderer(context, typed)


# -- rendering ------------------------------------------------------------------------------

Rendered = tuple[str, InlineKeyboardMarkup | None]


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What a renderer may use besides its message."""

    runtime: BotRuntime
    bot: Bot
    language: str
    #: The user the message is addressed to (None for admin chats).
    user_id: int | None


M = TypeVar("M", bound=Message)
Renderer = Callable[[RenderContext, M], Awaitable[Rendered]]

#: Message class → its renderer. A kind missing here (one this version does not know, or an
#: admin alert with no text of its own) gets the generic admin alert.
RENDERERS: dict[type[Message], Renderer[Any]] = {}


def renders(*kinds: type[M]) -> Callable[[Renderer[M]], Renderer[M]]:
    def register(renderer: Renderer[M]) -> Renderer[M]:
        for kind in kinds:
            RENDERERS[kind] = renderer
        return renderer

    return register


def _when(language: str, moment: datetime) -> str:
    """As the language writes dates (Babel); the messages name the zone themselves."""
    return format_datetime(language, moment, zone=False)


async def _plan_title(context: RenderContext, plan_id: str) -> str:
    plan = await plan_flows.get(context.runtime.db, plan_id)
    return plan.title if plan else plan_id


@renders(InvoiceMismatch, InvoiceGone, PaymentInvalidated)
async def _admin_alert(context: RenderContext, message: Message) -> Rendered:
    invoice = message.to_payload().get("invoice_id", "-")
    text = t(context.language, texts.ADMIN_ALERT, what=esc(message.kind), invoice=esc(invoice))
    return text, None


@renders(PaymentConfirmed)
async def _payment_confirmed(context: RenderContext, message: PaymentConfirmed) -> Rendered:
    language = context.language
    text = t(
        language,
        texts.PAYMENT_CONFIRMED,
        plan=esc(message.plan_title),
        until=_when(language, message.active_until),
    )
    return await _with_access_links(context, text, message.channels)


async def _with_access_links(
    context: RenderContext, text: str, channels: tuple[int, ...]
) -> Rendered:
    """``text`` with the buttons into the channels (made now, for this user)."""
    language = context.language
    if not channels or context.user_id is None:
        return text, None
    invite_links = await links.safe_links_for(
        context.runtime, context.bot, context.user_id, list(channels)
    )
    if invite_links is None:
        return text + "\n\n" + t(language, texts.ACCESS_UNAVAILABLE), None
    titles = await links.chat_titles(context.runtime, context.bot, list(channels))
    hint = links.access_hint(context.runtime, language)
    return text + "\n" + hint, keyboards.join_links(language, invite_links, titles)


@renders(AccessResent)
async def _access_resent(context: RenderContext, message: AccessResent) -> Rendered:
    text = t(
        context.language,
        texts.ACCESS_RESENT,
        plan=esc(message.plan_title),
        until=_when(context.language, message.active_until),
    )
    return await _with_access_links(context, text, message.channels)


@renders(TrialStarted)
async def _trial_started(context: RenderContext, message: TrialStarted) -> Rendered:
    language = context.language
    text = t(
        language,
        texts.TRIAL_STARTED,
        plan=esc(message.plan_title),
        until=_when(context.language, message.active_until),
    )
    if not message.channels or context.user_id is None:
        return text, None
    invite_links = await links.safe_links_for(
        context.runtime, context.bot, context.user_id, list(message.channels)
    )
    if invite_links is None:
        return text + "\n\n" + t(language, texts.ACCESS_UNAVAILABLE), None
    return text + "\n" + links.access_hint(context.runtime, language), keyboards.join_links(
        language, invite_links
    )


@renders(PaymentRefunded)
async def _payment_refunded(context: RenderContext, message: PaymentRefunded) -> Rendered:
    language, plan = context.language, esc(message.plan_title)
    if message.amount_stars is not None:  # Telegram returned the Stars
        return t(language, texts.REFUNDED, plan=plan, stars=message.amount_stars), None
    if message.amount_sats is not None:  # the owner paid a bitcoin sale back
        amount = sats(language, message.amount_sats)
        return t(language, texts.REFUNDED_SATS, plan=plan, amount=amount), None
    return t(language, texts.REFUNDED_BITCOIN, plan=plan), None


@renders(CommissionReversed)
async def _commission_reversed(context: RenderContext, message: CommissionReversed) -> Rendered:
    amount = sats(context.language, message.commission_sats)
    text = t(
        context.language,
        texts.COMMISSION_REVERSED,
        amount=amount,
        transaction=message.transaction_id,
    )
    return text, None


@renders(CommissionEarned)
async def _commission_earned(context: RenderContext, message: CommissionEarned) -> Rendered:
    return t(
        context.language, texts.COMMISSION, amount=sats(context.language, message.commission_sats)
    ), None


@renders(ReferralRegistered)
async def _referral_registered(context: RenderContext, message: ReferralRegistered) -> Rendered:
    username = message.referral_username
    if username and message.referral_platform == PLATFORM:
        name = f"@{username}"
    else:
        name = str(username or f"#{message.referral_user_id}")
    return t(context.language, texts.NEW_REFERRAL, name=esc(name)), None


@renders(SubscriptionExpired)
async def _subscription_expired(context: RenderContext, message: SubscriptionExpired) -> Rendered:
    plan = await _plan_title(context, message.plan_id)
    return t(context.language, texts.EXPIRED, plan=esc(plan)), None


@renders(SubscriptionReminder)
async def _subscription_reminder(context: RenderContext, message: SubscriptionReminder) -> Rendered:
    plan = await _plan_title(context, message.plan_id)
    until = _when(context.language, message.ends_at)
    text = t(context.language, texts.REMINDER, plan=esc(plan), until=until)
    return text, None


@renders(SaleNew)
async def _sale_new(context: RenderContext, message: SaleNew) -> Rendered:
    text = t(
        context.language,
        texts.ADMIN_SALE,
        plan=esc(message.plan_id),
        amount=sats(context.language, message.amount_sats),
        owner=sats(context.language, message.owner_sats),
        affiliate=sats(context.language, message.affiliate_sats),
    )
    return text, None


def _payout_values(language: str, payout: PayoutFacts) -> dict[str, object]:
    return {
        "id": payout.payout_id,
        "amount": sats(language, payout.amount_sats),
        "send": sats(language, payout.send_sats),
        "destination": esc(mask(payout.destination)),
        "reason": esc(payout.failure or t(language, texts.PAYOUT_NO_REASON)),
    }


def _affiliate(payout: PayoutFacts) -> object:
    return "?" if payout.user_id is None else payout.user_id


@renders(PayoutApproval)
async def _payout_approval(context: RenderContext, message: PayoutApproval) -> Rendered:
    language, payout = context.language, message.payout
    text = t(
        language,
        texts.ADMIN_PAYOUT_APPROVAL,
        user=_affiliate(payout),
        **_payout_values(language, payout),
    )
    return text, keyboards.payout_decision(language, payout.payout_id)


@renders(PayoutUnknown)
async def _payout_unknown(context: RenderContext, message: PayoutUnknown) -> Rendered:
    language, payout = context.language, message.payout
    text = t(
        language,
        texts.ADMIN_PAYOUT_UNKNOWN,
        user=_affiliate(payout),
        **_payout_values(language, payout),
    )
    return text, None


@renders(WebhookFailing)
async def _webhook_failing(context: RenderContext, message: WebhookFailing) -> Rendered:
    text = t(
        context.language, texts.ADMIN_WEBHOOK_FAILING, id=message.endpoint_id, url=esc(message.url)
    )
    return text, None


@renders(PayoutContradiction)
async def _payout_contradiction(context: RenderContext, message: PayoutContradiction) -> Rendered:
    language, payout = context.language, message.payout
    text = t(
        language,
        texts.ADMIN_PAYOUT_CONTRADICTION,
        user=_affiliate(payout),
        previous=esc(message.previous_status),
        said=esc(message.provider_says),
        **_payout_values(language, payout),
    )
    return text, None


PAYOUT_TEMPLATES: dict[str, str] = {
    PayoutStatus.AWAITING_APPROVAL: texts.PAYOUT_AWAITING_APPROVAL,
    PayoutStatus.APPROVED: texts.PAYOUT_APPROVED,
    PayoutStatus.SENDING: texts.PAYOUT_SENDING,
    PayoutStatus.FAILED: texts.PAYOUT_FAILED,
    PayoutStatus.CANCELED: texts.PAYOUT_CANCELED,
    PayoutStatus.UNKNOWN: texts.PAYOUT_UNKNOWN,
}


@renders(PayoutChanged)
async def _payout_changed(context: RenderContext, message: PayoutChanged) -> Rendered:
    """The affiliate's notice of their payout's new state."""
    language, payout = context.language, message.payout
    values = _payout_values(language, payout)
    status = payout.status
    if status == PayoutStatus.PAID:
        text = t(language, texts.PAYOUT_PAID, proof=esc(payout.proof or "-"), **values)
        if payout.fee_sats:
            text += "\n" + t(language, texts.PAYOUT_PAID_FEE, fee=sats(language, payout.fee_sats))
        return text, None
    if payout.instant and status in (PayoutStatus.APPROVED, PayoutStatus.FAILED):
        instant = (
            texts.PAYOUT_INSTANT if status == PayoutStatus.APPROVED else texts.PAYOUT_INSTANT_FAILED
        )
        return t(language, instant, **values), None
    return t(language, PAYOUT_TEMPLATES.get(status, texts.PAYOUT_UNKNOWN), **values), None


@renders(BroadcastPreview)
async def _broadcast_preview(context: RenderContext, message: BroadcastPreview) -> Rendered:
    """The broadcast as its recipients in ``message.language`` will see it, under a header
    (in the admin's language) saying what it is. A photo is named, not sent."""
    broadcast = await broadcast_flows.get(context.runtime.db, message.broadcast_id)
    if broadcast is None:
        return t(context.language, texts.BROADCAST_GONE, id=message.broadcast_id), None
    content = broadcasts.content_of(broadcast)
    parts = [
        t(
            context.language,
            texts.BROADCAST_PREVIEW,
            id=broadcast.id,
            lang=message.language,
            recipients=broadcast.recipients,
        )
    ]
    if content.photo:
        parts.append(t(context.language, texts.BROADCAST_PREVIEW_PHOTO, photo=esc(content.photo)))
    parts.append(content.text_for(message.language))
    return "\n\n".join(parts), broadcast_markup(content, message.language)
