"""What entries change in the figures: pure functions, no SQL.

The sealer folds each batch it chains into the tables; a reader folds the entries still
waiting for the sealer into what it read, so every figure it answers with covers every
committed entry. Both use ``fold``, so the two can never disagree. Each delta is a mapping of
column name to amount, added to the row with that key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from satshare.ledger import accounts
from satshare.ledger.figures.models import WINDOWS
from satshare.ledger.models import PAYOUT_KINDS, SALE_KINDS, EntryKind

Delta = defaultdict[str, int]


def _delta() -> Delta:
    return defaultdict(int)


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class Original:
    """The entry a reversal reverses, as far as the figures need it."""

    kind: str
    gross_sats: int | None
    created_at: datetime
    buyer_user_id: int | None
    referrer_user_id: int | None


@dataclass(frozen=True, slots=True)
class EntryFacts:
    entry_id: int
    kind: str
    created_at: datetime
    gross_sats: int | None
    affiliate_user_id: int | None
    postings: Sequence[tuple[str, int]]
    #: For a sale: who bought it, their referrer, when they registered and whether its
    #: subscription was paid before (``ledger_sale_buyers``).
    buyer_user_id: int | None = None
    referrer_user_id: int | None = None
    buyer_registered_at: datetime | None = None
    renewal: bool = False
    #: For a reversal: the entry it reverses.
    original: Original | None = None


@dataclass
class Batch:
    """The change a set of entries makes, per table row."""

    days: defaultdict[date, Delta] = field(default_factory=lambda: defaultdict(_delta))
    user_days: defaultdict[tuple[int, date], Delta] = field(
        default_factory=lambda: defaultdict(_delta)
    )
    users: defaultdict[int, Delta] = field(default_factory=lambda: defaultdict(_delta))
    #: (buyer, day) → change of their payments not refunded.
    buyer_days: defaultdict[tuple[int, date], int] = field(default_factory=lambda: defaultdict(int))
    #: Each referred buyer touched, with their referrer.
    referrers: dict[int, int] = field(default_factory=dict)
    #: Each buyer's new payments, and the day they registered.
    sales: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    registered_on: dict[int, date] = field(default_factory=dict)
    entries: int = 0

    @property
    def empty(self) -> bool:
        return self.entries == 0


def _affiliate_of(code: str) -> int | None:
    """The user whose affiliate balance an account is (``payable:affiliate:<id>``)."""
    return accounts.user_of(code) if code.startswith("payable:affiliate:") else None


#: Per-day user columns that are also kept per rolling window on the user's row.
WINDOWED = {
    "earned_sats": "earned",
    "commissions": "commissions",
    "referred_sales_sats": "referred_sales",
    "referral_value_sats": "referral_value",
}
#: Windows each of them is kept for (the leaderboard's are a week and a month).
WINDOWS_OF = {
    "earned": WINDOWS,
    "commissions": WINDOWS,
    "referred_sales": WINDOWS,
    "referral_value": (7, 30),
}


def window_column(name: str, days: int) -> str:
    return f"{name}_{days}d"


def in_window(day: date, rolled_day: date, days: int) -> bool:
    """Whether a day counts in a window ending on ``rolled_day`` (and after it)."""
    return day > rolled_day - timedelta(days=days)


def fold(entries: Iterable[EntryFacts], rolled_day: date | None) -> Batch:
    batch = Batch()
    for entry in entries:
        _fold_entry(batch, entry)
    _windows(batch, rolled_day)
    return batch


def _fold_entry(batch: Batch, entry: EntryFacts) -> None:
    batch.entries += 1
    day = day_of(entry.created_at)
    figures = batch.days[day]
    figures["entries"] += 1
    kind, gross = entry.kind, entry.gross_sats or 0
    original = entry.original
    if kind in SALE_KINDS:
        figures["sales"] += 1
        if kind == EntryKind.SALE:
            figures["gross_sats"] += gross
        if entry.affiliate_user_id is not None:
            batch.user_days[(entry.affiliate_user_id, day)]["referred_sales_sats"] += gross
            batch.users[entry.affiliate_user_id]["referred_sales_sats"] += gross
        buyer = entry.buyer_user_id
        if buyer is not None:
            figures["renewals" if entry.renewal else "new_payments"] += 1
            batch.sales[buyer] += 1
            if entry.buyer_registered_at is not None:
                batch.registered_on[buyer] = day_of(entry.buyer_registered_at)
            if entry.referrer_user_id is not None:
                _referral(batch, entry.kind, gross, day, buyer, entry.referrer_user_id, 1)
    elif original is not None and original.kind in SALE_KINDS:
        figures["refunds"] += 1
        if original.kind == EntryKind.SALE:
            figures["gross_sats"] -= original.gross_sats or 0
        if original.referrer_user_id is not None and original.buyer_user_id is not None:
            _referral(
                batch,
                original.kind,
                original.gross_sats or 0,
                day_of(original.created_at),
                original.buyer_user_id,
                original.referrer_user_id,
                -1,
            )
    for code, amount in entry.postings:
        _fold_posting(batch, entry, day, figures, code, amount)


def _referral(
    batch: Batch, kind: str, gross: int, day: date, buyer: int, referrer: int, sign: int
) -> None:
    """A referred sale (sign 1) or its refund (-1), counted on the sale's day."""
    batch.user_days[(referrer, day)]["referral_value_sats"] += sign * gross
    person = batch.users[referrer]
    person["referral_value_sats"] += sign * gross
    if kind == EntryKind.SALE:
        person["referral_sales_sats"] += sign * gross
    batch.buyer_days[(buyer, day)] += sign
    batch.referrers[buyer] = referrer


