"""Every user-facing string of the bot. English is the msgid; catalogs translate it.

Placeholders use str.format names; values are HTML-escaped by the caller (parse mode HTML).
"""

from __future__ import annotations

from satshare.i18n import N_, NC_, NP_

WELCOME = N_(
    "Welcome to {shop}! Subscribe to the private channels here and pay in bitcoin.\n\n"
    "Invite friends with your link and earn {share}% of every subscription they buy."
)
WELCOME_BACK = N_("Welcome back, {name}!")
REFERRED_BY = N_("You joined through {referrer}'s invitation.")
REF_ALREADY = N_("You are already registered, so this invitation can't change who invited you.")
REF_OWN = N_("That is your own invitation link. Share it with friends instead!")
REF_UNKNOWN = N_("This invitation link is not valid, but you are welcome to look around.")
MENU_TITLE = N_("What would you like to do?")

BTN_PLANS = N_("Plans")
BTN_MY_SUBSCRIPTION = N_("My subscription")
BTN_INVITE = N_("Invite & earn")
BTN_WITHDRAW = N_("Withdraw")
BTN_HELP = N_("Help")
BTN_TERMS = N_("Terms")
BTN_BACK = N_("« Menu")
BTN_OPEN_CHECKOUT = N_("Open checkout")
BTN_CHECK_PAYMENT = N_("Check payment")
BTN_SHARE = N_("Share my link")
BTN_JOIN = N_("Join channel {number}")
BTN_JOIN_NAMED = N_("Join {channel}")

PLANS_TITLE = N_("Choose a plan:")
PLANS_EMPTY = N_("No plans are on sale right now.")
PLAN_BUTTON = NP_("{title}: {price} / {count} day", "{title}: {price} / {count} days")
AMOUNT_SATS = N_("{amount} sats")
INVOICE_FIAT = N_(
    "Price: {fiat} at {rate} {currency}/BTC ({source}), fixed until the invoice expires."
)
RATE_SANDBOX = N_("{source}, sandbox emulator")
PLAN_GONE = N_("This plan is no longer on sale. Choose another one:")

INVOICE = N_(
    "<b>{title}</b>\nAmount: <b>{amount} sats</b>\nPay before {expires} UTC, then press "
    '"Check payment".'
)
INVOICE_LIGHTNING = N_("Lightning invoice:\n<code>{bolt11}</code>")
INVOICE_ADDRESS = N_("On-chain address:\n<code>{address}</code>")
INVOICE_CHECKOUT = N_("Checkout page: {url}")
PAYMENT_NOT_YET = N_("Not paid yet. It can take a moment after you pay.")
PAYMENT_PROCESSING = N_("Payment seen, waiting for its confirmation.")
PAYMENT_DONE = N_("Paid! Your access links are on their way.")
PAYMENT_EXPIRED = N_("This invoice has expired. Choose the plan again for a new one.")
PROVIDER_DOWN = N_(
    "The payment service is not answering right now. Please try again in a few minutes."
)

PAYMENT_CONFIRMED = N_("Payment received: {plan} is active until {until} UTC.")
ACCESS_RESENT = N_("Your access to {plan}, active until {until} UTC:")
ACCESS_JOIN_REQUEST = N_("Open the link and ask to join; you will be let in at once.")
ACCESS_ONE_USE = NP_(
    "Your personal links work once and for {count} hour.",
    "Your personal links work once and for {count} hours.",
)
ACCESS_UNAVAILABLE = N_(
    'Your access links could not be created right now; open "My subscription" in a minute.'
)
NO_SUBSCRIPTION = N_("You have no active subscription. See the plans to get one.")
MY_SUBSCRIPTION_LINE = N_("• {plan}: active until {until} UTC")

