"""The chart of accounts. Codes are ``<kind-prefix>:<name>[:<id>]``."""

from __future__ import annotations

import re

from satshare.errors import InvalidRequest

OWNER_REVENUE = "revenue:owner"
#: Telegram Stars are a currency of their own: accounts whose last segment is "xtr" hold Stars.
STARS_CLEARING = "clearing:xtr"
STARS_REVENUE = "revenue:xtr"
STARS_COMMISSION = "expense:stars-commission"
#: Payouts requested and not yet paid or released: held out of the affiliate's balance.
PAYOUTS_IN_FLIGHT = "payable:payouts"
#: The routing or mining fee a payout cost the owner, and the flat fee affiliates paid.
PAYOUT_FEES = "expense:payout-fees"
PAYOUT_FEES_CHARGED = "revenue:payout-fees"
SATS = "SAT"
STARS = "XTR"

_KINDS = {
    "clearing": "asset",
    "revenue": "revenue",
    "payable": "liability",
    "expense": "expense",
    "equity": "equity",
}
_CODE = re.compile(r"^(clearing|revenue|payable|expense|equity)(:[a-z0-9_-]{1,40}){1,2}$")
_USER_ACCOUNT = re.compile(r"^payable:(affiliate|customer):(\d{1,18})$")


def clearing(provider: str) -> str:
    return f"clearing:{provider}"


def payout_source(provider: str) -> str:
    """The owner's wallet a payout leaves from: the provider's wallet, or their own (manual)."""
    return "clearing:owner-wallet" if provider == "manual" else clearing(provider)


def affiliate_payable(user_id: int) -> str:
    return f"payable:affiliate:{user_id}"


def customer_payable(user_id: int) -> str:
    """Money held for a buyer (an overpayment), owed back or to be applied."""
    return f"payable:customer:{user_id}"


def currency_of(code: str) -> str:
    """Each account holds one currency: Stars for codes ending in ':xtr', sats otherwise."""
    return STARS if code.rsplit(":", 1)[-1] == "xtr" else SATS


def kind_of(code: str) -> str:
    if not _CODE.match(code):
        raise InvalidRequest(
            f"account {code!r} is not a valid account code; use e.g. 'revenue:owner', "
            "'payable:affiliate:<user_id>', 'clearing:<provider>', 'expense:<name>' or "
            "'equity:<name>'"
        )
    return _KINDS[code.split(":", 1)[0]]


def user_of(code: str) -> int | None:
    match = _USER_ACCOUNT.match(code)
    return int(match.group(2)) if match else None
