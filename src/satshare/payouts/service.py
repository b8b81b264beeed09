"""The payouts domain's rules, by concern: ``policy`` (what may be paid, where, at which
fee, when to ask again), ``states`` (the state machine and its ledger entries) and
``queries`` (reads and the saved destination).

This module re-exports their public names, so ``payouts.service.X`` keeps working for the
use cases (``flows.py``), the tests and code written before the split.
"""

from __future__ import annotations

from satshare.payouts.policy import (
    WATCH_RELEASED,
    BelowMinimum,
    InsufficientBalance,
    PayoutPolicy,
    Quote,
    Recheck,
    TermsNotAccepted,
    kinds_paid_by,
    quote,
)
from satshare.payouts.queries import (
    PayoutTotals,
    awaiting_manual_payment,
    due_for_check,
    due_for_sending,
    forget_destination,
    list_payouts,
    save_destination,
    saved_destination,
    totals,
)
from satshare.payouts.states import (
    approve,
    attach_invoice,
    cancel,
    claim,
    escalate_unknown,
    instant_split,
    mark_paid,
    order_of,
    record,
    release_unknown,
    request,
    require,
)

__all__ = [
    "WATCH_RELEASED",
    "BelowMinimum",
    "InsufficientBalance",
    "PayoutPolicy",
    "PayoutTotals",
    "Quote",
    "Recheck",
    "TermsNotAccepted",
    "approve",
    "attach_invoice",
    "awaiting_manual_payment",
    "cancel",
    "claim",
    "due_for_check",
    "due_for_sending",
    "escalate_unknown",
    "forget_destination",
    "instant_split",
    "kinds_paid_by",
    "list_payouts",
    "mark_paid",
    "order_of",
    "quote",
    "record",
    "release_unknown",
    "request",
    "require",
    "save_destination",
    "saved_destination",
    "totals",
]
