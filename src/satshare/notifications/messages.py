"""What the outbox carries: one frozen dataclass per message kind.

A message's ``kind`` names it in the ``outbox`` table, ``to_payload()`` is the row's JSON and
``decode(kind, payload)`` turns a stored row back into its message. The payloads are a stored
format: rows queued by an earlier version must still decode, so keys keep their names and
order, and a key added later is read with a default.

This module imports nothing from the domains (they all write messages), so states travel as
their plain string values: a payout's ``status`` is a ``payouts.models.PayoutStatus`` value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

Payload = Mapping[str, Any]


class Message(Protocol):
    @property
    def kind(self) -> str: ...

    def to_payload(self) -> dict[str, object]: ...


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


# -- buyers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentConfirmed:
    """To the buyer: the payment settled and the subscription runs until ``active_until``."""

    kind: ClassVar[str] = "payment.confirmed"
    invoice_id: str
    subscription_id: int
    plan_id: str
    plan_title: str
    amount_sats: int
    amount_stars: int | None
    currency: str
    active_until: datetime
    channels: tuple[int, ...]
    paid_late: bool

    def to_payload(self) -> dict[str, object]:
        return {
            "invoice_id": self.invoice_id,
            "subscription_id": self.subscription_id,
            "plan_id": self.plan_id,
            "plan_title": self.plan_title,
            "amount_sats": self.amount_sats,
            "amount_stars": self.amount_stars,
            "currency": self.currency,
            "active_until": self.active_until.isoformat(),
            "channels": list(self.channels),
            "paid_late": self.paid_late,
        }

    @classmethod
    def from_payload(cls, p: Payload) -> PaymentConfirmed:
        return cls(
            invoice_id=str(p["invoice_id"]),
            subscription_id=int(p["subscription_id"]),
            plan_id=str(p["plan_id"]),
            plan_title=str(p["plan_title"]),
            amount_sats=int(p["amount_sats"]),
            amount_stars=_optional_int(p.get("amount_stars")),
            currency=str(p.get("currency", "SAT")),
            active_until=datetime.fromisoformat(str(p["active_until"])),
            channels=tuple(int(chat) for chat in p.get("channels") or ()),
            paid_late=bool(p.get("paid_late", False)),
        )


@dataclass(frozen=True, slots=True)
class AccessResent:
    """To the buyer, at an admin's request: the links into the plan's channels again."""

    kind: ClassVar[str] = "access.resent"
    subscription_id: int
    plan_id: str
    plan_title: str
    active_until: datetime
    channels: tuple[int, ...]

    def to_payload(self) -> dict[str, object]:
        return {
            "subscription_id": self.subscription_id,
            "plan_id": self.plan_id,
            "plan_title": self.plan_title,
            "active_until": self.active_until.isoformat(),
            "channels": list(self.channels),
        }

    @classmethod
    def from_payload(cls, p: Payload) -> AccessResent:
        return cls(
            subscription_id=int(p["subscription_id"]),
            plan_id=str(p["plan_id"]),
            plan_title=str(p["plan_title"]),
            active_until=datetime.fromisoformat(str(p["active_until"])),
            channels=tuple(int(chat) for chat in p.get("channels") or ()),
        )


@dataclass(frozen=True, slots=True)
class PaymentRefunded:
    """To the buyer: the payment was returned and its paid time taken back."""

    kind: ClassVar[str] = "payment.refunded"
    invoice_id: str
    plan_id: str
    plan_title: str
    amount_stars: int | None
    #: A bitcoin sale's amount (the owner paid it back); rows queued before it have none.
    amount_sats: int | None = None

    def to_payload(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "invoice_id": self.invoice_id,
            "plan_id": self.plan_id,
            "plan_title": self.plan_title,
            "amount_stars": self.amount_stars,
        }
        if self.amount_sats is not None:
            payload["amount_sats"] = self.amount_sats
        return payload

    @classmethod
    def from_payload(cls, p: Payload) -> PaymentRefunded:
        return cls(
            invoice_id=str(p["invoice_id"]),
            plan_id=str(p["plan_id"]),
            plan_title=str(p["plan_title"]),
            amount_stars=_optional_int(p.get("amount_stars")),
            amount_sats=_optional_int(p.get("amount_sats")),
        )


@dataclass(frozen=True, slots=True)
class SubscriptionExpired:
    kind: ClassVar[str] = "subscription.expired"
    subscription_id: int
    plan_id: str

    def to_payload(self) -> dict[str, object]:
        return {"subscription_id": self.subscription_id, "plan_id": self.plan_id}

    @classmethod
    def from_payload(cls, p: Payload) -> SubscriptionExpired:
        return cls(subscription_id=int(p["subscription_id"]), plan_id=str(p["plan_id"]))


@dataclass(frozen=True, slots=True)
class SubscriptionReminder:
    """The subscription ends in ``days`` days, at ``ends_at``."""

    kind: ClassVar[str] = "subscription.reminder"
    subscription_id: int
    plan_id: str
    days: int
    ends_at: datetime

    def to_payload(self) -> dict[str, object]:
        return {
            "subscription_id": self.subscription_id,
            "plan_id": self.plan_id,
            "days": self.days,
            "ends_at": self.ends_at.isoformat(),
        }

    @classmethod
    def from_payload(cls, p: Payload) -> SubscriptionReminder:
        return cls(
            subscription_id=int(p["subscription_id"]),
            plan_id=str(p["plan_id"]),
            days=int(p["days"]),
            ends_at=datetime.fromisoformat(str(p["ends_at"])),
        )


# -- affiliates ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommissionReversed:
    """To the affiliate: a sale they earned on was refunded, so its commission was taken back
    (a reversing ledger entry; their balance may go below zero until the next commission)."""

    kind: ClassVar[str] = "commission.reversed"
    invoice_id: str
    commission_sats: int
    transaction_id: int

    def to_payload(self) -> dict[str, object]:
        return {
            "invoice_id": self.invoice_id,
            "commission_sats": self.commission_sats,
            "transaction_id": self.transaction_id,
        }

    @classmethod
    def from_payload(cls, p: Payload) -> CommissionReversed:
        return cls(
            invoice_id=str(p["invoice_id"]),
            commission_sats=int(p["commission_sats"]),
            transaction_id=int(p["transaction_id"]),
        )


@dataclass(frozen=True, slots=True)
class CommissionEarned:
    kind: ClassVar[str] = "commission.earned"
    invoice_id: str
    buyer_user_id: int
    commission_sats: int
    share_bps: int
    transaction_id: int

    def to_payload(self) -> dict[str, object]:
        return {
            "invoice_id": self.invoice_id,
            "buyer_user_id": self.buyer_user_id,
            "commission_sats": self.commission_sats,
            "share_bps": self.share_bps,
            "transaction_id": self.transaction_id,
        }

    @classmethod
    def from_payload(cls, p: Payload) -> CommissionEarned:
        return cls(
            invoice_id=str(p["invoice_id"]),
            buyer_user_id=int(p["buyer_user_id"]),
            commission_sats=int(p["commission_sats"]),
            share_bps=int(p["share_bps"]),
            transaction_id=int(p["transaction_id"]),
        )


@dataclass(frozen=True, slots=True)
class ReferralRegistered:
    """To the referrer: someone registered through their link."""

    kind: ClassVar[str] = "referral.registered"
    referral_user_id: int
    referral_username: str | None
    #: None only in rows queued before the platform was recorded.
    referral_platform: str | None

    def to_payload(self) -> dict[str, object]:
        return {
            "referral_user_id": self.referral_user_id,
            "referral_username": self.referral_username,
            "referral_platform": self.referral_platform,
        }

    @classmethod
    def from_payload(cls, p: Payload) -> ReferralRegistered:
        username, platform = p.get("referral_username"), p.get("referral_platform")
        return cls(
            referral_user_id=int(p["referral_user_id"]),
            referral_username=None if username is None else str(username),
            referral_platform=None if platform is None else str(platform),
        )


@dataclass(frozen=True, slots=True)
class PayoutFacts:
    """A payout as it stood when the message was queued (the payload of every payout
    message)."""

    payout_id: int
    #: None only in rows queued before the affiliate's id was recorded.
    user_id: int | None
    status: str
    amount_sats: int
    fee_sats: int
    send_sats: int
    destination_kind: str
    destination: str
    instant: bool
    failure: str | None
    proof: str | None

    def to_payload(self) -> dict[str, object]:
        return {
            "payout_id": self.payout_id,
            "user_id": self.user_id,
            "status": str(self.status),
            "amount_sats": self.amount_sats,
            "fee_sats": self.fee_sats,
            "send_sats": self.send_sats,
            "destination_kind": self.destination_kind,
            "destination": self.destination,
            "instant": self.instant,
            "failure": self.failure,
            "proof": self.proof,
        }

    @classmethod
    def from_payload(cls, p: Payload) -> PayoutFacts:
        failure, proof = p.get("failure"), p.get("proof")
        return cls(
            payout_id=int(p["payout_id"]),
            user_id=_optional_int(p.get("user_id")),
            status=str(p["status"]),
            amount_sats=int(p["amount_sats"]),
            fee_sats=int(p["fee_sats"]),
            send_sats=int(p["send_sats"]),
            destination_kind=str(p["destination_kind"]),
            destination=str(p["destination"]),
            instant=bool(p["instant"]),
            failure=None if failure is None else str(failure),
            proof=None if proof is None else str(proof),
        )


@dataclass(frozen=True, slots=True)
class PayoutChanged:
    """To the affiliate: their payout reached ``payout.status`` (kind ``payout.<status>``)."""

    PREFIX: ClassVar[str] = "payout."
    payout: PayoutFacts

    @property
    def kind(self) -> str:
        return f"{self.PREFIX}{self.payout.status}"

    def to_payload(self) -> dict[str, object]:
        return self.payout.to_payload()

    @classmethod
    def from_payload(cls, p: Payload) -> PayoutChanged:
        return cls(PayoutFacts.from_payload(p))


# -- admins -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaleNew:
    kind: ClassVar[str] = "sale.new"
    invoice_id: str
    plan_id: str
    buyer_user_id: int
    currency: str
    amount_sats: int
    amount_stars: int | None
    owner_sats: int
    affiliate_sats: int
    affiliate_user_id: int | None
    overpaid_sats: int
    paid_late: bool

    def to_payload(self) -> dict[str, object]:
        return {
            "invoice_id": self.invoice_id,
            "plan_id": self.plan_id,
            "buyer_user_id": self.buyer_user_id,
            "currency": self.currency,
            "amount_sats": self.amount_sats,
            "amount_stars": self.amount_stars,
            "owner_sats": self.owner_sats,
            "affiliate_sats": self.affiliate_sats,
            "affiliate_user_id": self.affiliate_user_id,
            "overpaid_sats": self.overpaid_sats,
            "paid_late": self.paid_late,
        }

    @classmethod
    def from_payload(cls, p: Payload) -> SaleNew:
        return cls(
            invoice_id=str(p["invoice_id"]),
            plan_id=str(p["plan_id"]),
            buyer_user_id=int(p["buyer_user_id"]),
            currency=str(p.get("currency", "SAT")),
            amount_sats=int(p["amount_sats"]),
            amount_stars=_optional_int(p.get("amount_stars")),
            owner_sats=int(p["owner_sats"]),
            affiliate_sats=int(p["affiliate_sats"]),
            affiliate_user_id=_optional_int(p.get("affiliate_user_id")),
            overpaid_sats=int(p.get("overpaid_sats") or 0),
            paid_late=bool(p.get("paid_late", False)),
        )


@dataclass(frozen=True, slots=True)
class InvoiceMismatch:
    """The processor (or Telegram) describes a different bill than we issued; nothing was
    settled. Bitcoin invoices compare sats, Stars invoices compare Stars."""

    kind: ClassVar[str] = "admin.invoice_mismatch"
    invoice_id: str
    unit: Literal["sats", "stars"]
    expected: int | None
    observed: int

    def to_payload(self) -> dict[str, object]:
        if self.unit == "stars":
            return {
                "invoice_id": self.invoice_id,
                "expected_stars": self.expected,
                "paid_stars": self.observed,
            }
        return {
            "invoice_id": self.invoice_id,
            "expected_sats": self.expected,
            "provider_says_sats": self.observed,
        }

    @classmethod
    def from_payload(cls, p: Payload) -> InvoiceMismatch:
        invoice_id = str(p["invoice_id"])
        if "paid_stars" in p:
            expected = _optional_int(p.get("expected_stars"))
            return cls(invoice_id, "stars", expected, int(p["paid_stars"]))
        expected = _optional_int(p.get("expected_sats"))
        return cls(invoice_id, "sats", expected, int(p["provider_says_sats"]))


@dataclass(frozen=True, slots=True)
class InvoiceGone:
    """The processor no longer knows the invoice; it was marked invalid."""

    kind: ClassVar[str] = "admin.invoice_gone"
    invoice_id: str
    provider: str

    def to_payload(self) -> dict[str, object]:
        return {"invoice_id": self.invoice_id, "provider": self.provider}

    @classmethod
    def from_payload(cls, p: Payload) -> InvoiceGone:
        return cls(invoice_id=str(p["invoice_id"]), provider=str(p["provider"]))


@dataclass(frozen=True, slots=True)
class PaymentInvalidated:
    """A settled invoice the processor now calls invalid; an admin reviews it."""

    kind: ClassVar[str] = "admin.payment_invalidated"
    invoice_id: str
    provider_status: str

    def to_payload(self) -> dict[str, object]:
        return {"invoice_id": self.invoice_id, "provider_status": self.provider_status}

    @classmethod
    def from_payload(cls, p: Payload) -> PaymentInvalidated:
        return cls(invoice_id=str(p["invoice_id"]), provider_status=str(p["provider_status"]))


@dataclass(frozen=True, slots=True)
class PayoutApproval:
    """A payout above the auto-approval limit waits for an admin's decision."""

    kind: ClassVar[str] = "admin.payout_approval"
    payout: PayoutFacts

    def to_payload(self) -> dict[str, object]:
        return self.payout.to_payload()

    @classmethod
    def from_payload(cls, p: Payload) -> PayoutApproval:
        return cls(PayoutFacts.from_payload(p))


