"""The ``data`` of each event, with the field names of the REST API's resources.

This domain is a leaf (layer 0): it cannot import the users', subscriptions', payments' or
payouts' models, so it reads their rows through these protocols (the attributes the rows
have)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class UserRow(Protocol):
    id: int
    username: str | None
    platform: str
    external_id: str | None
    language: str
    referral_code: str
    referrer_id: int | None
    created_at: datetime


def user(row: UserRow) -> dict[str, Any]:
    """As ``GET /api/v1/users/{id}`` names them (UserOut)."""
    return {
        "user_id": row.id,
        "username": row.username,
        "platform": row.platform,
        "external_id": row.external_id,
        "language": row.language,
        "referral_code": row.referral_code,
        "referrer_id": row.referrer_id,
        "created_at": _iso(row.created_at),
    }


class SubscriptionRow(Protocol):
    id: int
    user_id: int
    plan_id: str
    status: Any
    started_at: datetime | None
    ends_at: datetime | None
    created_at: datetime


def subscription(row: SubscriptionRow, status: str | None = None) -> dict[str, Any]:
    """As ``GET /api/v1/subscriptions/{id}`` names them (SubscriptionOut, without the
    latest invoice, which the payment events carry). ``status`` when the row was changed
    by a statement the object has not seen."""
    return {
        "subscription_id": row.id,
        "user_id": row.user_id,
        "subscription_type": row.plan_id,
        "status": status or str(row.status),
        "started_at": _iso(row.started_at),
        "ends_at": _iso(row.ends_at),
        "created_at": _iso(row.created_at),
    }


class InvoiceRow(Protocol):
    id: str
    user_id: int
    subscription_id: int
    plan_id: str
    provider: str
    provider_invoice_id: str
    amount_sats: int
    currency: str
    amount_stars: int | None
    status: Any
    fiat_amount: str | None
    fiat_currency: str | None
    created_at: datetime
    settled_at: datetime | None


def payment(row: InvoiceRow, **extra: Any) -> dict[str, Any]:
    """The invoice as the REST API names it (InvoiceOut's fields, its id as ``invoice_id``
    as on transactions), with who paid for what."""
    return {
        "invoice_id": row.id,
        "user_id": row.user_id,
        "subscription_id": row.subscription_id,
        "subscription_type": row.plan_id,
        "provider": row.provider,
        "provider_invoice_id": row.provider_invoice_id,
        "amount_sats": row.amount_sats,
        "currency": row.currency,
        "amount_stars": row.amount_stars,
        "status": str(row.status),
        "fiat_amount": row.fiat_amount,
        "fiat_currency": row.fiat_currency,
        "created_at": _iso(row.created_at),
        "settled_at": _iso(row.settled_at),
        **extra,
    }


class PayoutRow(Protocol):
    id: int
    user_id: int
    status: Any
    amount_sats: int
    fee_sats: int
    send_sats: int
    network_fee_sats: int | None
    destination_kind: str
    destination: str
    provider: str
    proof: str | None
    failure: str | None
    instant: bool
    requested_by: str
    approved_by: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


def payout(row: PayoutRow) -> dict[str, Any]:
    """As ``GET /api/v1/payouts/{id}`` names them (PayoutOut)."""
    return {
        "payout_id": row.id,
        "user_id": row.user_id,
        "status": str(row.status),
        "amount_sats": row.amount_sats,
        "fee_sats": row.fee_sats,
        "send_sats": row.send_sats,
        "network_fee_sats": row.network_fee_sats,
        "destination_kind": row.destination_kind,
        "destination": row.destination,
        "provider": row.provider,
        "proof": row.proof,
        "failure": row.failure,
        "instant": row.instant,
        "requested_by": row.requested_by,
        "approved_by": row.approved_by,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "completed_at": _iso(row.completed_at),
    }
