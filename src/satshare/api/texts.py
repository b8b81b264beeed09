"""Strings of the web checkout page (same gettext catalogs as the bot)."""

from __future__ import annotations

from satshare.i18n import N_

PAY_TITLE = N_("Pay {amount} sats")
DAYS_OF_ACCESS = N_("{days} days of access.")
STATUS = N_("Status")
EXPIRES_IN = N_("Expires in")
SECONDS = N_("s")
PAID = N_("Payment received: your subscription is active until {until}.")
PRICE_FIAT = N_(
    "Price: {fiat}, at {rate} {currency}/BTC ({source}), fixed until the invoice expires."
)
PAY_WITH = N_("Pay with")
RAIL_BTCPAY = N_("Bitcoin (BTCPay)")
RAIL_LNBITS = N_("Lightning")
RAIL_ONCHAIN = N_("On-chain")
RAIL_BITPAY = N_("BitPay")
LIGHTNING = N_("Lightning")
ON_CHAIN = N_("On-chain")
COPY_INVOICE = N_("Copy invoice")
COPY_ADDRESS = N_("Copy address")
COPIED = N_("Copied")
OPEN_WALLET = N_("Open in wallet")
PROCESSOR_CHECKOUT = N_("Pay on the processor's page")
PAY_WITH_STARS = N_("Pay {stars} Stars in Telegram")
SANDBOX = N_("Sandbox")
SANDBOX_TEXT = N_(
    "No real payment processor is configured. This invoice lives on the built-in emulator "
    "(regtest): nothing here can be paid with real coins."
)
SIMULATE = N_("Simulate payment")
SWITCH_FAILED = N_("This payment method is not available right now.")
STATUS_NEW = N_("waiting for payment")
STATUS_PROCESSING = N_("payment seen, confirming")
STATUS_SETTLED = N_("paid")
STATUS_EXPIRED = N_("expired")
STATUS_INVALID = N_("invalid")

TRANSPARENCY_TITLE = N_("Where the money goes")
TRANSPARENCY_INTRO = N_(
    "Every payment is split between the owner and the affiliate who invited the buyer, in a "
    "double-entry ledger whose entries are chained by hashes. These figures are computed from "
    "that ledger."
)
TRANSPARENCY_RULES = N_(
    "Affiliates earn {share}% of every subscription bought by people they invited, renewals "
    "included. Nothing is paid for sign-ups and nothing goes to anyone further up: only the "
    "buyer's direct referrer earns."
)
TRANSPARENCY_LEVELS = N_("Levels:")
TRANSPARENCY_HOLD = N_("Commissions can be withdrawn {days} days after the sale.")
T_MONTH = N_("Month")
T_SALES = N_("Sales")
T_REFUNDS = N_("Refunds")
T_GROSS = N_("Received, sats")
T_OWNER = N_("Owner's share")
T_AFFILIATES = N_("Affiliates' share")
T_PAID_OUT = N_("Paid out")
T_OWED = N_("Owed at month end")
T_TOTAL = N_("Total")
T_STARS = N_("Telegram Stars received")
TRANSPARENCY_EMPTY = N_("No sales yet.")
TRANSPARENCY_OWED_NOW = N_("Owed to affiliates now: {owed} sats.")
LEDGER_HEAD = N_("Ledger")
LEDGER_HEAD_TEXT = N_("{entries} entries; the chain's head is entry {seq} with hash:")
LEDGER_HEAD_KEEP = N_(
    "Write this hash down. If anyone rewrote an earlier entry, the chain would no longer "
    "reach it. Ask the owner for the ledger export to recompute every figure yourself."
)
TRANSPARENCY_JSON = N_("The same figures as JSON")
RATE_LIMITED_TITLE = N_("Too many requests")
RATE_LIMITED = N_(
    "This address has sent more requests than SatShare accepts in a short time. "
    "Please wait {seconds} seconds, then reload the page."
)