@dataclass(frozen=True, slots=True)
class PayoutUnknown:
    """A payout has stayed unknown too long: a person must look at the provider."""

    kind: ClassVar[str] = "admin.payout_unknown"
    payout: PayoutFacts

    def to_payload(self) -> dict[str, object]:
        return self.payout.to_payload()

    @classmethod
    def from_payload(cls, p: Payload) -> PayoutUnknown:
        return cls(PayoutFacts.from_payload(p))


@dataclass(frozen=True, slots=True)
class PayoutContradiction:
    """The provider's answer contradicts what was recorded (a late "paid" after a release,
    or "failed" after "paid")."""

    kind: ClassVar[str] = "admin.payout_contradiction"
    payout: PayoutFacts
    previous_status: str
    provider_says: str

    def to_payload(self) -> dict[str, object]:
        return {
            **self.payout.to_payload(),
            "previous_status": str(self.previous_status),
            "provider_says": str(self.provider_says),
        }

    @classmethod
    def from_payload(cls, p: Payload) -> PayoutContradiction:
        return cls(
            PayoutFacts.from_payload(p),
            previous_status=str(p["previous_status"]),
            provider_says=str(p["provider_says"]),
        )


@dataclass(frozen=True, slots=True)
class WebhookFailing:
    """An outgoing webhook endpoint gave up a delivery after 24 hours of retries (#14)."""

    kind: ClassVar[str] = "admin.webhook_failing"
    endpoint_id: int
    url: str
    since: datetime

    def to_payload(self) -> dict[str, object]:
        return {"endpoint_id": self.endpoint_id, "url": self.url, "since": self.since.isoformat()}

    @classmethod
    def from_payload(cls, p: Payload) -> WebhookFailing:
        return cls(
            endpoint_id=int(p["endpoint_id"]),
            url=str(p["url"]),
            since=datetime.fromisoformat(str(p["since"])),
        )