INVITE = N_(
    "Your invitation link:\n{link}\n\nYou earn {share}% of every subscription bought by people "
    "who join through it, renewals included, in bitcoin. Only their purchases count: nothing "
    "is paid for sign-ups.\n\nRegistered: {registered}\nPaying: {paying}\n"
    "Balance: {balance} sats\nEarned in total: {earned} sats"
)
INVITE_RECENT = N_("Recent commissions:")
INVITE_RECENT_LINE = N_("• +{amount} sats on {date}")
SHARE_TEXT = N_("Join me on {shop}")
BTN_STATEMENTS = N_("Proof of my commissions")
BTN_REFERRAL_QR = N_("QR code of my link")
REFERRAL_QR = N_("Your invitation link as a QR code, to show or print:\n{link}")
STATEMENTS_TITLE = N_(
    "Your last commissions, each with the processor's proof of payment and its entry in the "
    "public ledger chain (see /transparency on the website):"
)
STATEMENTS_EMPTY = N_("No commissions yet: they appear here when someone you invited pays.")
STATEMENT_LINE = N_(
    "<b>{date}</b> · invoice <code>{invoice}</code>\n"
    "Paid {gross} sats → your {share}% ({terms}) = <b>{commission} sats</b>\n"
    "Proof ({proof_kind}): <code>{proof}</code>\nLedger entry #{seq}: <code>{hash}</code>"
)
STATEMENT_UNSEALED = N_("not chained yet")
STATEMENT_REVERSED = N_("Refunded: this commission was taken back (entry #{id}).")