def _fold_posting(
    batch: Batch, entry: EntryFacts, day: date, figures: Delta, code: str, amount: int
) -> None:
    kind = entry.kind
    earner = _affiliate_of(code)
    # Whose debt a posting moves: the affiliate's account, or a payout held for them.
    debtor = earner or (entry.affiliate_user_id if code == accounts.PAYOUTS_IN_FLIGHT else None)
    if code == accounts.OWNER_REVENUE:
        figures["owner_share_sats"] -= amount
    elif code == accounts.STARS_REVENUE:
        figures["stars_received"] -= amount
    elif earner is not None and kind not in PAYOUT_KINDS:
        figures["affiliate_share_sats"] -= amount
        mine, person = batch.user_days[(earner, day)], batch.users[earner]
        mine["earned_sats"] -= amount
        person["earned_sats"] -= amount
        mine["earning_postings"] += 1
        if kind in SALE_KINDS:
            mine["commissions"] += 1
            person["commissions"] += 1
            if amount < 0:
                mine["unrefunded_commission_sats"] -= amount
        elif amount > 0:
            mine["clawed_back_sats"] += amount
            person["clawed_back_sats"] += amount
            original = entry.original
            if original is not None and original.kind in SALE_KINDS:
                # A refund takes the commission out of its sale's day.
                sale_day = batch.user_days[(earner, day_of(original.created_at))]
                sale_day["unrefunded_commission_sats"] -= amount
    elif code == accounts.PAYOUTS_IN_FLIGHT and kind == EntryKind.PAYOUT:
        figures["paid_out_sats"] += amount
        if entry.affiliate_user_id is not None:
            batch.user_days[(entry.affiliate_user_id, day)]["paid_out_sats"] += amount
            batch.users[entry.affiliate_user_id]["paid_out_sats"] += amount
    if earner is not None:
        batch.users[earner]["balance_sats"] -= amount
    if debtor is not None:
        figures["owed_delta_sats"] -= amount
        batch.user_days[(debtor, day)]["owed_delta_sats"] -= amount
        batch.users[debtor]["owed_sats"] -= amount


def _windows(batch: Batch, rolled_day: date | None) -> None:
    """Add each per-day change to the windows its day counts in."""
    if rolled_day is None:
        return
    for (user_id, day), delta in batch.user_days.items():
        for column, name in WINDOWED.items():
            change = delta.get(column, 0)
            if not change:
                continue
            for days in WINDOWS_OF[name]:
                if in_window(day, rolled_day, days):
                    batch.users[user_id][window_column(name, days)] += change


@dataclass(frozen=True, slots=True)
class BuyerState:
    payments: int
    last_day: date | None


def buyer_state(days: Mapping[date, int]) -> BuyerState:
    """A buyer's payments not refunded and the last day with one, from their days."""
    paid = [day for day, count in days.items() if count > 0]
    return BuyerState(sum(days.values()), max(paid) if paid else None)


def buyer_changes(before: BuyerState, after: BuyerState, rolled_day: date | None) -> dict[str, int]:
    """How a buyer's new state changes their referrer's counts of paying buyers."""
    change: dict[str, int] = {}

    def counted(state: BuyerState, days: int | None) -> bool:
        if state.payments <= 0 or state.last_day is None:
            return False
        return days is None or (
            rolled_day is not None and in_window(state.last_day, rolled_day, days)
        )

    for column, days in (
        ("referral_paying", None),
        ("referral_buyers_7d", 7),
        ("referral_buyers_30d", 30),
    ):
        difference = int(counted(after, days)) - int(counted(before, days))
        if difference:
            change[column] = difference
    return change
