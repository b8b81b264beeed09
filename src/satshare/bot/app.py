"""Builds and runs the python-telegram-bot application (long polling or webhook)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatJoinRequestHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from satshare.bot import keyboards, texts
from satshare.bot.dispatcher import OutboxDispatcher
from satshare.bot.handlers import (
    admin,
    affiliate,
    buying,
    core,
    growth,
    joins,
    report,
    stars,
    top,
    withdraw,
)
from satshare.bot.metered import MeteredRequest
from satshare.bot.polling import PollingLeader
from satshare.bot.ratelimiter import SharedRateLimiter
from satshare.bot.runtime import BotContext, BotRuntime, BotServices
from satshare.i18n import translate
from satshare.telegram_contract import webhook_secret

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query", "chat_join_request", "pre_checkout_query"]
COMMANDS = [
    ("start", texts.CMD_START),
    ("plans", texts.CMD_PLANS),
    ("language", texts.CMD_LANGUAGE),
    ("paysupport", texts.CMD_PAYSUPPORT),
    ("withdraw", texts.CMD_WITHDRAW),
    ("top", texts.CMD_TOP),
    ("terms", texts.CMD_TERMS),
    ("help", texts.CMD_HELP),
]


def build_runtime(services: BotServices, *, token: str, api_base_url: str) -> BotRuntime:
    settings = services.config.telegram
    builder = (
        ApplicationBuilder()
        .token(token)
        .context_types(ContextTypes(context=BotContext))
        .base_url(f"{api_base_url}/bot")
        .base_file_url(f"{api_base_url}/file/bot")
        # telegram.max_messages_per_second for the bot as a whole, across processes.
        .rate_limiter(SharedRateLimiter(services.telegram_rate, max_retries=2))
        .concurrent_updates(64)
        # Through MeteredRequest, so that /metrics counts Telegram's errors by code. 16
        # connections, not one per concurrent update: httpcore scans its whole pool on every
        # request (at 64 that bookkeeping was half the bot's CPU in a /start storm), and 16
        # keep-alive connections carry the replies of 64 handlers as fast.
        .request(MeteredRequest(connection_pool_size=16, pool_timeout=30))
        .get_updates_request(MeteredRequest(connection_pool_size=1, read_timeout=40))
    )
    if settings.webhook_url:
        builder = builder.updater(None)
    application: Application = builder.build()  # type: ignore[type-arg]
    runtime = BotRuntime(services=services, settings=settings, application=application)
    application.bot_data["runtime"] = runtime
    add_handlers(application)
    return runtime


def add_handlers(application: Application) -> None:  # type: ignore[type-arg]
    application.add_handler(TypeHandler(Update, core.guard_duplicates), group=-1)
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("start", core.start, filters=private))
    application.add_handler(CommandHandler("plans", buying.show_plans, filters=private))
    application.add_handler(CommandHandler("language", core.language, filters=private))
    application.add_handler(CommandHandler("paysupport", core.paysupport, filters=private))
    application.add_handler(CommandHandler("terms", core.terms, filters=private))
    application.add_handler(CommandHandler("help", core.help_, filters=private))
    application.add_handler(CommandHandler("withdraw", withdraw.withdraw, filters=private))
    application.add_handler(CommandHandler("top", top.top, filters=private))
    # Admin chats may be groups: /report checks the chat id itself.
    application.add_handler(CommandHandler("report", report.report))
    routes = {
        keyboards.MENU: core.menu,
        keyboards.PLANS: buying.show_plans,
        keyboards.MY_SUBSCRIPTION: buying.my_subscription,
        keyboards.INVITE: affiliate.invite,
        keyboards.STATEMENTS: affiliate.statements,
        keyboards.REFERRAL_QR: affiliate.referral_qr,
        keyboards.WITHDRAW: withdraw.withdraw,
        keyboards.SET_DESTINATION: withdraw.ask_destination,
        keyboards.WITHDRAW_AMOUNT: withdraw.ask_amount,
        keyboards.MY_PAYOUTS: withdraw.my_payouts,
        keyboards.HELP: core.help_,
        keyboards.TERMS: core.terms,
    }
    for data, handler in routes.items():
        application.add_handler(CallbackQueryHandler(handler, pattern=f"^{data}$"))
    application.add_handler(CallbackQueryHandler(buying.buy, pattern=f"^{keyboards.BUY}"))
    application.add_handler(
        CallbackQueryHandler(
            buying.confirm_purchase, pattern=f"^{keyboards.CONFIRM_PURCHASE}[a-z]*:"
        )
    )
    application.add_handler(
        CallbackQueryHandler(buying.choose_rail, pattern=f"^{keyboards.RAIL}[a-z]+:")
    )
    application.add_handler(CallbackQueryHandler(growth.ask_code, pattern=f"^{growth.PROMO_ASK}$"))
    application.add_handler(CallbackQueryHandler(growth.start_trial, pattern=f"^{growth.TRIAL}"))
    application.add_handler(PreCheckoutQueryHandler(stars.pre_checkout))
    application.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, stars.paid))
    application.add_handler(
        CallbackQueryHandler(buying.check_payment, pattern=f"^{keyboards.CHECK}")
    )
    application.add_handler(
        CallbackQueryHandler(core.set_language, pattern=f"^{keyboards.LANGUAGE}(en|ru)$")
    )
    application.add_handler(
        CallbackQueryHandler(withdraw.accept_terms, pattern=f"^{keyboards.ACCEPT_TERMS}")
    )
    application.add_handler(
        CallbackQueryHandler(top.top, pattern=f"^{keyboards.TOP}[a-z]+:[a-z]+$")
    )
    application.add_handler(
        CallbackQueryHandler(
            admin.decide_payout,
            pattern=f"^({keyboards.PAYOUT_APPROVE}|{keyboards.PAYOUT_CANCEL})[0-9]+$",
        )
    )
    application.add_handler(
        CallbackQueryHandler(top.toggle_name, pattern=f"^{keyboards.TOP_NAME}(on|off):")
    )
    application.add_handler(
        CallbackQueryHandler(withdraw.quote, pattern=f"^{keyboards.WITHDRAW_QUOTE}[0-9]+$")
    )
    application.add_handler(
        CallbackQueryHandler(withdraw.confirm, pattern=f"^{keyboards.WITHDRAW_CONFIRM}[0-9]+$")
    )
    application.add_handler(ChatJoinRequestHandler(joins.join_request))
    # Text the bot asked for (a payout destination, an amount); anything else gets "unknown".
    application.add_handler(
        MessageHandler(private & ~filters.UpdateType.EDITED, withdraw.text_input)
    )
    application.add_error_handler(core.on_error)


async def start_sender(runtime: BotRuntime) -> OutboxDispatcher:
    """The bot as a worker uses it: a client (getMe) and the outbox's sender, which the
    worker's jobs run; no updates are received here."""
    await runtime.application.initialize()
    me = runtime.application.bot
    _learn_names(runtime, me.username, me.first_name)
    return OutboxDispatcher(runtime, me)