@dataclass(frozen=True, slots=True)
class TrialStarted:
    """To the buyer: a free trial runs until ``active_until`` (no payment, no commission)."""

    kind: ClassVar[str] = "trial.started"
    subscription_id: int
    plan_id: str
    plan_title: str
    active_until: datetime
    channels: tuple[int, ...]

    def to_payload(self) -> dict[str, object]:
        return {
            "subscription_id": self.subscription_id,
            "plan_id": self.plan_id,
            "plan_title": self.plan_title,
            "active_until": self.active_until.isoformat(),
            "channels": list(self.channels),
        }

    @classmethod
    def from_payload(cls, p: Payload) -> TrialStarted:
        return cls(
            subscription_id=int(p["subscription_id"]),
            plan_id=str(p["plan_id"]),
            plan_title=str(p["plan_title"]),
            active_until=datetime.fromisoformat(str(p["active_until"])),
            channels=tuple(int(chat) for chat in p.get("channels") or ()),
        )


@dataclass(frozen=True, slots=True)
class BroadcastPreview:
    """To the admin chats: a broadcast as its recipients in ``language`` will see it."""

    kind: ClassVar[str] = "admin.broadcast_preview"
    broadcast_id: int
    language: str

    def to_payload(self) -> dict[str, object]:
        return {"broadcast_id": self.broadcast_id, "language": self.language}

    @classmethod
    def from_payload(cls, p: Payload) -> BroadcastPreview:
        return cls(broadcast_id=int(p["broadcast_id"]), language=str(p.get("language", "en")))


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """A row of a kind this version does not know; kept and passed on as it is."""

    kind: str
    payload: Payload

    def to_payload(self) -> dict[str, object]:
        return dict(self.payload)


