"""Strings of the web checkout page (same gettext catalogs as the bot)."""

from __future__ import annotations

from satshare.i18n import N_, NC_, NP_

PAY_TITLE = N_("Pay {amount} sats")
DAYS_OF_ACCESS = NP_("{count} day of access.", "{count} days of access.")
STATUS = N_("Status")
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
STATUS_SETTLED = NC_("invoice status", "paid")
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
TRANSPARENCY_HOLD = NP_(
    "Commissions can be withdrawn {count} day after the sale.",
    "Commissions can be withdrawn {count} days after the sale.",
)
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
LEDGER_HEAD_TEXT = NP_(
    "{count} entry; the chain's head is entry {seq} with hash:",
    "{count} entries; the chain's head is entry {seq} with hash:",
)
LEDGER_HEAD_KEEP = N_(
    "Write this hash down. If anyone rewrote an earlier entry, the chain would no longer "
    "reach it. Ask the owner for the ledger export to recompute every figure yourself."
)
TRANSPARENCY_JSON = N_("The same figures as JSON")

HOME_WHAT = N_(
    "Subscriptions to private Telegram channels, paid in bitcoin. Every sale is shared with the "
    "affiliate who invited the buyer, in a double-entry ledger anyone can check."
)
HOME_SANDBOX = N_(
    "No payment processor is configured, so this is a sandbox: invoices go to built-in "
    "emulators on regtest and nothing here moves real coins. The admin API key is printed in "
    "the terminal where SatShare started."
)
HOME_SANDBOX_CHAT = N_("Open the sandbox chat and play a Telegram user")
HOME_LINK_SANDBOX = N_("Sandbox chat")
HOME_LINK_SANDBOX_TEXT = N_(
    "Talk to the bot as one or more Telegram users: buy a plan, pay, join the channel, invite "
    "a friend."
)
HOME_LINK_DOCS = N_("API documentation")
HOME_LINK_DOCS_TEXT = N_("Every REST operation, with a form to try it (needs an API key).")
HOME_LINK_TRANSPARENCY = N_("Transparency")
HOME_LINK_TRANSPARENCY_TEXT = N_(
    "How the money was shared, month by month, and the ledger's hash chain."
)
HOME_LINK_ADMIN = N_("Admin panel")
HOME_LINK_ADMIN_TEXT = N_("For the owner: sales, affiliates and payouts.")
HOME_LINK_HEALTH = N_("Health")
HOME_API = N_("Version {version}. Programs get this page as JSON:")
NOT_FOUND_TITLE = N_("Not found")
NOT_FOUND_HOME = N_("Home page")
NOT_FOUND_INVOICE = N_(
    "There is no invoice at this address. Check the link, or start a new purchase in the bot."
)
NOT_FOUND_PAGE = N_("There is no page at this address. Check the link.")
#: A link whose query holds a character no address may carry (a NUL): garbled in copying.
BROKEN_LINK_TITLE = N_("Broken link")
BROKEN_LINK_PAGE = N_(
    "Part of this link cannot be read: it was probably cut or garbled when copied. "
    "Open the link again from where you found it."
)

AMOUNT_SATS = N_("{amount} sats")
EXPIRES_IN_CLOCK = N_("Expires in {clock}")
EXPIRES_AT = N_("Pay before {when}.")
RATE_SANDBOX = N_("{source}, sandbox emulator")
PAID_TITLE = N_("Payment received")
PAID_UNTIL = N_("Your subscription is active until {until}.")
PAID_AMOUNT = N_("Paid: {amount} sats.")
PAID_NEXT = N_("What next:")
OPEN_BOT = N_("Back to the bot")
OPEN_SANDBOX_CHAT = N_("Back to the sandbox chat")
JOIN_CHANNEL = N_("Join {channel}")
CHANNEL_NUMBERED = N_("{plan}, channel {number}")
CHANNELS_IN_BOT = N_("The bot has sent you the links into the channels.")
CHANNELS_IN_SANDBOX = N_(
    "Join the channels from the sandbox chat: the bot has sent the links there."
)
NO_CHANNELS = N_("This plan gives no Telegram channel access.")