WITHDRAW = N_(
    "<b>Withdraw</b>\nBalance: {balance} sats\nAvailable now: {available} sats\n"
    "In withdrawals on their way: {in_payouts} sats\nPaid out so far: {paid_out} sats\n"
    "Minimum withdrawal: {minimum} sats"
)
WITHDRAW_PENDING = N_(
    "On hold: {pending} sats (commissions become available {days} days after the sale)."
)
WITHDRAW_SHORT = N_(
    "You can withdraw once {minimum} sats are available: {missing} sats to go. Every "
    "sale someone you invited makes brings you closer."
)
WITHDRAW_NEGATIVE = N_(
    "Your balance is below zero because a payment you earned on was refunded after its "
    "commission had been paid out. Your next commissions make up the difference first."
)
WITHDRAW_DESTINATION = N_("Paid to: {destination}")
WITHDRAW_NO_DESTINATION = N_('No payout destination yet: press "Set destination".')
WITHDRAW_FEES = N_("Fees: {lightning}; {onchain}.")
FEE_OWNER_PAYS = N_("{rail} fee paid by the owner")
FEE_FLAT = N_("{rail}: {fee} sats deducted")
RAIL_NAME_LIGHTNING = N_("Lightning")
RAIL_NAME_ONCHAIN = N_("on-chain")
WITHDRAW_INSTANT = N_(
    "Instant split is on: each commission is sent to your Lightning Address as soon as the "
    "sale is paid."
)
TERMS_ACCEPT_FIRST = N_(
    "<b>Affiliate terms, version {version}</b>\n{text}\n\nPlease read and accept them before "
    "your first withdrawal."
)
TERMS_TRUNCATED = N_("Full text: {url}")
TERMS_ACCEPTED = N_("Thank you: you accepted the affiliate terms, version {version}.")
TERMS_CHANGED = N_("The affiliate terms have just changed. Please read the new version.")
BTN_ACCEPT_TERMS = N_("I accept the terms")
BTN_SET_DESTINATION = N_("Set destination")
BTN_WITHDRAW_ALL = N_("Withdraw {amount} sats")
BTN_OTHER_AMOUNT = N_("Other amount")
BTN_MY_PAYOUTS = N_("My withdrawals")
BTN_CONFIRM = N_("Confirm")
BTN_CANCEL = N_("Cancel")
ASK_DESTINATION = N_(
    "Send me where you want to be paid: a Lightning Address (name@wallet.com) or an LNURL-pay code."
)
ASK_DESTINATION_ONCHAIN = N_(
    "Send me where you want to be paid: a Lightning Address (name@wallet.com), an LNURL-pay "
    "code, or a bitcoin address ({network})."
)
DESTINATION_SAVED = N_("Saved: you will be paid to {destination}.")
DESTINATION_INVALID = N_("That destination cannot be used: {reason}\nSend another one, or /start.")
ASK_AMOUNT = N_("How many sats do you want to withdraw? You can withdraw {minimum} to {available}.")
AMOUNT_INVALID = N_("Please send a whole number of sats between {minimum} and {available}.")
NOTHING_TO_WITHDRAW = N_(
    "Nothing to withdraw yet: the minimum is {minimum} sats and {available} sats are available."
)
WITHDRAW_QUOTE = N_(
    "<b>Confirm the withdrawal</b>\nAmount: {amount} sats\nFee: {fee} sats\n"
    "You receive: <b>{send} sats</b>\nTo: {destination}"
)
WITHDRAW_QUOTE_OWNER_PAYS = N_("The {rail} fee is paid by the owner.")
WITHDRAW_QUOTE_APPROVAL = N_("Withdrawals above {limit} sats are approved by the owner first.")
WITHDRAW_QUOTE_APPROVAL_ALWAYS = N_("Every withdrawal is approved by the owner first.")
WITHDRAW_REQUESTED = N_("Withdrawal #{id} requested. I will tell you when it is sent.")
WITHDRAW_REFUSED = N_("The withdrawal was not made: {reason}")
WITHDRAW_ALREADY = N_("This withdrawal was already requested.")
PAYOUTS_TITLE = N_("Your last withdrawals:")
PAYOUTS_EMPTY = N_("You have not withdrawn anything yet.")
PAYOUTS_LINE = N_("• #{id} {date}: {amount} sats to {destination}: {status}")
PAYOUT_STATUS_AWAITING_APPROVAL = N_("waiting for approval")
PAYOUT_STATUS_APPROVED = N_("approved")
PAYOUT_STATUS_SENDING = N_("sending")
PAYOUT_STATUS_PAID = NC_("payout status", "paid")
PAYOUT_STATUS_FAILED = N_("failed, returned to your balance")
PAYOUT_STATUS_UNKNOWN = N_("being checked")
PAYOUT_STATUS_CANCELED = N_("canceled, returned to your balance")
HELP = N_(
    "/start: main menu\n/plans: plans and prices\n/withdraw: withdraw your earnings\n"
    "/top: top affiliates\n"
    "/language: change the language\n"
    "/paysupport: help with a payment\n/terms: terms of service"
)
TERMS = N_(
    "Subscriptions give access to the private channels of the plan for the period paid. "
    "Payments are made in bitcoin and are final. Affiliates earn a share of each subscription "
    "bought by people they invited; nothing is paid for sign-ups."
)
TERMS_LINK = N_("Full terms: {url}")
SUPPORT = N_("the channel owner")
PAYSUPPORT = N_(
    "A problem with a payment? Contact {contact} and give your invoice id; every payment can "
    "be checked by it."
)
LANGUAGE_CHOOSE = N_("Choose your language:")
LANGUAGE_SET = N_("Language set to English.")
UNKNOWN = N_("I didn't understand that. Use the menu or /help.")
ERROR = N_("Something went wrong on our side. Please try again.")

JOIN_APPROVED = N_("Welcome! You now have access to {chat}.")
JOIN_DECLINED = N_(
    "Your request to join {chat} was declined: it needs an active subscription. See /plans."
)
NEW_REFERRAL = N_("New referral: {name} joined through your link.")
COMMISSION = N_("You earned {amount} sats: someone you invited bought a subscription.")
COMMISSION_REVERSED = N_(
    "A sale you earned {amount} sats on was refunded, so that commission was taken back from "
    "your balance (transaction #{transaction})."
)
EXPIRED = N_("Your subscription {plan} has ended. Renew it any time: /plans")
REMINDER = N_("Reminder: {plan} ends on {until} UTC. Renew to keep your access: /plans")
ADMIN_SALE = N_(
    "New sale: {plan} for {amount} sats (owner {owner} sats, affiliate {affiliate} sats)."
)
ADMIN_ALERT = N_("Attention: {what} (invoice {invoice}).")

