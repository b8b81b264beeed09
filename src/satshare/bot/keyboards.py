"""Inline keyboards. Callback data stays short (Telegram allows 64 bytes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from urllib.parse import quote

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from satshare.bot import texts
from satshare.bot.runtime import plan_price, sats, t
from satshare.plans.models import Plan

MENU = "m:menu"
PLANS = "m:plans"
MY_SUBSCRIPTION = "m:sub"
INVITE = "m:invite"
WITHDRAW = "m:withdraw"
HELP = "m:help"
TERMS = "m:terms"
BUY = "buy:"
CHECK = "chk:"
RAIL = "pay:"
#: "Continue to payment" after being told what a purchase does: go:<rail>:<plan id>.
CONFIRM_PURCHASE = "go:"
RAIL_LABELS = {
    "btcpay": texts.RAIL_BTCPAY,
    "lnbits": texts.RAIL_LNBITS,
    "onchain": texts.RAIL_ONCHAIN,
    "bitpay": texts.RAIL_BITPAY,
    "stars": texts.RAIL_STARS,
}
LANGUAGE = "lang:"
ACCEPT_TERMS = "w:accept:"
SET_DESTINATION = "w:dest"
WITHDRAW_AMOUNT = "w:amount"
WITHDRAW_QUOTE = "w:q:"
WITHDRAW_CONFIRM = "w:ok:"
MY_PAYOUTS = "w:list"
STATEMENTS = "a:stmt"
REFERRAL_QR = "a:qr"
TOP = "top:"
PAYOUT_APPROVE = "pa:"
PAYOUT_CANCEL = "pc:"
TOP_NAME = "topname:"


# The fixed keyboards are built once per language: PTB's objects are immutable once made,
# so one can go with every reply (the main menu goes with every /start).


@cache
def main_menu(language: str) -> InlineKeyboardMarkup:
    def button(label: str, data: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(t(language, label), callback_data=data)

    return InlineKeyboardMarkup(
        [
            [button(texts.BTN_PLANS, PLANS), button(texts.BTN_MY_SUBSCRIPTION, MY_SUBSCRIPTION)],
            [button(texts.BTN_INVITE, INVITE), button(texts.BTN_WITHDRAW, WITHDRAW)],
            [button(texts.BTN_HELP, HELP), button(texts.BTN_TERMS, TERMS)],
        ]
    )


@cache
def back(language: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(t(language, texts.BTN_BACK), callback_data=MENU)]]
    )


def plans(
    language: str, available: Sequence[Plan], titles: Mapping[str, str] | None = None
) -> InlineKeyboardMarkup:
    """One button per plan; ``titles`` (plan id → title) in the user's language."""
    rows = [
        [
            InlineKeyboardButton(
                t(
                    language,
                    texts.PLAN_BUTTON,
                    title=(titles or {}).get(plan.id, plan.title),
                    price=plan_price(language, plan),
                    count=plan.duration_days,
                ),
                callback_data=f"{BUY}{plan.id}",
            )
        ]
        for plan in available
    ]
    rows.append([InlineKeyboardButton(t(language, texts.BTN_BACK), callback_data=MENU)])
    return InlineKeyboardMarkup(rows)


def rails(language: str, plan_id: str, names: Sequence[str]) -> InlineKeyboardMarkup | None:
    """One button per rail; None when a plan id is too long for Telegram's 64-byte data."""
    rows = []
    for name in names:
        data = f"{RAIL}{name}:{plan_id}"
        if len(data.encode()) > 64:
            return None
        rows.append([InlineKeyboardButton(t(language, RAIL_LABELS[name]), callback_data=data)])
    rows.append([InlineKeyboardButton(t(language, texts.BTN_BACK), callback_data=MENU)])
    return InlineKeyboardMarkup(rows)


def confirm_purchase(language: str, plan_id: str, rail: str) -> InlineKeyboardMarkup:
    """Continue to the invoice, or back to the plans. The rail is left out (the plan's first)
    when a long plan id leaves it no room in Telegram's 64 bytes, as ``rails`` does."""
    data = f"{CONFIRM_PURCHASE}{rail}:{plan_id}"
    if len(data.encode()) > 64:
        data = f"{CONFIRM_PURCHASE}:{plan_id}"
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(t(language, texts.BTN_CONTINUE_PURCHASE), callback_data=data)],
            [InlineKeyboardButton(t(language, texts.BTN_BACK_TO_PLANS), callback_data=PLANS)],
        ]
    )


def invoice(language: str, invoice_id: str, checkout_url: str | None) -> InlineKeyboardMarkup:
    rows = []
    if checkout_url:
        rows.append([InlineKeyboardButton(t(language, texts.BTN_OPEN_CHECKOUT), url=checkout_url)])
    rows.append(
        [
            InlineKeyboardButton(
                t(language, texts.BTN_CHECK_PAYMENT), callback_data=f"{CHECK}{invoice_id}"
            )
        ]
    )
    return InlineKeyboardMarkup(rows)


