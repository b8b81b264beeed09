"""Invite & earn: the referral link, referral counts, balance and recent commissions."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Update
from telegram.constants import ParseMode

from satshare import qr
from satshare.affiliates import service as affiliates
from satshare.affiliates import stats as affiliate_stats
from satshare.bot import keyboards, texts
from satshare.bot.handlers.ui import answer, show
from satshare.bot.runtime import BotContext, esc, sats, t, user_of
from satshare.payouts import overview
from satshare.reports import flows as report_flows

RECENT = 5
MONTHS = 3


def _level_lines(
    language: str,
    levels: Sequence[affiliates.Level],
    terms: affiliates.Terms,
    progress: affiliate_stats.ReferralStats,
) -> list[str]:
    """Where the affiliate stands among the levels, and what the next one takes. Custom
    terms and suspensions override levels, so then there is nothing to show."""
    if not levels or not terms.label.startswith(("level:", "base")):
        return []
    lines = []
    if terms.level:
        lines.append(t(language, texts.INVITE_LEVEL, level=esc(terms.level)))
    upcoming = affiliates.next_level(levels, progress)
    if upcoming is not None:
        missing = []
        if upcoming.paying_referrals is not None:
            missing.append(t(language, texts.MISSING_REFERRALS, count=upcoming.paying_referrals))
        if upcoming.referred_sales_sats is not None:
            missing.append(
                t(
                    language,
                    texts.MISSING_SALES,
                    amount=sats(language, upcoming.referred_sales_sats),
                )
            )
        lines.append(
            t(
                language,
                texts.INVITE_NEXT_LEVEL,
                level=esc(upcoming.level.name),
                share=f"{upcoming.level.share_bps / 100:g}",
                missing=t(language, texts.MISSING_AND).join(missing),
            )
        )
    return lines


async def invite(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    language = user.language
    program = runtime.payouts.program
    view = await overview.invite_view(runtime.db, program, user.id, runtime.now(), recent=RECENT)
    earnings, terms, progress = view.earnings, view.terms, view.progress
    opened, months, recent = view.clicks, view.months, view.recent
    link = runtime.referral_link(user.referral_code)
    share = terms.share_bps / 100
    lines = [
        t(
            language,
            texts.INVITE,
            link=esc(link),
            share=f"{share:g}",
            registered=progress.registered,
            paying=progress.paying,
            balance=sats(language, earnings.balance_sats),
            earned=sats(language, earnings.total_earned_sats),
        )
    ]
    lines.append(t(language, texts.INVITE_CLICKS, count=opened))
    lines += _level_lines(language, program.levels, terms, progress)
    if months:
        lines.append(t(language, texts.INVITE_MONTHS))
        lines += [
            t(
                language,
                texts.INVITE_MONTH_LINE,
                month=m.month,
                amount=sats(language, m.earned_sats),
                count=m.commissions,
            )
            for m in months[-MONTHS:]
        ]
    if recent:
        lines.append(t(language, texts.INVITE_RECENT))
        lines += [
            t(
                language,
                texts.INVITE_RECENT_LINE,
                amount=sats(language, -amount),
                date=when.strftime("%Y-%m-%d"),
            )
            for amount, when in recent
        ]
    share_text = t(language, texts.SHARE_TEXT, shop=runtime.shop_name)
    await show(update, context, "\n".join(lines), keyboards.invite(language, link, share_text))


async def referral_qr(update: Update, context: BotContext) -> None:
    """The invitation link as a QR photo, for showing on a phone or printing."""
    runtime = context.runtime
    user = await user_of(update, context)
    link = runtime.referral_link(user.referral_code)
    chat_id = update.effective_chat.id if update.effective_chat else user.id
    caption = t(user.language, texts.REFERRAL_QR, link=esc(link))
    await context.bot.send_photo(chat_id, qr.png(link), caption=caption, parse_mode=ParseMode.HTML)
    if update.callback_query is not None:
        await answer(update.callback_query)


def _short(value: str | None, keep: int = 16) -> str:
    if not value:
        return "-"
    return value if len(value) <= 2 * keep else f"{value[:keep]}…{value[-8:]}"


async def statements(update: Update, context: BotContext) -> None:
    """The per-payment split statement: proof, gross, share, terms and the entry's hash."""
    runtime = context.runtime
    user = await user_of(update, context)
    language = user.language
    rows = await report_flows.commission_statements(runtime.db, user.id, limit=RECENT)
    if not rows:
        text = t(language, texts.STATEMENTS_EMPTY)
        await show(update, context, text, keyboards.back(language))
        return
    blocks = [t(language, texts.STATEMENTS_TITLE)]
    for row in rows:
        block = t(
            language,
            texts.STATEMENT_LINE,
            date=row.created_at.strftime("%Y-%m-%d"),
            invoice=esc(row.invoice_id or "-"),
            gross=sats(language, row.gross_sats),
            share=f"{row.share_bps / 100:g}",
            terms=esc(row.terms or "-"),
            commission=sats(language, row.commission_sats),
            proof_kind=esc(row.proof_kind or "-"),
            proof=esc(_short(row.proof)),
            seq=row.seq if row.seq is not None else "-",
            hash=esc(row.entry_hash or t(language, texts.STATEMENT_UNSEALED)),
        )
        if row.reversed_by_transaction_id is not None:
            block += "\n" + t(language, texts.STATEMENT_REVERSED, id=row.reversed_by_transaction_id)
        blocks.append(block)
    await show(update, context, "\n\n".join(blocks), keyboards.back(language))