PAYOUT_AWAITING_APPROVAL = N_(
    "Withdrawal #{id}: {amount} sats to {destination} is waiting for the owner's approval. "
    "The amount is set aside from your balance until then."
)
PAYOUT_APPROVED = N_("Withdrawal #{id}: {amount} sats to {destination} is approved and on its way.")
PAYOUT_INSTANT = N_("Sending your commission of {amount} sats to {destination} right now.")
PAYOUT_SENDING = N_("Withdrawal #{id}: {send} sats are being sent to {destination} now.")
PAYOUT_PAID = N_(
    "Withdrawal #{id} is done: {send} sats were sent to {destination}.\nProof: <code>{proof}</code>"
)
PAYOUT_PAID_FEE = N_("A fee of {fee} sats was kept under the fee policy.")
PAYOUT_FAILED = N_(
    "Withdrawal #{id} of {amount} sats could not be sent: {reason}. The amount is back in your "
    "balance; check your destination and try again."
)
PAYOUT_INSTANT_FAILED = N_(
    "Your commission of {amount} sats could not be sent to {destination} ({reason}); it stays "
    "in your balance."
)
PAYOUT_CANCELED = N_(
    "Withdrawal #{id} of {amount} sats was canceled: {reason}. The amount is back in your balance."
)
PAYOUT_UNKNOWN = N_(
    "Withdrawal #{id} of {amount} sats is taking longer than usual. We are asking the payment "
    "service what happened; it will never be sent twice."
)
PAYOUT_NO_REASON = N_("no reason given")
ADMIN_PAYOUT_APPROVAL = N_(
    "Payout #{id} waits for your approval: {amount} sats to {destination} for user #{user}.\n"
    "Decide below, or: <code>satshare payout approve {id}</code>"
)
ADMIN_PAYOUT_UNKNOWN = N_(
    "Payout #{id} ({send} sats to {destination}, user #{user}) has been unknown for a long "
    "time: the provider has not said whether it was paid ({reason}). SatShare keeps it held "
    "and keeps asking. Check it at the provider; if it was not paid: "
    '<code>satshare payout mark-failed {id} --reason "..."</code>'
)
ADMIN_WEBHOOK_FAILING = N_(
    "Webhook endpoint #{id} ({url}) has not accepted a delivery for 24 hours and is marked "
    "failing. Deliveries that gave up can be replayed once it works again: "
    "POST /api/v1/webhook-endpoints/{id}/replay"
)
ADMIN_PAYOUT_CONTRADICTION = N_(
    "Payout #{id} ({send} sats to {destination}, user #{user}) was {previous}, but the "
    "provider now says {said}. It is recorded as the provider says; check the affiliate's "
    "balance."
)

CMD_START = N_("Main menu")
CMD_PLANS = N_("Plans and prices")
CMD_LANGUAGE = N_("Change the language")
CMD_PAYSUPPORT = N_("Help with a payment")
CMD_TERMS = N_("Terms of service")
CMD_WITHDRAW = N_("Withdraw your earnings")
CMD_HELP = N_("Help")

