"""Start, menu, language, help, terms, support; duplicate-update guard."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from satshare import logs, metrics
from satshare.affiliates import flows as affiliate_flows
from satshare.bot import keyboards, texts
from satshare.bot.handlers import buying, growth, stars
from satshare.bot.handlers.ui import expect_input, show
from satshare.bot.runtime import (
    BotContext,
    BotRuntime,
    display_name,
    ensure_user,
    esc,
    t,
    user_of,
)
from satshare.errors import InvalidRequest
from satshare.plans import flows as plan_flows
from satshare.telegram_contract import STARS_START
from satshare.users import flows as user_flows

log = logging.getLogger(__name__)


async def guard_duplicates(update: Update, context: BotContext) -> None:
    """Runs first for every update: an update_id seen before is dropped (one effect)."""
    runtime = context.runtime
    fresh = await runtime.bursts.first_sight(update.update_id)
    metrics.bot_update(duplicate=not fresh)
    if not fresh:
        log.info("dropping duplicate update %s", update.update_id)
        raise ApplicationHandlerStop
    if update.effective_user is not None:  # the rest of this update's log lines name them
        logs.tag(telegram_user_id=update.effective_user.id)


#: Deep-link start parameters: /start ref_<code> (an invitation), /start stars_<plan> (buy
#: the plan for Telegram Stars, e.g. from the web checkout page; STARS_START is shared with the
#: API, in satshare.telegram_contract).
REF_START = "ref_"


async def start(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    assert update.effective_user is not None
    expect_input(context, None)
    payload = context.args[0] if context.args else ""
    referral = payload[4:] if payload.startswith(REF_START) and len(payload) > 4 else None
    user, created, problem = await ensure_user(runtime, update.effective_user, referral=referral)
    if referral is not None and problem != "own":
        # The top of the affiliate's funnel: their link was opened (new user or not).
        await affiliate_flows.record_click(runtime.db, referral, "telegram", runtime.now())
    language = user.language
    share = runtime.config.affiliate.share_bps / 100
    lines = []
    if created:
        lines.append(welcome(runtime, language, f"{share:g}"))
        if user.referrer_id is not None:
            referrer = await user_flows.get(runtime.db, user.referrer_id)
            if referrer is not None:
                lines.append(t(language, texts.REFERRED_BY, referrer=esc(display_name(referrer))))
    else:
        lines.append(t(language, texts.WELCOME_BACK, name=esc(update.effective_user.first_name)))
    if problem == "own":
        lines.append(t(language, texts.REF_OWN))
    elif problem == "already":
        lines.append(t(language, texts.REF_ALREADY))
    elif problem == "unknown":
        lines.append(t(language, texts.REF_UNKNOWN))
    lines.append(t(language, texts.MENU_TITLE))
    await show(update, context, "\n\n".join(lines), keyboards.main_menu(language))
    if payload.startswith(STARS_START):
        await _sell_for_stars(update, context, payload.removeprefix(STARS_START))
    elif payload.startswith(growth.PROMO_START):
        await growth.deep_link(update, context, payload.removeprefix(growth.PROMO_START))


def welcome(runtime: BotRuntime, language: str, share: str) -> str:
    """The first message: the owner's own text for this language (branding.welcome) or ours."""
    custom = runtime.config.branding.welcome
    own = next((text for code, text in custom.items() if code == language), None)
    if own is not None:
        return esc(own.format(shop=runtime.shop_name, share=share))
    return t(language, texts.WELCOME, shop=esc(runtime.shop_name), share=share)


async def _sell_for_stars(update: Update, context: BotContext, plan_id: str) -> None:
    runtime = context.runtime
    plan = await plan_flows.get(runtime.db, plan_id)
    if plan is None or not plan.active:
        return
    user = await user_of(update, context)
    if await buying.tell_outlook(update, context, user, plan.id, "stars"):
        return  # "Continue to payment" sells it, as from the plan list
    try:
        await stars.sell(update, context, plan)
    except InvalidRequest:
        log.info("start link for Stars, but plan %s is not sold for Stars", plan_id)


async def menu(update: Update, context: BotContext) -> None:
    expect_input(context, None)
    user = await user_of(update, context)
    await show(
        update, context, t(user.language, texts.MENU_TITLE), keyboards.main_menu(user.language)
    )


async def help_(update: Update, context: BotContext) -> None:
    user = await user_of(update, context)
    await show(update, context, t(user.language, texts.HELP), keyboards.back(user.language))


async def terms(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    text = t(user.language, texts.TERMS)
    terms_url = runtime.config.branding.terms_url
    if terms_url:
        text += "\n\n" + t(user.language, texts.TERMS_LINK, url=esc(terms_url))
    await show(update, context, text, keyboards.back(user.language))


async def paysupport(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    contact = runtime.config.branding.support_contact
    text = t(
        user.language, texts.PAYSUPPORT, contact=esc(contact or t(user.language, texts.SUPPORT))
    )
    await show(update, context, text, keyboards.back(user.language))


async def language(update: Update, context: BotContext) -> None:
    user = await user_of(update, context)
    await show(update, context, t(user.language, texts.LANGUAGE_CHOOSE), keyboards.languages())


async def set_language(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    query = update.callback_query
    assert query is not None and query.data is not None
    chosen = query.data.removeprefix(keyboards.LANGUAGE)
    user = await user_of(update, context)
    updated = await user_flows.update_profile(
        runtime.db, user.id, username=None, language=chosen, now=runtime.now()
    )
    await show(
        update,
        context,
        t(updated.language, texts.LANGUAGE_SET) + "\n\n" + t(updated.language, texts.MENU_TITLE),
        keyboards.main_menu(updated.language),
    )


async def unknown(update: Update, context: BotContext) -> None:
    user = await user_of(update, context)
    await show(update, context, t(user.language, texts.UNKNOWN), keyboards.main_menu(user.language))


async def on_error(update: object, context: BotContext) -> None:
    """Log with the trace; tell the user something friendly, never the trace."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat and update.effective_user:
        language = "ru" if (update.effective_user.language_code or "").startswith("ru") else "en"
        try:
            await context.bot.send_message(update.effective_chat.id, t(language, texts.ERROR))
        except Exception:  # the chat may be the very thing that failed
            log.debug("could not report the error to the user", exc_info=True)
