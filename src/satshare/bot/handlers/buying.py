"""Plans, buying (invoice with QR), checking a payment, and "My subscription".

Before the invoice, a buyer who already has an active subscription is told what this
purchase does (the same plan: extended from its end; another plan: a second subscription
alongside, with the channels each gives) and continues or goes back to the plans."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from telegram import Bot, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from satshare import qr
from satshare.access import flows as access_flows
from satshare.bot import access as links
from satshare.bot import keyboards, texts
from satshare.bot.access import access_hint
from satshare.bot.handlers import growth, stars
from satshare.bot.handlers.ui import answer, show
from satshare.bot.runtime import BotContext, BotRuntime, esc, plan_wording, sats, t, user_of
from satshare.errors import DomainError, InvalidRequest, ProviderUnavailable
from satshare.i18n import format_datetime
from satshare.payments import flows, offers
from satshare.payments.models import OPEN_STATUSES, InvoiceStatus
from satshare.plans import flows as plan_flows
from satshare.plans.models import Plan
from satshare.promos.service import PromoRefused
from satshare.rates.service import source_name
from satshare.subscriptions import flows as subscription_flows
from satshare.subscriptions.service import PurchaseEffect, PurchaseOutlook
from satshare.telegram_contract import CONFIRMED_QUERY
from satshare.users.models import User

log = logging.getLogger(__name__)

#: Telegram allows 1024 characters in a photo caption.
CAPTION_LIMIT = 1024
#: "Check payment" polls the processor at most this often per invoice.
CHECK_EVERY_SECONDS = 3.0


def rate_label(language: str, source: str | None) -> str:
    """The rate's real source; in the sandbox, that it came from an emulator."""
    name, emulated = source_name(source or "")
    return t(language, texts.RATE_SANDBOX, source=name) if emulated else name


def plans_menu(
    runtime: BotRuntime, language: str, available: Sequence[Plan]
) -> InlineKeyboardMarkup:
    titles = {plan.id: plan_wording(runtime, plan, language)[0] for plan in available}
    return keyboards.plans(language, available, titles)