# Before paying, when the buyer already has an active subscription: what this payment does.
OUTLOOK_TITLE = N_("Before you pay")
OUTLOOK_EXTEND = NP_(
    "You already have {plan}, active until {until}. This payment adds {count} day to it: it "
    "will then run until {new_until}, with the same channels. Nothing is lost.",
    "You already have {plan}, active until {until}. This payment adds {count} days to it: it "
    "will then run until {new_until}, with the same channels. Nothing is lost.",
)
OUTLOOK_HELD = N_("You already have:")
OUTLOOK_HELD_LINE = N_("{plan}, active until {until}: {channels}")
OUTLOOK_ALONGSIDE = NP_(
    "{plan} is a different plan, so it runs alongside: {count} day from your payment (until "
    "{until} if you pay now), giving {channels}. What you have stays as it is.",
    "{plan} is a different plan, so it runs alongside: {count} days from your payment (until "
    "{until} if you pay now), giving {channels}. What you have stays as it is.",
)
OUTLOOK_CHANNELS = NP_("{count} Telegram channel", "{count} Telegram channels")
OUTLOOK_NO_CHANNELS = N_("no Telegram channel")
OUTLOOK_SHARED = NP_(
    "{count} of these channels comes with both plans: you keep access to it until the later "
    "of the two end dates.",
    "{count} of these channels come with both plans: you keep access to them until the later "
    "of the two end dates.",
)
OUTLOOK_CONTINUE = N_("Continue to payment")
OUTLOOK_BACK = N_("Go back")

# A promo code on the checkout page (#13): the same rules and reasons as in the bot.
PROMO_QUESTION = N_("Have a promo code?")
PROMO_LABEL = N_("Promo code")
PROMO_APPLY = N_("Apply")
PROMO_DISCOUNT = N_("Price {original} sats, promo code {code}: {discount} sats off.")
PROMO_BONUS_DAYS = NP_("Plus {count} extra day.", "Plus {count} extra days.")
PROMO_REFUSED = N_("Promo code {code} can't be used: {reason}")
PROMO_UNKNOWN = N_("there is no such code.")
PROMO_DISABLED = N_("it is no longer active.")
PROMO_NOT_YET = N_("it is not valid yet.")
PROMO_EXPIRED = N_("it has expired.")
PROMO_USED_UP = N_("it has been used up.")
PROMO_WRONG_PLAN = N_("it is not for this plan.")
PROMO_ALREADY_USED = N_("you have already used it.")
PROMO_FIRST_PURCHASE_ONLY = N_("it is for a first purchase only.")
PROMO_FAILED = N_("The code could not be applied right now: {reason}")
CLOSED_TITLE = N_("This invoice can no longer be paid")
CLOSED_TEXT = N_("Nothing was charged. Start a new purchase to get a fresh invoice.")
SIMULATE_FAILED = N_("The sandbox could not simulate this payment: {reason}")
SIMULATE_UNREACHABLE = N_("The server did not answer. Check that SatShare is still running.")

FOOTER_SUPPORT = N_("Questions about a payment? Contact {contact}.")
FOOTER_TERMS = N_("Terms of service")
SUPPORT_DEFAULT = N_("the channel owner")
CONFIRMING_TITLE = N_("Payment seen")
CONFIRMING_TEXT = N_(
    "Your payment has arrived and is waiting for its confirmation; this page updates by "
    "itself. Do not pay again."
)
RATE_LIMITED_TITLE = N_("Too many requests")
RATE_LIMITED = N_(
    "This address has sent more requests than this site accepts in a short time. "
    "Please wait {seconds} seconds, then reload the page."
)
