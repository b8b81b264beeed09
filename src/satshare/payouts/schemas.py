"""API models for payouts (pydantic only)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from satshare.schemas import Id, StrictModel

PayoutStatus = Literal[
    "awaiting_approval", "approved", "sending", "unknown", "paid", "failed", "canceled"
]
DESTINATION_HELP = (
    "A Lightning Address (alice@example.com), an LNURL-pay code (lnurl1...), a BOLT11 invoice "
    "for exactly `send_sats`, or a bitcoin address on the configured network. Omit it to use "
    "the affiliate's saved destination."
)


class PayoutCreate(StrictModel):
    user_id: Id
    amount_sats: int = Field(
        ge=1, le=2_100_000_000_000_000, description="Taken from the affiliate's balance."
    )
    destination: str | None = Field(
        None, min_length=1, max_length=2048, description=DESTINATION_HELP
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"user_id": 3, "amount_sats": 25000, "destination": "alice@example.com"}]
        },
    )


class PayoutCancel(StrictModel):
    reason: str | None = Field(None, max_length=500)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "asked by the affiliate"}]}
    )


class PayoutMarkFailed(StrictModel):
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="What the provider shows for this payout (it is kept on the payout).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "BTCPay lists no payout with this idempotency key"}]
        }
    )


class PayoutMarkPaid(StrictModel):
    proof: str = Field(
        min_length=64, max_length=64, description="The on-chain txid (or Lightning preimage)."
    )
    network_fee_sats: int | None = Field(
        None, ge=0, le=100_000_000, description="The mining or routing fee the owner paid."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "proof": "5e2a0c6f1b7d4e3a9c8b2f1e0d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c",
                    "network_fee_sats": 1410,
                }
            ]
        }
    )


class PayoutOut(BaseModel):
    payout_id: int
    user_id: int
    status: PayoutStatus
    amount_sats: int = Field(description="Taken from the affiliate's balance.")
    fee_sats: int = Field(description="The flat fee the affiliate pays (0: the owner pays).")
    send_sats: int = Field(description="What reaches the destination.")
    network_fee_sats: int | None = Field(description="Routing/mining fee paid by the owner.")
    destination_kind: Literal["lightning_address", "lnurl", "bolt11", "onchain"]
    destination: str
    provider: str
    proof: str | None = Field(description="Lightning preimage or on-chain txid once paid.")
    failure: str | None
    instant: bool = Field(description="Sent at settlement (payouts.instant_lightning).")
    requested_by: str
    approved_by: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payout_id": 12,
                    "user_id": 3,
                    "status": "paid",
                    "amount_sats": 25000,
                    "fee_sats": 0,
                    "send_sats": 25000,
                    "network_fee_sats": 3,
                    "destination_kind": "lightning_address",
                    "destination": "alice@example.com",
                    "provider": "lnbits",
                    "proof": "9f1c" + "0" * 60,
                    "failure": None,
                    "instant": False,
                    "requested_by": "api-key:crm",
                    "approved_by": "auto",
                    "created_at": "2026-11-20T10:00:00Z",
                    "updated_at": "2026-11-20T10:00:02Z",
                    "completed_at": "2026-11-20T10:00:02Z",
                }
            ]
        }
    )


class PayoutQuote(BaseModel):
    amount_sats: int
    fee_sats: int = Field(description="Deducted from the amount under the fee policy.")
    send_sats: int
    fee_paid_by: Literal["affiliate", "owner"]
    destination_kind: str
    needs_approval: bool = Field(description="Above payouts.auto_approve_max_sats.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "amount_sats": 25000,
                    "fee_sats": 0,
                    "send_sats": 25000,
                    "fee_paid_by": "owner",
                    "destination_kind": "lightning_address",
                    "needs_approval": False,
                }
            ]
        }
    )