KnownMessage = (
    PaymentConfirmed
    | AccessResent
    | PaymentRefunded
    | SubscriptionExpired
    | SubscriptionReminder
    | CommissionEarned
    | CommissionReversed
    | ReferralRegistered
    | PayoutChanged
    | SaleNew
    | InvoiceMismatch
    | InvoiceGone
    | PaymentInvalidated
    | PayoutApproval
    | PayoutUnknown
    | PayoutContradiction
    | WebhookFailing
    | BroadcastPreview
    | TrialStarted
)

_FIXED_KINDS: dict[str, type[KnownMessage]] = {
    cls.kind: cls
    for cls in (
        PaymentConfirmed,
        AccessResent,
        PaymentRefunded,
        SubscriptionExpired,
        SubscriptionReminder,
        CommissionEarned,
        CommissionReversed,
        ReferralRegistered,
        SaleNew,
        InvoiceMismatch,
        InvoiceGone,
        PaymentInvalidated,
        PayoutApproval,
        PayoutUnknown,
        PayoutContradiction,
        WebhookFailing,
        BroadcastPreview,
        TrialStarted,
    )
}


def decode(kind: str, payload: Payload) -> KnownMessage | Unrecognised:
    """The message a stored outbox row holds."""
    cls = _FIXED_KINDS.get(kind)
    if cls is not None:
        return cls.from_payload(payload)
    if kind.startswith(PayoutChanged.PREFIX):
        return PayoutChanged.from_payload(payload)
    return Unrecognised(kind, payload)