async def show_plans(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    available = await plan_flows.list_active(runtime.db)
    lines = [t(user.language, texts.PLANS_TITLE if available else texts.PLANS_EMPTY)]
    for plan in available:  # what each plan gives, before the buttons
        title, description = plan_wording(runtime, plan, user.language)
        if description:
            lines.append(f"<b>{esc(title)}</b>\n{esc(description)}")
    text = "\n\n".join(lines)
    await show(update, context, text, await growth.plans_markup(context, user, available))


def bot_rails(runtime: BotRuntime, plan: Plan) -> list[str]:
    """The rails this bot offers for a plan: the plan's processors, then Stars."""
    payments = runtime.payments
    rails = payments.rails_for(plan.providers)
    if flows.stars_allowed(payments, plan.price_stars, plan.providers):
        rails.append("stars")
    if runtime.settings.bot_rails is not None:
        rails = [rail for rail in rails if rail in runtime.settings.bot_rails]
    return rails


async def buy(update: Update, context: BotContext) -> None:
    """A plan was chosen: ask how to pay when there is a choice, else go on."""
    runtime = context.runtime
    query = update.callback_query
    assert query is not None and query.data is not None
    plan_id = query.data.removeprefix(keyboards.BUY)
    user = await user_of(update, context)
    plan = await plan_flows.get(runtime.db, plan_id)
    available = await plan_flows.list_active(runtime.db)
    rails = bot_rails(runtime, plan) if plan is not None and plan.active else []
    if not rails:
        message = texts.PLAN_GONE if plan is None or not plan.active else texts.NO_RAIL
        await show(
            update,
            context,
            t(user.language, message),
            plans_menu(runtime, user.language, available),
        )
        return
    choice = keyboards.rails(user.language, plan_id, rails)
    if len(rails) > 1 and choice is not None:
        await show(update, context, t(user.language, texts.RAIL_CHOOSE), choice)
        return
    await purchase(update, context, plan_id, rails[0])


async def choose_rail(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, rail, plan_id = query.data.split(":", 2)
    await purchase(update, context, plan_id, rail)


async def confirm_purchase(update: Update, context: BotContext) -> None:
    """ "Continue to payment" after being told what the purchase does: the invoice now."""
    query = update.callback_query
    assert query is not None and query.data is not None
    _, rail, plan_id = query.data.split(":", 2)
    if not rail:  # a long plan id left no room for it: the plan's first rail, as in ``buy``
        plan = await plan_flows.get(context.runtime.db, plan_id)
        rails = bot_rails(context.runtime, plan) if plan is not None and plan.active else []
        rail = rails[0] if rails else "btcpay"  # no rail: the purchase says the plan is gone
    await purchase(update, context, plan_id, rail, confirmed=True)


async def outlook_text(
    runtime: BotRuntime, bot: Bot, language: str, outlook: PurchaseOutlook
) -> str:
    """What buying the plan does to the subscriptions this buyer has, in their language."""

    def when(moment: datetime) -> str:
        return format_datetime(language, moment, zone=False)

    def title(plan: Plan) -> str:
        return esc(plan_wording(runtime, plan, language)[0])

    async def channels(chat_ids: Sequence[int]) -> str:
        if not chat_ids:
            return t(language, texts.OUTLOOK_NO_CHANNELS)
        names = await links.chat_titles(runtime, bot, chat_ids)
        return ", ".join(esc(name or chat) for name, chat in zip(names, chat_ids, strict=True))

    if outlook.effect == PurchaseEffect.EXTEND:
        current = outlook.held[0]
        return t(
            language,
            texts.OUTLOOK_EXTEND,
            plan=title(outlook.plan),
            until=when(current.ends_at),
            count=outlook.days,
            new_until=when(outlook.ends_at),
        )
    lines = [t(language, texts.OUTLOOK_HELD)]
    for held in outlook.held:
        lines.append(
            t(
                language,
                texts.OUTLOOK_HELD_LINE,
                plan=title(held.plan),
                until=when(held.ends_at),
                channels=await channels(held.plan.channels),
            )
        )
    lines.append("")
    lines.append(
        t(
            language,
            texts.OUTLOOK_ALONGSIDE,
            plan=title(outlook.plan),
            count=outlook.days,
            until=when(outlook.ends_at),
            channels=await channels(outlook.plan.channels),
        )
    )
    if outlook.shared_channels:
        shared = await channels(outlook.shared_channels)
        lines.append(t(language, texts.OUTLOOK_SHARED, channels=shared))
    return "\n".join(lines)


async def tell_outlook(
    update: Update, context: BotContext, user: User, plan_id: str, rail: str
) -> bool:
    """Tell a buyer who already has an active subscription what this purchase does, with
    "Continue to payment" and "« Plans"; False when there is nothing to tell."""
    runtime = context.runtime
    now = runtime.now()
    extra_days = 0
    if rail != "stars":  # a Telegram Stars invoice carries no extra days
        extra_days = await offers.extra_days(
            runtime.db,
            user_id=user.id,
            referred=user.referrer_id is not None,
            plan_id=plan_id,
            promo_code=growth.promo_of(context),
            referee_bonus_days=runtime.payments.referee_bonus_days,
            now=now,
        )
    try:
        outlook = await subscription_flows.purchase_outlook(
            runtime.db, user.id, plan_id, extra_days=extra_days, now=now
        )
    except InvalidRequest:
        return False  # no such plan: the purchase says it is gone
    if outlook.effect == PurchaseEffect.NEW:
        return False
    text = await outlook_text(runtime, context.bot, user.language, outlook)
    await show(update, context, text, keyboards.confirm_purchase(user.language, plan_id, rail))
    return True


async def purchase(
    update: Update, context: BotContext, plan_id: str, rail: str, *, confirmed: bool = False
) -> None:
    """The invoice for the plan on this rail; first, unless ``confirmed``, what buying it
    does when the buyer already has an active subscription."""
    runtime = context.runtime
    query = update.callback_query
    assert query is not None
    user = await user_of(update, context)
    language = user.language
    if not confirmed and await tell_outlook(update, context, user, plan_id, rail):
        return
    if rail == "stars":
        plan = await plan_flows.get(runtime.db, plan_id)
        try:
            if plan is None:
                raise InvalidRequest("no such plan")
            await stars.sell(update, context, plan)
        except InvalidRequest:
            available = await plan_flows.list_active(runtime.db)
            await show(
                update,
                context,
                t(language, texts.PLAN_GONE),
                plans_menu(runtime, language, available),
            )
        return
    code = growth.promo_of(context)
    try:
        checkout = await flows.start_checkout(
            runtime.payments, user_id=user.id, plan_id=plan_id, provider_name=rail, promo_code=code
        )
    except PromoRefused as exc:
        growth.forget_promo(context)
        assert code is not None
        available = await plan_flows.list_active(runtime.db)
        refused = growth.refusal(language, code, exc.reason)
        markup = await growth.plans_markup(context, user, available)
        await show(update, context, refused, markup)
        return
    except ProviderUnavailable:
        await answer(query, t(language, texts.PROVIDER_DOWN))
        return
    except InvalidRequest:
        available = await plan_flows.list_active(runtime.db)
        menu = plans_menu(runtime, language, available)
        await show(update, context, t(language, texts.PLAN_GONE), menu)
        return
    invoice = checkout.invoice
    plan = await plan_flows.get(runtime.db, plan_id)
    assert plan is not None
    checkout_url = runtime.payments.checkout_url(invoice.id)
    if confirmed:  # told already: the checkout page need not ask again before showing the QR
        checkout_url += f"?{CONFIRMED_QUERY}"
    title, description = plan_wording(runtime, plan, language)
    parts = [
        t(
            language,
            texts.INVOICE,
            title=esc(title),
            amount=sats(language, invoice.amount_sats),
            expires=format_datetime(language, invoice.expires_at, zone=False),
        ),
        *growth.invoice_lines(language, invoice),
    ]
    if description:
        parts.append(f"<i>{esc(description)}</i>")
    if code is not None:
        growth.forget_promo(context)  # used on this invoice
    if invoice.fiat_amount and invoice.rate:
        parts.append(
            t(
                language,
                texts.INVOICE_FIAT,
                fiat=f"{invoice.fiat_amount} {invoice.fiat_currency}",
                rate=invoice.rate,
                currency=invoice.fiat_currency,
                source=rate_label(language, invoice.rate_source),
            )
        )
    if invoice.payment_request:
        parts.append(t(language, texts.INVOICE_LIGHTNING, bolt11=esc(invoice.payment_request)))
    if invoice.address:
        parts.append(t(language, texts.INVOICE_ADDRESS, address=esc(invoice.address)))
    if not runtime.public_checkout:
        parts.append(t(language, texts.INVOICE_CHECKOUT, url=esc(checkout_url)))
    text = "\n\n".join(parts)
    markup = keyboards.invoice(
        language, invoice.id, checkout_url if runtime.public_checkout else None
    )
    chat_id = update.effective_chat.id if update.effective_chat else user.id
    qr_source = (
        qr.lightning_uri(invoice.payment_request)
        if invoice.payment_request
        else qr.bip21(invoice.address, invoice.amount_sats)
        if invoice.address
        else checkout_url
    )
    photo = qr.png(qr_source)
    if len(text) <= CAPTION_LIMIT:
        await context.bot.send_photo(
            chat_id, photo, caption=text, parse_mode=ParseMode.HTML, reply_markup=markup
        )
    else:
        await context.bot.send_photo(chat_id, photo)
        await context.bot.send_message(
            chat_id,
            text,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            disable_web_page_preview=True,
        )
    await answer(query)


async def check_payment(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    query = update.callback_query
    assert query is not None and query.data is not None
    invoice_id = query.data.removeprefix(keyboards.CHECK)
    user = await user_of(update, context)
    language = user.language
    invoice = await flows.get_invoice(runtime.db, invoice_id)
    if invoice is None or invoice.user_id != user.id:
        await answer(query, t(language, texts.PAYMENT_EXPIRED))
        return
    last = runtime.recent_checks.get(invoice_id, 0.0)
    if invoice.status in OPEN_STATUSES and time.monotonic() - last >= CHECK_EVERY_SECONDS:
        runtime.recent_checks[invoice_id] = time.monotonic()
        try:
            await flows.refresh_invoice(runtime.payments, invoice_id)
        except ProviderUnavailable:
            await answer(query, t(language, texts.PROVIDER_DOWN))
            return
        except DomainError:
            log.warning("could not refresh invoice %s", invoice_id, exc_info=True)
        invoice = await flows.get_invoice(runtime.db, invoice_id)
        assert invoice is not None
    message = {
        InvoiceStatus.SETTLED: texts.PAYMENT_DONE,
        InvoiceStatus.PROCESSING: texts.PAYMENT_PROCESSING,
        InvoiceStatus.EXPIRED: texts.PAYMENT_EXPIRED,
        InvoiceStatus.INVALID: texts.PAYMENT_EXPIRED,
    }.get(invoice.status, texts.PAYMENT_NOT_YET)
    await answer(query, t(language, message))


async def my_subscription(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    language = user.language
    now = runtime.now()
    held = await access_flows.holdings(runtime.db, user.id, now)
    lines = []
    for subscription, plan in held.subscriptions:
        assert subscription.ends_at is not None
        lines.append(
            t(
                language,
                texts.MY_SUBSCRIPTION_LINE,
                plan=esc(plan_wording(runtime, plan, language)[0]),
                until=format_datetime(language, subscription.ends_at, zone=False),
            )
        )
    chats = held.chats
    if not held.subscriptions:
        await show(
            update, context, t(language, texts.NO_SUBSCRIPTION), keyboards.main_menu(language)
        )
        return
    invite_links = await links.safe_links_for(runtime, context.bot, user.id, chats) if chats else []
    if invite_links is None:
        lines.append(t(language, texts.ACCESS_UNAVAILABLE))
        invite_links = []
    elif invite_links:
        lines.append(access_hint(runtime, language))
    titles = await links.chat_titles(runtime, context.bot, chats) if invite_links else []
    markup = keyboards.join_links(language, invite_links, titles)
    await show(update, context, "\n".join(lines), markup)
