"""Payout policy: what may be paid out, where to, at which fee, and when to ask a provider
again. Pure rules, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from satshare.errors import InvalidRequest
from satshare.payouts.destinations import DestinationKind, InvalidDestination
from satshare.payouts.ports import PayoutProvider


class InsufficientBalance(InvalidRequest):
    code = "insufficient-balance"
    title = "Insufficient balance"


class BelowMinimum(InvalidRequest):
    code = "below-minimum"
    title = "Below the payout minimum"


class TermsNotAccepted(InvalidRequest):
    code = "terms-not-accepted"
    title = "Affiliate terms not accepted"


def kinds_paid_by(provider: PayoutProvider | None) -> frozenset[DestinationKind]:
    """The destinations the provider can send to, as it says itself; paid by hand (no
    provider), anything the owner's wallet can pay."""
    if provider is None:
        return frozenset(DestinationKind)
    return frozenset(kind for kind in DestinationKind if provider.supports(kind))


@dataclass(frozen=True, slots=True)
class PayoutPolicy:
    provider: str
    network: str = "mainnet"
    min_sats: int = 10_000
    #: At or below this a payout is approved at once; above it waits for an admin.
    auto_approve_max_sats: int = 0
    #: Flat fees the affiliate pays per payout (0: the owner pays the real fee).
    lightning_fee_sats: int = 0
    onchain_fee_sats: int = 0
    instant_lightning: bool = False
    #: What the provider can send to (``kinds_paid_by``): the adapter decides, not the policy.
    pays: frozenset[DestinationKind] = frozenset(DestinationKind)

    def fee_for(self, kind: DestinationKind) -> int:
        return self.lightning_fee_sats if kind.lightning else self.onchain_fee_sats

    def supports(self, kind: DestinationKind) -> bool:
        return kind in self.pays

    def require_supported(self, kind: DestinationKind) -> None:
        if not self.supports(kind):
            raise InvalidDestination(
                f"payouts are sent through {self.provider}, which pays Lightning only: give a "
                "Lightning Address, LNURL or BOLT11 invoice instead of an on-chain address",
                field="destination",
            )


@dataclass(frozen=True, slots=True)
class Quote:
    amount_sats: int
    fee_sats: int
    send_sats: int


def quote(policy: PayoutPolicy, amount_sats: int, kind: DestinationKind) -> Quote:
    fee = policy.fee_for(kind)
    return Quote(amount_sats=amount_sats, fee_sats=fee, send_sats=amount_sats - fee)


#: A payout an admin released by hand is still watched this long for a late "paid".
WATCH_RELEASED = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Recheck:
    """When to ask a provider again about a payout whose fate it has not told us."""

    first: timedelta = timedelta(seconds=15)
    longest: timedelta = timedelta(minutes=10)

    def after(self, checks: int, now: datetime) -> datetime:
        wait: timedelta = min(self.first * (2 ** min(checks, 20)), self.longest)
        return now + wait
