"""What the payouts domain needs from the outside: a provider that sends money and can be
asked afterwards what became of a payment, and an LNURL resolver. Adapters live in
``providers/``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from satshare.payouts.destinations import DestinationKind


class SendState(StrEnum):
    PAID = "paid"
    FAILED = "failed"  # certainly not paid, and never will be from this attempt
    UNKNOWN = "unknown"  # may or may not have been paid: ask again later, never resend
    WAITING = "waiting"  # accepted by the provider, not finished (e.g. a BTCPay payout)


@dataclass(frozen=True, slots=True)
class PayoutOrder:
    payout_id: int
    #: Unique per payout; providers that take one use it so a repeated call cannot pay twice.
    idempotency_key: str
    send_sats: int
    destination_kind: DestinationKind
    destination: str
    payment_request: str | None = None
    payment_hash: str | None = None
    provider_ref: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    state: SendState
    proof: str | None = None
    network_fee_sats: int | None = None
    provider_ref: str | None = None
    reason: str | None = None


class PayoutProvider(Protocol):
    name: str
    #: Whether sending needs a BOLT11 fetched first (Lightning through LNbits).
    needs_invoice: bool

    def supports(self, kind: DestinationKind) -> bool: ...

    async def send(self, order: PayoutOrder) -> SendResult:
        """Try once. Raise nothing: a timeout is SendState.UNKNOWN."""
        ...

    async def check(self, order: PayoutOrder) -> SendResult:
        """What became of an earlier send (after a timeout or a crash)."""
        ...


@dataclass(frozen=True, slots=True)
class PayParams:
    """An LNURL-pay service's answer to the first request (LUD-06)."""

    callback: str
    min_sendable_msat: int
    max_sendable_msat: int
    metadata: str


class LnurlError(Exception):
    """The LNURL service refused or could not be reached; the message is shown to people."""


class LnurlUnreachable(LnurlError):
    """The service could not be reached, or was not asked (not a public https address), or
    its answer was too large or too slow. People get one message for all of these, without
    network detail, so that it cannot be used to map the server's network."""


class LnurlResolver(Protocol):
    async def params(self, url: str) -> PayParams: ...

    async def invoice(self, params: PayParams, amount_msat: int) -> str:
        """A BOLT11 for exactly amount_msat, checked against the metadata (LUD-06)."""
        ...
