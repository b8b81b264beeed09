"""Invite & earn: the referral link, referral counts, balance and recent commissions."""

from __future__ import annotations

from sqlalchemy import select
from telegram import Update
from telegram.ext import ContextTypes

from satshare.affiliates import service as affiliates
from satshare.bot import keyboards, texts
from satshare.bot.handlers.ui import show
from satshare.bot.runtime import esc, runtime_of, sats, t, user_of
from satshare.ledger import accounts
from satshare.ledger.models import Account, Entry, Posting
from satshare.users import repository as users_repo

RECENT = 5


async def invite(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    user = await user_of(update, context)
    language = user.language
    code = accounts.affiliate_payable(user.id)
    program = runtime.container.payouts.program
    async with runtime.container.db.reading() as session:
        earnings = await affiliates.balance(session, user.id, program.hold_days, runtime.now())
        terms = await affiliates.terms_for(session, user.id, program)
        registered, paying = await users_repo.referral_counts(session, user.id)
        recent = (
            await session.execute(
                select(Posting.amount_sats, Entry.created_at)
                .join(Entry, Entry.id == Posting.entry_id)
                .join(Account, Account.id == Posting.account_id)
                .where(Account.code == code, Entry.kind.in_(("sale", "stars_sale")))
                .order_by(Entry.id.desc())
                .limit(RECENT)
            )
        ).all()
    link = runtime.referral_link(user.referral_code)
    share = terms.share_bps / 100
    lines = [
        t(
            language,
            texts.INVITE,
            link=esc(link),
            share=f"{share:g}",
            registered=registered,
            paying=paying,
            balance=sats(earnings.balance_sats),
            earned=sats(earnings.total_earned_sats),
        )
    ]
    if recent:
        lines.append(t(language, texts.INVITE_RECENT))
        lines += [
            t(
                language,
                texts.INVITE_RECENT_LINE,
                amount=sats(-amount),
                date=when.strftime("%Y-%m-%d"),
            )
            for amount, when in recent
        ]
    share_text = t(language, texts.SHARE_TEXT, shop=runtime.shop_name)
    await show(update, context, "\n".join(lines), keyboards.invite(language, link, share_text))
