"""/top: the affiliate leaderboard, by sales or paying referrals, per week, month or all
time; names are shown only for affiliates who chose to."""

from __future__ import annotations

from typing import cast

from telegram import Update

from satshare.affiliates import flows as affiliate_flows
from satshare.affiliates import stats
from satshare.bot import keyboards, texts
from satshare.bot.handlers.ui import show
from satshare.bot.runtime import BotContext, esc, sats, t, user_of
from satshare.payments import referrals
from satshare.users.models import User

SIZE = 10
PERIOD_LABELS = {"week": texts.PERIOD_WEEK, "month": texts.PERIOD_MONTH, "all": texts.PERIOD_ALL}


def _view(data: str | None, prefix: str) -> tuple[stats.Ranking, stats.Period]:
    parts = (data or "").removeprefix(prefix).split(":")
    by = parts[-2] if len(parts) >= 2 and parts[-2] in ("sales", "referrals") else "sales"
    period = parts[-1] if parts and parts[-1] in stats.PERIOD_DAYS else "month"
    return cast(stats.Ranking, by), cast(stats.Period, period)


async def top(update: Update, context: BotContext) -> None:
    query = update.callback_query
    by, period = _view(query.data if query else None, keyboards.TOP)
    user = await user_of(update, context)
    await _show(update, context, user, by, period)


async def toggle_name(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    data = (query.data or "").removeprefix(keyboards.TOP_NAME)
    by, period = _view(data, "")
    user = await user_of(update, context)
    tg = update.effective_user
    name = None
    if data.startswith("on"):
        name = f"@{tg.username}" if tg.username else tg.first_name[: stats.MAX_NAME]
    user = await affiliate_flows.set_leaderboard_name(runtime.db, user.id, name)
    await _show(update, context, user, by, period)


async def _show(
    update: Update,
    context: BotContext,
    user: User,
    by: stats.Ranking,
    period: stats.Period,
) -> None:
    runtime = context.runtime
    language = user.language
    rows = await referrals.top(runtime.db, by, period, runtime.now(), SIZE)
    title = texts.TOP_TITLE_SALES if by == "sales" else texts.TOP_TITLE_REFERRALS
    lines = [t(language, title, period=t(language, PERIOD_LABELS[period]))]
    line = texts.TOP_LINE_SALES if by == "sales" else texts.TOP_LINE_REFERRALS
    for row in rows:
        name = esc(row.name) if row.name else t(language, texts.TOP_ANONYMOUS)
        if row.user_id == user.id:
            name += " " + t(language, texts.TOP_YOU)
        value = sats(language, row.value) if by == "sales" else str(row.value)
        lines.append(t(language, line, rank=row.rank, name=name, value=value))
    if not rows:
        lines.append(t(language, texts.TOP_EMPTY))
    if user.leaderboard_name:
        lines.append("\n" + t(language, texts.TOP_NAME_SHOWN, name=esc(user.leaderboard_name)))
    else:
        lines.append("\n" + t(language, texts.TOP_NAME_HIDDEN))
    markup = keyboards.top(language, by, period, user.leaderboard_name is not None)
    await show(update, context, "\n".join(lines), markup)
