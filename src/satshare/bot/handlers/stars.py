"""Telegram Stars: invoices and monthly subscription links, the pre-checkout answer (well
within Telegram's 10 seconds), and settlement on successful_payment."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Update

from satshare.bot import texts
from satshare.bot.handlers.ui import answer, show
from satshare.bot.runtime import BotContext, BotRuntime, esc, plan_wording, t, user_of
from satshare.payments import flows
from satshare.payments.service import StarsPayment
from satshare.plans.models import Plan
from satshare.users import flows as user_flows

log = logging.getLogger(__name__)

#: Telegram's only Stars subscription period, and the most such a subscription may cost.
SUBSCRIPTION_PERIOD = 2_592_000
SUBSCRIPTION_MAX_STARS = 10_000
#: Telegram's limits on an invoice's title and description.
TITLE_LIMIT = 32
DESCRIPTION_LIMIT = 255
REFUSALS = {
    "gone": texts.CHECKOUT_REFUSED_GONE,
    "changed": texts.CHECKOUT_REFUSED_CHANGED,
    "used": texts.CHECKOUT_REFUSED_USED,
    "unknown": texts.CHECKOUT_REFUSED_UNKNOWN,
}


def invoice_wording(runtime: BotRuntime, plan: Plan, language: str) -> tuple[str, str]:
    """The Stars invoice's title and description in the buyer's language: the plan's title,
    its description and what it gives, from the owner's shop (branding.name)."""
    title, description = plan_wording(runtime, plan, language)
    access = t(
        language, texts.STARS_INVOICE_ACCESS, count=plan.duration_days, shop=runtime.shop_name
    )
    room = DESCRIPTION_LIMIT - len(access) - 1
    if description and room > 0:
        access = f"{description[:room]}\n{access}"
    return title[:TITLE_LIMIT], access[:DESCRIPTION_LIMIT]


def as_subscription(plan: Plan, links_enabled: bool) -> bool:
    return (
        links_enabled
        and plan.duration_days == 30
        and plan.price_stars is not None
        and plan.price_stars <= SUBSCRIPTION_MAX_STARS
    )


async def sell(update: Update, context: BotContext, plan: Plan) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    language = user.language
    invoice = await flows.create_stars_invoice(runtime.payments, user_id=user.id, plan_id=plan.id)
    assert invoice.amount_stars is not None
    stars = invoice.amount_stars
    title, description = invoice_wording(runtime, plan, language)
    prices = [LabeledPrice(title, stars)]
    chat_id = update.effective_chat.id if update.effective_chat else int(user.external_id or 0)
    if as_subscription(plan, runtime.config.stars.subscription_links):
        link = await context.bot.create_invoice_link(
            title=title,
            description=description,
            payload=invoice.id,
            currency="XTR",
            prices=prices,
            subscription_period=SUBSCRIPTION_PERIOD,
        )
        button = InlineKeyboardButton(t(language, texts.STARS_PAY, stars=stars), url=link)
        await show(
            update,
            context,
            t(language, texts.STARS_SUBSCRIPTION, title=esc(title), stars=stars),
            InlineKeyboardMarkup([[button]]),
        )
        return
    await context.bot.send_invoice(
        chat_id,
        title=title,
        description=description,
        payload=invoice.id,
        currency="XTR",
        prices=prices,
    )
    if update.callback_query:
        await answer(update.callback_query)


async def pre_checkout(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    query = update.pre_checkout_query
    assert query is not None
    problem = await flows.check_stars_checkout(
        runtime.payments, query.invoice_payload, query.currency, query.total_amount
    )
    if problem is None:
        await query.answer(ok=True)
        return
    user = await user_flows.by_external_id(runtime.db, "telegram", str(query.from_user.id))
    language = user.language if user else "en"
    await query.answer(ok=False, error_message=t(language, REFUSALS[problem]))


async def paid(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    message = update.effective_message
    assert message is not None and message.successful_payment is not None
    payment = message.successful_payment
    outcome = await flows.receive_stars_payment(
        runtime.payments,
        StarsPayment(
            invoice_id=payment.invoice_payload,
            charge_id=payment.telegram_payment_charge_id,
            amount_stars=payment.total_amount,
            is_recurring=bool(payment.is_recurring),
        ),
    )
    log.info("Stars payment %s: %s", payment.telegram_payment_charge_id, outcome.value)
