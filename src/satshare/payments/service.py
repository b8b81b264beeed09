"""The payments domain's rules, by concern: ``settlement`` (apply what a processor says,
exactly once), ``stars`` (Telegram Stars sales) and ``refunds``.

This module re-exports their public names, so ``payments.service.X`` keeps working for the
use cases (``flows.py``), the tests and code written before the split.
"""

from __future__ import annotations

from satshare.payments.refunds import (
    abort_stars_refund,
    begin_stars_refund,
    finish_stars_refund,
    record_bitcoin_refund,
)
from satshare.payments.settlement import (
    NO_AFFILIATE,
    SOLD_STATUSES,
    CommissionHook,
    Decision,
    Fulfilment,
    Outcome,
    Parties,
    SettlementPolicy,
    apply_observation,
    decide,
    mark_gone,
)
from satshare.payments.stars import StarsPayment, settle_stars

__all__ = [
    "NO_AFFILIATE",
    "SOLD_STATUSES",
    "CommissionHook",
    "Decision",
    "Fulfilment",
    "Outcome",
    "Parties",
    "SettlementPolicy",
    "StarsPayment",
    "abort_stars_refund",
    "apply_observation",
    "begin_stars_refund",
    "decide",
    "finish_stars_refund",
    "mark_gone",
    "record_bitcoin_refund",
    "settle_stars",
]
