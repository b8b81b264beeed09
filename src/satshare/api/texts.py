"""Strings of the web checkout page (same gettext catalogs as the bot)."""

from __future__ import annotations

from satshare.bot.i18n import N_

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
