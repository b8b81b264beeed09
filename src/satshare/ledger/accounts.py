"""The chart of accounts. Codes are ``<kind-prefix>:<name>[:<id>]``."""

from __future__ import annotations

import re

from satshare.errors import InvalidRequest
from satshare.schemas import MAX_ID

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
#: Accounts that belong to a user, named by the user's id: ``payable:affiliate:<user_id>``.
USER_ACCOUNT_PREFIXES = ("payable:affiliate", "payable:customer")
#: The one spelling of a user id: no sign, no leading zero (the BIGINT bound is checked apart).
_USER_ACCOUNT = re.compile(r"^payable:(affiliate|customer):([1-9][0-9]{0,18})$")


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
    """The user a canonical account belongs to; None for every other account."""
    match = _USER_ACCOUNT.match(code)
    if match is None:
        return None
    user_id = int(match.group(2))
    return user_id if user_id <= MAX_ID else None


def require_canonical(code: str) -> int | None:
    """Check an account code given as input; return the user it belongs to, if any.

    A user's account has exactly one spelling, the one the ledger writes itself
    (``payable:affiliate:3``): ``payable:affiliate:0003`` would open a second account for
    user 3 that their balance never sees, and ``:-1`` or an id beyond BIGINT one that
    belongs to nobody.
    """
    kind_of(code)
    for prefix in USER_ACCOUNT_PREFIXES:
        if code == prefix or code.startswith(prefix + ":"):
            owner = user_of(code)
            if owner is None:
                raise InvalidRequest(
                    f"account {code!r} must name a user as {prefix}:<user_id>, the id written "
                    f"plainly: 1 to {MAX_ID}, no sign, no leading zeros (e.g. '{prefix}:3')"
                )
            return owner
    return None