RAIL_CHOOSE = N_("How do you want to pay?")
# Before the invoice, when the buyer already has an active subscription: what buying does.
OUTLOOK_EXTEND = NP_(
    "You already have <b>{plan}</b>, active until {until} UTC. Buying it again adds {count} "
    "day to it: it will then run until <b>{new_until} UTC</b>, with the same channels. "
    "Nothing is lost.",
    "You already have <b>{plan}</b>, active until {until} UTC. Buying it again adds {count} "
    "days to it: it will then run until <b>{new_until} UTC</b>, with the same channels. "
    "Nothing is lost.",
)
OUTLOOK_HELD = N_("You already have:")
OUTLOOK_HELD_LINE = N_("• <b>{plan}</b> until {until} UTC: {channels}")
OUTLOOK_ALONGSIDE = NP_(
    "<b>{plan}</b> is a different plan, so it runs alongside: {count} day from your payment "
    "(until {until} UTC if you pay now), giving {channels}. What you have stays as it is.",
    "<b>{plan}</b> is a different plan, so it runs alongside: {count} days from your payment "
    "(until {until} UTC if you pay now), giving {channels}. What you have stays as it is.",
)
OUTLOOK_SHARED = N_(
    "Both plans give {channels}: you keep access until the later of the two end dates."
)
OUTLOOK_NO_CHANNELS = N_("no Telegram channel")
BTN_CONTINUE_PURCHASE = N_("Continue to payment")
BTN_BACK_TO_PLANS = N_("« Plans")
RAIL_BTCPAY = N_("Bitcoin (BTCPay)")
RAIL_LNBITS = N_("Lightning")
RAIL_ONCHAIN = N_("On-chain")
RAIL_BITPAY = N_("BitPay")
RAIL_STARS = N_("Telegram Stars")
NO_RAIL = N_("This plan cannot be paid here. Choose another one:")
STARS_SUBSCRIPTION = N_(
    "{title}: {stars} Stars a month. Telegram renews it every 30 days; you can cancel any "
    "time in Telegram's settings."
)
STARS_PAY = N_("Pay {stars} Stars")
#: The Stars invoice's description under the plan's own (the shop: branding.name).
STARS_INVOICE_ACCESS = NP_(
    "{count} day of access from {shop}.", "{count} days of access from {shop}."
)
CHECKOUT_REFUSED_GONE = N_("This plan is no longer on sale.")
CHECKOUT_REFUSED_CHANGED = N_("The price has changed: please choose the plan again.")
CHECKOUT_REFUSED_USED = N_("This invoice has already been paid.")
CHECKOUT_REFUSED_UNKNOWN = N_("This invoice is not valid any more: please choose the plan again.")
REFUNDED = N_("Your payment for {plan} was refunded: {stars} Stars are back in your balance.")
REFUNDED_SATS = N_(
    "Your payment of {amount} sats for {plan} was refunded to you, and the time it paid for "
    "was taken off your subscription."
)
#: A refund queued before the amount was part of the message: no amount to name.
REFUNDED_BITCOIN = N_(
    "Your payment for {plan} was refunded to you, and the time it paid for was taken off your "
    "subscription."
)

TOP_TITLE_SALES = N_("<b>Top affiliates by referred sales</b>, {period}:")
TOP_TITLE_REFERRALS = N_("<b>Top affiliates by paying referrals</b>, {period}:")
PERIOD_WEEK = N_("last 7 days")
PERIOD_MONTH = N_("last 30 days")
PERIOD_ALL = N_("all time")
TOP_LINE_SALES = N_("{rank}. {name}: {value} sats")
TOP_LINE_REFERRALS = N_("{rank}. {name}: {value} paying")
TOP_ANONYMOUS = N_("anonymous affiliate")
TOP_YOU = N_("(you)")
TOP_EMPTY = N_("No referred sales in this period yet. Yours could be the first!")
TOP_NAME_SHOWN = N_("You are shown as {name}.")
TOP_NAME_HIDDEN = N_("You are shown as an anonymous affiliate.")
BTN_TOP_SALES = N_("By sales")
BTN_TOP_REFERRALS = N_("By referrals")
BTN_WEEK = N_("Week")
BTN_MONTH = N_("Month")
BTN_ALL_TIME = N_("All time")
BTN_SHOW_NAME = N_("Show my name")
BTN_HIDE_NAME = N_("Hide my name")
CMD_TOP = N_("Top affiliates")
INVITE_CLICKS = NP_("Your link was opened {count} time.", "Your link was opened {count} times.")