def _learn_names(runtime: BotRuntime, username: str | None, first_name: str | None) -> None:
    """The bot's @username from getMe; the shop's name from branding.name, else the bot's."""
    runtime.username = username or runtime.username
    runtime.shop_name = runtime.config.branding.name or first_name or runtime.shop_name


async def start_bot(runtime: BotRuntime, *, send_outbox: bool = True) -> OutboxDispatcher:
    """Initialise (getMe), publish commands, start receiving updates; return the sender,
    which listens for outbox rows unless ``send_outbox`` is off (workers send them)."""
    application = runtime.application
    await application.initialize()
    me = application.bot
    _learn_names(runtime, me.username, me.first_name)
    for language in ("en", "ru"):
        await me.set_my_commands(
            [BotCommand(name, translate(language, description)) for name, description in COMMANDS],
            language_code=None if language == "en" else language,
        )
    await application.start()
    settings = runtime.settings
    if settings.webhook_url:
        token = me.token
        await me.set_webhook(
            settings.webhook_url,
            secret_token=webhook_secret(runtime.config.telegram, token),
            allowed_updates=ALLOWED_UPDATES,
        )
    else:
        updater = application.updater
        assert updater is not None
        leader = PollingLeader(
            runtime.db,
            start=lambda: updater.start_polling(
                timeout=30, allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False
            ),
            stop=updater.stop,
        )
        runtime.polling = asyncio.create_task(leader.run(), name="polling leader")
    dispatcher = OutboxDispatcher(runtime, me)
    if send_outbox:
        dispatcher.listen(runtime.services.outbox)
        dispatcher.kick()
    return dispatcher


async def stop_bot(runtime: BotRuntime, dispatcher: OutboxDispatcher | None) -> None:
    application = runtime.application
    if dispatcher is not None:
        await dispatcher.aclose()
    if runtime.polling is not None:
        runtime.polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime.polling
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await runtime.bursts.aclose()
    await application.shutdown()