def join_links(
    language: str, links: Sequence[str], titles: Sequence[str | None] = ()
) -> InlineKeyboardMarkup:
    """One button per channel link, named after the channel when its title is known."""
    named = [*titles, *[None] * (len(links) - len(titles))]
    rows = [
        [
            InlineKeyboardButton(
                t(language, texts.BTN_JOIN_NAMED, channel=title)
                if title
                else t(language, texts.BTN_JOIN, number=n),
                url=link,
            )
        ]
        for n, (link, title) in enumerate(zip(links, named, strict=True), start=1)
    ]
    rows.append([InlineKeyboardButton(t(language, texts.BTN_BACK), callback_data=MENU)])
    return InlineKeyboardMarkup(rows)


def invite(language: str, link: str, share_text: str) -> InlineKeyboardMarkup:
    share = f"https://t.me/share/url?url={quote(link, safe='')}&text={quote(share_text, safe='')}"
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(t(language, texts.BTN_SHARE), url=share)],
            [InlineKeyboardButton(t(language, texts.BTN_REFERRAL_QR), callback_data=REFERRAL_QR)],
            [InlineKeyboardButton(t(language, texts.BTN_STATEMENTS), callback_data=STATEMENTS)],
            [InlineKeyboardButton(t(language, texts.BTN_BACK), callback_data=MENU)],
        ]
    )


@cache
def languages() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("English", callback_data=f"{LANGUAGE}en"),
                InlineKeyboardButton("Русский", callback_data=f"{LANGUAGE}ru"),
            ]
        ]
    )


def withdraw(
    language: str,
    *,
    accept_version: str | None,
    withdraw_all: int | None,
    other_amount: bool,
) -> InlineKeyboardMarkup:
    def button(label: str, data: str, **values: object) -> list[InlineKeyboardButton]:
        return [InlineKeyboardButton(t(language, label, **values), callback_data=data)]

    rows = []
    if accept_version is not None:
        rows.append(button(texts.BTN_ACCEPT_TERMS, f"{ACCEPT_TERMS}{accept_version}"))
    if withdraw_all is not None:
        rows.append(
            button(
                texts.BTN_WITHDRAW_ALL,
                f"{WITHDRAW_QUOTE}{withdraw_all}",
                amount=sats(language, withdraw_all),
            )
        )
    if other_amount:
        rows.append(button(texts.BTN_OTHER_AMOUNT, WITHDRAW_AMOUNT))
    rows.append(button(texts.BTN_SET_DESTINATION, SET_DESTINATION))
    rows.append(button(texts.BTN_MY_PAYOUTS, MY_PAYOUTS))
    rows.append(button(texts.BTN_BACK, MENU))
    return InlineKeyboardMarkup(rows)


def confirm_payout(language: str, amount_sats: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t(language, texts.BTN_CONFIRM), callback_data=f"{WITHDRAW_CONFIRM}{amount_sats}"
                ),
                InlineKeyboardButton(t(language, texts.BTN_CANCEL), callback_data=WITHDRAW),
            ]
        ]
    )


def top(language: str, by: str, period: str, name_shown: bool) -> InlineKeyboardMarkup:
    def button(label: str, data: str, selected: bool = False) -> InlineKeyboardButton:
        text = t(language, label)
        return InlineKeyboardButton(f"• {text}" if selected else text, callback_data=data)

    toggle = "off" if name_shown else "on"
    return InlineKeyboardMarkup(
        [
            [
                button(texts.BTN_TOP_SALES, f"{TOP}sales:{period}", by == "sales"),
                button(texts.BTN_TOP_REFERRALS, f"{TOP}referrals:{period}", by == "referrals"),
            ],
            [
                button(texts.BTN_WEEK, f"{TOP}{by}:week", period == "week"),
                button(texts.BTN_MONTH, f"{TOP}{by}:month", period == "month"),
                button(texts.BTN_ALL_TIME, f"{TOP}{by}:all", period == "all"),
            ],
            [
                button(
                    texts.BTN_HIDE_NAME if name_shown else texts.BTN_SHOW_NAME,
                    f"{TOP_NAME}{toggle}:{by}:{period}",
                )
            ],
            [button(texts.BTN_BACK, MENU)],
        ]
    )


def payout_decision(language: str, payout_id: int) -> InlineKeyboardMarkup:
    """For the admin chats: decide a payout waiting for approval."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t(language, texts.BTN_APPROVE), callback_data=f"{PAYOUT_APPROVE}{payout_id}"
                ),
                InlineKeyboardButton(
                    t(language, texts.BTN_REJECT), callback_data=f"{PAYOUT_CANCEL}{payout_id}"
                ),
            ]
        ]
    )