REPORT = N_(
    "<b>Report {month}</b>\nSales: {sales} (refunds: {refunds})\nReceived: {gross} sats\n"
    "Owner's share: {owner} sats\nAffiliates' share: {affiliates} sats\n"
    "Paid out to affiliates: {paid_out} sats\nOwed to affiliates at the end: {owed} sats"
)
REPORT_FILE = N_("Report {month}: days and affiliates")
REPORT_BAD_MONTH = N_("Give the month as YYYY-MM, for example /report 2026-11.")

INVITE_LEVEL = N_("Your level: {level}.")
INVITE_NEXT_LEVEL = N_("Next level: {level} ({share}%). Still to go: {missing}.")
MISSING_REFERRALS = N_("paying referrals: {count} more")
MISSING_SALES = N_("referred sales: {amount} sats more")
MISSING_AND = N_("; ")
INVITE_MONTHS = N_("Earned per month:")
INVITE_MONTH_LINE = N_("• {month}: {amount} sats (sales: {count})")

BTN_APPROVE = N_("Approve")
BTN_REJECT = N_("Cancel payout")
PAYOUT_DECIDED_APPROVED = N_("Payout #{id} approved by {admin}: it is being sent.")
PAYOUT_DECIDED_CANCELED = N_("Payout #{id} canceled by {admin}: the amount is back in the balance.")
PAYOUT_DECISION_REFUSED = N_("Not possible: {reason}")

# -- growth tools (issue #13) ---------------------------------------------------------------

BROADCAST_PREVIEW = N_(
    "Preview of broadcast #{id} ({lang}, {recipients} recipients when composed). "
    "Send it from the admin panel's Broadcasts page, with POST /api/v1/broadcasts/{id}/send "
    "or with `satshare broadcast send {id}`."
)
BROADCAST_PREVIEW_PHOTO = N_("With the photo: {photo}")
BROADCAST_GONE = N_("Broadcast #{id} no longer exists.")
TRIAL_STARTED = N_(
    "Free trial: {plan} is active until {until} UTC. Nothing is charged; a purchase made during "
    "the trial starts when it ends."
)
BTN_PROMO = N_("I have a promo code")
BTN_TRIAL = N_("Free trial: {title}, {days} days")
PROMO_ASK = N_("Send me your promo code.")
PROMO_ACCEPTED = N_("Promo code {code} accepted: {benefit} on your next purchase paid in bitcoin.")
PROMO_FOR_PLANS = N_("It applies to: {plans}.")
PROMO_PERCENT = N_("{value}% off")
PROMO_FIXED = N_("{value} sats off")
PROMO_DAYS = N_("{value} extra days")
PROMO_REFUSED = N_("Promo code {code} can't be used: {reason}")
PROMO_UNKNOWN = N_("there is no such code.")
PROMO_DISABLED = N_("it is no longer active.")
PROMO_NOT_YET = N_("it is not valid yet.")
PROMO_EXPIRED = N_("it has expired.")
PROMO_USED_UP = N_("it has been used up.")
PROMO_WRONG_PLAN = N_("it is not for this plan.")
PROMO_ALREADY_USED = N_("you have already used it.")
PROMO_FIRST_PURCHASE_ONLY = N_("it is for a first purchase only.")
INVOICE_PROMO = N_("Promo code {code}: {discount} sats off (the price was {original} sats).")
INVOICE_BONUS_DAYS = N_("Plus {days} extra days.")
TRIAL_ON = N_("Your free trial has started: the channel links are on their way.")
TRIAL_USED = N_("You have already used the free trial of this plan.")
TRIAL_SUBSCRIBED = N_("You already have this plan.")
TRIAL_NONE = N_("This plan has no free trial.")
