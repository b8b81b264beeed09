"""/report [YYYY-MM] for the admin chats: the month's figures, the chart and the XLSX."""

from __future__ import annotations

import asyncio

from telegram import InputFile, Update
from telegram.constants import ParseMode

from satshare.bot import texts
from satshare.bot.handlers import core
from satshare.bot.runtime import BotContext, sats, t
from satshare.errors import InvalidRequest
from satshare.reports import files
from satshare.reports import flows as report_flows
from satshare.reports.monthly import current_month


async def report(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    chat = update.effective_chat
    if chat is None or chat.id not in runtime.settings.admin_chat_ids:
        await core.unknown(update, context)  # not an admin: as if there were no such command
        return
    language = "en"
    now = runtime.now()
    month = context.args[0] if context.args else current_month(now)
    try:
        data = await report_flows.month(runtime.db, month, now)
    except InvalidRequest:
        await context.bot.send_message(chat.id, t(language, texts.REPORT_BAD_MONTH))
        return
    totals = data.totals
    summary = t(
        language,
        texts.REPORT,
        month=data.month,
        sales=totals.sales,
        refunds=totals.refunds,
        gross=sats(language, totals.gross_sats),
        owner=sats(language, totals.owner_share_sats),
        affiliates=sats(language, totals.affiliate_share_sats),
        paid_out=sats(language, totals.paid_out_sats),
        owed=sats(language, data.owed_at_end_sats),
    )
    await context.bot.send_message(chat.id, summary, parse_mode=ParseMode.HTML)
    # CPU work, off the event loop; titled with the owner's name (branding.name)
    chart = await asyncio.to_thread(files.chart, data, "png", name=runtime.shop_name)
    workbook = await asyncio.to_thread(files.monthly_xlsx, data)
    await context.bot.send_photo(chat.id, InputFile(chart, filename=f"satshare-{data.month}.png"))
    await context.bot.send_document(
        chat.id,
        InputFile(workbook, filename=f"satshare-{data.month}.xlsx"),
        caption=t(language, texts.REPORT_FILE, month=data.month),
    )
