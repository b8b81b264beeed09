"""Promo codes and free trials in the bot (#13).

A code comes from a deep link (``/start promo_<CODE>``) or "I have a promo code" on the plan
screen; it is checked at once (a friendly reason if it cannot be used), remembered for this
user's next bitcoin purchase, and reserved only when the invoice is made (``purchase`` in
``buying``). A plan with ``trial_days`` shows a "Free trial" button while this person has not
used it; the trial's channels arrive as a message from the outbox, like a payment's.
"""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from satshare.bot import keyboards, texts
from satshare.bot.handlers.ui import answer, expect_input, show
from satshare.bot.runtime import BotContext, esc, plan_wording, sats, t, user_of
from satshare.errors import InvalidRequest
from satshare.payments import offers
from satshare.payments.models import Invoice
from satshare.plans import flows as plan_flows
from satshare.plans.models import Plan
from satshare.promos import service as promos
from satshare.promos.models import PromoCode, PromoKind
from satshare.trials import flows as trials
from satshare.trials.service import TrialRefused
from satshare.users.models import User

PROMO_START = "promo_"
PROMO_ASK = "promo:ask"
TRIAL = "trial:"
#: What the bot is waiting for after "I have a promo code" (see ``ui.expect_input``).
AWAITING_PROMO = "promo"
#: The code this user gave, for their next purchase (PTB's per-user data).
PROMO_KEY = "promo_code"

REFUSALS: dict[str, str] = {
    promos.Refusal.UNKNOWN: texts.PROMO_UNKNOWN,
    promos.Refusal.DISABLED: texts.PROMO_DISABLED,
    promos.Refusal.NOT_YET: texts.PROMO_NOT_YET,
    promos.Refusal.EXPIRED: texts.PROMO_EXPIRED,
    promos.Refusal.USED_UP: texts.PROMO_USED_UP,
    promos.Refusal.WRONG_PLAN: texts.PROMO_WRONG_PLAN,
    promos.Refusal.ALREADY_USED: texts.PROMO_ALREADY_USED,
    promos.Refusal.FIRST_PURCHASE_ONLY: texts.PROMO_FIRST_PURCHASE_ONLY,
}
TRIAL_REFUSALS: dict[str, str] = {
    "used": texts.TRIAL_USED,
    "subscribed": texts.TRIAL_SUBSCRIBED,
    "no_trial": texts.TRIAL_NONE,
}


def promo_of(context: BotContext) -> str | None:
    value = context.user_data.get(PROMO_KEY) if context.user_data is not None else None
    return value if isinstance(value, str) else None


def forget_promo(context: BotContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(PROMO_KEY, None)


def refusal(language: str, code: str, reason: str) -> str:
    why = t(language, REFUSALS.get(reason, texts.PROMO_UNKNOWN))
    return t(language, texts.PROMO_REFUSED, code=esc(promos.normalise(code)), reason=why)


def _benefit(language: str, promo: PromoCode) -> str:
    if promo.kind == PromoKind.PERCENT:
        return t(language, texts.PROMO_PERCENT, value=promo.value)
    if promo.kind == PromoKind.FIXED_SATS:
        return t(language, texts.PROMO_FIXED, value=sats(language, promo.value))
    return t(language, texts.PROMO_DAYS, value=promo.value)


def invoice_lines(language: str, invoice: Invoice) -> list[str]:
    """What the invoice message adds about a code and extra days."""
    lines = []
    if invoice.promo_code and invoice.discount_sats:
        lines.append(
            t(
                language,
                texts.INVOICE_PROMO,
                code=esc(invoice.promo_code),
                discount=sats(language, invoice.discount_sats),
                original=sats(language, invoice.original_sats or invoice.amount_sats),
            )
        )
    if invoice.bonus_days:
        lines.append(t(language, texts.INVOICE_BONUS_DAYS, days=invoice.bonus_days))
    return lines


async def plans_markup(
    context: BotContext, user: User, available: Sequence[Plan]
) -> InlineKeyboardMarkup:
    """The plan buttons, a "Free trial" for each plan this person may still try, and
    "I have a promo code", above the way back."""
    language = user.language
    titles = {plan.id: plan_wording(context.runtime, plan, language)[0] for plan in available}
    base = keyboards.plans(language, available, titles)
    rows = [list(row) for row in base.inline_keyboard]
    back = rows.pop()
    # A plan's id longer than a callback's 64 bytes allow gets no trial button.
    fitting = [p.id for p in available if len(f"{TRIAL}{p.id}".encode()) <= 64]
    offered = set(await trials.offered(context.db, user, fitting))
    for plan in available:
        if plan.id in offered:
            label = t(language, texts.BTN_TRIAL, title=titles[plan.id], days=plan.trial_days)
            rows.append([InlineKeyboardButton(label, callback_data=f"{TRIAL}{plan.id}")])
    if available:
        rows.append([InlineKeyboardButton(t(language, texts.BTN_PROMO), callback_data=PROMO_ASK)])
    rows.append(back)
    return InlineKeyboardMarkup(rows)


async def _show_plans(update: Update, context: BotContext, user: User, lead: str) -> None:
    available = await plan_flows.list_active(context.db)
    title = t(user.language, texts.PLANS_TITLE if available else texts.PLANS_EMPTY)
    markup = await plans_markup(context, user, available)
    await show(update, context, f"{lead}\n\n{title}", markup)


async def _take_code(update: Update, context: BotContext, user: User, code: str) -> bool:
    """Check the code for this user; remember it (True) or say why not (False)."""
    try:
        promo = await offers.check_code(context.db, code, user_id=user.id, now=context.now())
    except promos.PromoRefused as exc:
        await show(update, context, refusal(user.language, code, exc.reason))
        return False
    if context.user_data is not None:
        context.user_data[PROMO_KEY] = promo.code
    scope = (
        t(user.language, texts.PROMO_FOR_PLANS, plans=esc(", ".join(promo.plans)))
        if promo.plans
        else ""
    )
    accepted = t(
        user.language,
        texts.PROMO_ACCEPTED,
        code=esc(promo.code),
        benefit=_benefit(user.language, promo),
    )
    await _show_plans(update, context, user, f"{accepted} {scope}".strip())
    return True


async def deep_link(update: Update, context: BotContext, code: str) -> None:
    """``/start promo_<CODE>``: after the welcome, the code and the plans."""
    user = await user_of(update, context)
    await _take_code(update, context, user, code)


async def ask_code(update: Update, context: BotContext) -> None:
    user = await user_of(update, context)
    expect_input(context, AWAITING_PROMO)
    await show(update, context, t(user.language, texts.PROMO_ASK), keyboards.back(user.language))


async def receive_code(update: Update, context: BotContext, user: User, text: str) -> None:
    """The code typed after "I have a promo code"; a refused one may be typed again."""
    code = text.strip()
    if await _take_code(update, context, user, code[:64]):
        expect_input(context, None)


async def start_trial(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    plan_id = query.data.removeprefix(TRIAL)
    user = await user_of(update, context)
    language = user.language
    try:
        await trials.start(context.db, user.id, plan_id, context.now())
    except TrialRefused as exc:
        why = t(language, TRIAL_REFUSALS.get(exc.reason, texts.TRIAL_NONE))
        await answer(query, why)
        return
    except InvalidRequest:  # the plan is gone
        await answer(query, t(language, texts.PLAN_GONE))
        return
    # The channels come with the trial's message, sent by the outbox's sender.
    context.runtime.services.outbox.ring()
    await answer(query, t(language, texts.TRIAL_ON))
