"""Withdraw: the affiliate's balance, terms acceptance, payout destination, quote, confirm.

Typed input (a destination, an amount) is awaited with a flag in ``user_data``: the next text
message is taken as the answer. The flag lives in memory; after a restart the user simply
presses the button again, nothing is lost.
"""

from __future__ import annotations

from telegram import Update

from satshare.affiliates import flows as affiliate_flows
from satshare.bot import keyboards, texts
from satshare.bot.handlers import core, growth
from satshare.bot.handlers.ui import answer, expect_input, expected_input, show
from satshare.bot.runtime import BotContext, BotRuntime, esc, sats, t, user_of
from satshare.errors import DomainError
from satshare.payouts import flows
from satshare.payouts import service as payouts
from satshare.payouts.destinations import DestinationKind, mask
from satshare.payouts.models import PayoutStatus
from satshare.payouts.overview import overview
from satshare.users.models import User

CONFIRMED = "confirmed_payouts"
RECENT_PAYOUTS = 5
#: Telegram messages hold 4,096 characters; longer terms are shown in part with a link.
TERMS_PREVIEW_CHARS = 2_500
STATUS_LABELS = {
    PayoutStatus.AWAITING_APPROVAL: texts.PAYOUT_STATUS_AWAITING_APPROVAL,
    PayoutStatus.APPROVED: texts.PAYOUT_STATUS_APPROVED,
    PayoutStatus.SENDING: texts.PAYOUT_STATUS_SENDING,
    PayoutStatus.PAID: texts.PAYOUT_STATUS_PAID,
    PayoutStatus.FAILED: texts.PAYOUT_STATUS_FAILED,
    PayoutStatus.UNKNOWN: texts.PAYOUT_STATUS_UNKNOWN,
    PayoutStatus.CANCELED: texts.PAYOUT_STATUS_CANCELED,
}


def _fee_policy(runtime: BotRuntime, language: str) -> str:
    policy = runtime.payouts.policy

    def one(rail: str, fee: int) -> str:
        if fee:
            return t(language, texts.FEE_FLAT, rail=t(language, rail), fee=sats(language, fee))
        return t(language, texts.FEE_OWNER_PAYS, rail=t(language, rail))

    return t(
        language,
        texts.WITHDRAW_FEES,
        lightning=one(texts.RAIL_NAME_LIGHTNING, policy.lightning_fee_sats),
        onchain=one(texts.RAIL_NAME_ONCHAIN, policy.onchain_fee_sats),
    )


def _terms_text(runtime: BotRuntime, language: str) -> str:
    settings = runtime.config
    text = settings.affiliate.terms_text.strip()
    if len(text) > TERMS_PREVIEW_CHARS:
        url = f"{settings.server.base_url}/api/v1/affiliate-program"
        text = (
            text[:TERMS_PREVIEW_CHARS].rstrip()
            + "…\n"
            + t(language, texts.TERMS_TRUNCATED, url=url)
        )
    return t(
        language,
        texts.TERMS_ACCEPT_FIRST,
        version=esc(settings.affiliate.terms_version),
        text=esc(text),
    )


async def withdraw(update: Update, context: BotContext) -> None:
    user = await user_of(update, context)
    expect_input(context, None)
    await _show_withdraw(update, context, user)


async def _show_withdraw(
    update: Update, context: BotContext, user: User, notice: str | None = None
) -> None:
    runtime = context.runtime
    ctx = runtime.payouts
    language = user.language
    program = ctx.program
    view = await overview(runtime.db, program, user.id, runtime.now())
    money, totals, destination = view.balance, view.payouts, view.destination
    accepted = view.terms_accepted_at is not None
    lines = [
        t(
            language,
            texts.WITHDRAW,
            balance=sats(language, money.balance_sats),
            available=sats(language, money.available_sats),
            in_payouts=sats(language, totals.in_flight_sats),
            paid_out=sats(language, totals.paid_sats),
            minimum=sats(language, ctx.policy.min_sats),
        )
    ]
    if money.pending_sats:
        lines.append(
            t(
                language,
                texts.WITHDRAW_PENDING,
                pending=sats(language, money.pending_sats),
                days=program.hold_days,
            )
        )
    if money.balance_sats < 0:
        lines.append(t(language, texts.WITHDRAW_NEGATIVE))
    elif money.available_sats < ctx.policy.min_sats:
        # No Withdraw button below the minimum: say why, and how far it is.
        lines.append(
            t(
                language,
                texts.WITHDRAW_SHORT,
                minimum=sats(language, ctx.policy.min_sats),
                missing=sats(language, ctx.policy.min_sats - money.available_sats),
            )
        )
    if destination is not None:
        lines.append(
            t(
                language,
                texts.WITHDRAW_DESTINATION,
                destination=esc(mask(destination.value)),
            )
        )
    else:
        lines.append(t(language, texts.WITHDRAW_NO_DESTINATION))
    lines.append(_fee_policy(runtime, language))
    if ctx.policy.instant_lightning:
        lines.append(t(language, texts.WITHDRAW_INSTANT))
    if not accepted:
        lines.append("\n" + _terms_text(runtime, language))
    can_withdraw = (
        accepted and destination is not None and money.available_sats >= ctx.policy.min_sats
    )
    markup = keyboards.withdraw(
        language,
        accept_version=None if accepted else program.terms_version,
        withdraw_all=money.available_sats if can_withdraw else None,
        other_amount=can_withdraw,
    )
    await show(update, context, "\n".join(lines), markup, notice)


async def accept_terms(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    query = update.callback_query
    assert query is not None and query.data is not None
    version = query.data.removeprefix(keyboards.ACCEPT_TERMS)
    current = runtime.payouts.program.terms_version
    if version != current:
        # They were shown an older text: show the new one instead of recording the old.
        await _show_withdraw(update, context, user, t(user.language, texts.TERMS_CHANGED))
        return
    await affiliate_flows.accept_terms(runtime.db, user.id, current, runtime.now())
    accepted = t(user.language, texts.TERMS_ACCEPTED, version=current)
    await _show_withdraw(update, context, user, accepted)


async def ask_destination(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    policy = runtime.payouts.policy
    if policy.supports(DestinationKind.ONCHAIN):
        text = t(user.language, texts.ASK_DESTINATION_ONCHAIN, network=esc(policy.network))
    else:
        text = t(user.language, texts.ASK_DESTINATION)
    expect_input(context, "destination")
    await show(update, context, text, keyboards.back(user.language))


async def ask_amount(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    available = await _available(runtime, user)
    minimum = runtime.payouts.policy.min_sats
    if available < minimum:
        text = t(
            user.language,
            texts.NOTHING_TO_WITHDRAW,
            minimum=sats(user.language, minimum),
            available=sats(user.language, available),
        )
        await show(update, context, text, keyboards.back(user.language))
        return
    expect_input(context, "amount")
    text = t(
        user.language,
        texts.ASK_AMOUNT,
        minimum=sats(user.language, minimum),
        available=sats(user.language, available),
    )
    await show(update, context, text, keyboards.back(user.language))


async def _available(runtime: BotRuntime, user: User) -> int:
    program = runtime.payouts.program
    money = await affiliate_flows.balance(runtime.db, user.id, program.hold_days, runtime.now())
    return money.available_sats


async def text_input(update: Update, context: BotContext) -> None:
    """A destination or an amount the user was asked for; anything else is 'unknown'."""
    awaiting = expected_input(context)
    message = update.effective_message
    if awaiting is None or message is None or not message.text:
        await core.unknown(update, context)
        return
    user = await user_of(update, context)
    if awaiting == growth.AWAITING_PROMO:
        await growth.receive_code(update, context, user, message.text)
    elif awaiting == "destination":
        await _receive_destination(update, context, user, message.text)
    else:
        await _receive_amount(update, context, user, message.text)


async def _receive_destination(update: Update, context: BotContext, user: User, text: str) -> None:
    runtime = context.runtime
    try:
        saved = await flows.save_destination(runtime.payouts, user.id, text)
    except DomainError as exc:
        reply = t(user.language, texts.DESTINATION_INVALID, reason=esc(exc.detail))
        await show(update, context, reply, keyboards.back(user.language))
        return  # still awaiting: the next message is another try
    expect_input(context, None)
    done = t(user.language, texts.DESTINATION_SAVED, destination=esc(saved.masked))
    await show(update, context, done)
    await _show_withdraw(update, context, user)


def _parse_amount(text: str) -> int | None:
    """Whole sats as people type them: "25000", "25 000" (any space, Russian's no-break space
    included), "25,000", "25_000", optionally followed by "sats" or "сат"."""
    lowered = text.strip().lower()
    for unit in ("sats", "sat", "сат.", "сат"):
        lowered = lowered.removesuffix(unit)
    digits = "".join(ch for ch in lowered if not ch.isspace() and ch not in "_,'")
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 12 else None


async def _receive_amount(update: Update, context: BotContext, user: User, text: str) -> None:
    runtime = context.runtime
    available = await _available(runtime, user)
    minimum = runtime.payouts.policy.min_sats
    amount = _parse_amount(text)
    if amount is None or not minimum <= amount <= available:
        reply = t(
            user.language,
            texts.AMOUNT_INVALID,
            minimum=sats(user.language, minimum),
            available=sats(user.language, available),
        )
        await show(update, context, reply, keyboards.back(user.language))
        return
    expect_input(context, None)
    await _show_quote(update, context, user, amount)


async def quote(update: Update, context: BotContext) -> None:
    user = await user_of(update, context)
    query = update.callback_query
    assert query is not None and query.data is not None
    amount = _parse_amount(query.data.removeprefix(keyboards.WITHDRAW_QUOTE))
    if amount is None:
        await _show_withdraw(update, context, user)
        return
    await _show_quote(update, context, user, amount)


async def _show_quote(update: Update, context: BotContext, user: User, amount: int) -> None:
    runtime = context.runtime
    policy = runtime.payouts.policy
    destination = await flows.saved_destination(runtime.payouts, user.id)
    if destination is None:
        await ask_destination(update, context)
        return
    kind = DestinationKind(destination.kind)
    priced = payouts.quote(policy, amount, kind)
    language = user.language
    lines = [
        t(
            language,
            texts.WITHDRAW_QUOTE,
            amount=sats(language, priced.amount_sats),
            fee=sats(language, priced.fee_sats),
            send=sats(language, priced.send_sats),
            destination=esc(mask(destination.value)),
        )
    ]
    rail = texts.RAIL_NAME_LIGHTNING if kind.lightning else texts.RAIL_NAME_ONCHAIN
    if priced.fee_sats == 0:
        lines.append(t(language, texts.WITHDRAW_QUOTE_OWNER_PAYS, rail=t(language, rail)))
    approval = approval_line(language, amount, policy)
    if approval is not None:
        lines.append(approval)
    await show(update, context, "\n".join(lines), keyboards.confirm_payout(language, amount))


async def confirm(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    query = update.callback_query
    assert query is not None and query.data is not None and query.message is not None
    amount = _parse_amount(query.data.removeprefix(keyboards.WITHDRAW_CONFIRM))
    if amount is None:
        await _show_withdraw(update, context, user)
        return
    # A double tap must not request twice: the quote message is the request's identity.
    # Checked and marked before any await, so two presses cannot both pass.
    confirmed: set[int] = (
        context.user_data.setdefault(CONFIRMED, set()) if context.user_data is not None else set()
    )
    if query.message.message_id in confirmed:
        await answer(query, t(user.language, texts.WITHDRAW_ALREADY))
        return
    confirmed.add(query.message.message_id)
    try:
        payout = await flows.request_payout(
            runtime.payouts,
            user_id=user.id,
            amount_sats=amount,
            destination=None,
            requested_by=f"telegram:{user.external_id}",
        )
    except DomainError as exc:
        confirmed.discard(query.message.message_id)
        reply = t(user.language, texts.WITHDRAW_REFUSED, reason=esc(exc.detail))
        await show(update, context, reply, keyboards.back(user.language))
        return
    done = t(user.language, texts.WITHDRAW_REQUESTED, id=payout.id)
    await show(update, context, done, keyboards.back(user.language))


async def my_payouts(update: Update, context: BotContext) -> None:
    runtime = context.runtime
    user = await user_of(update, context)
    language = user.language
    recent = await flows.list_payouts(runtime.payouts, limit=RECENT_PAYOUTS, user_id=user.id)
    if not recent:
        await show(update, context, t(language, texts.PAYOUTS_EMPTY), keyboards.back(language))
        return
    lines = [t(language, texts.PAYOUTS_TITLE)]
    lines += [
        t(
            language,
            texts.PAYOUTS_LINE,
            id=p.id,
            date=p.created_at.strftime("%Y-%m-%d"),
            amount=sats(language, p.amount_sats),
            destination=esc(mask(p.destination)),
            status=t(language, STATUS_LABELS.get(p.status, p.status)),
        )
        for p in recent
    ]
    await show(update, context, "\n".join(lines), keyboards.back(language))


def approval_line(language: str, amount: int, policy: payouts.PayoutPolicy) -> str | None:
    """The quote's line saying the owner approves this withdrawal first; None when it is
    approved at once (at or below ``payouts.auto_approve_max_sats``)."""
    if amount <= policy.auto_approve_max_sats:
        return None
    if policy.auto_approve_max_sats == 0:  # every one is: not "above 0 sats"
        return t(language, texts.WITHDRAW_QUOTE_APPROVAL_ALWAYS)
    limit = sats(language, policy.auto_approve_max_sats)
    return t(language, texts.WITHDRAW_QUOTE_APPROVAL, limit=limit)
