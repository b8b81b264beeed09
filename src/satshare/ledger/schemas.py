from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from satshare.money import MAX_SATS
from satshare.schemas import StrictModel


class PostingIn(StrictModel):
    account: str = Field(
        min_length=3,
        max_length=128,
        description="Account code, e.g. revenue:owner, payable:affiliate:7, expense:hosting.",
    )
    amount_sats: int = Field(
        ge=-MAX_SATS, le=MAX_SATS, description="Debit positive, credit negative; never zero."
    )


class TransactionCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "memo": "Bonus for the November campaign",
                    "postings": [
                        {"account": "revenue:owner", "amount_sats": 1000},
                        {"account": "payable:affiliate:7", "amount_sats": -1000},
                    ],
                }
            ]
        },
    )

    memo: str = Field(min_length=1, max_length=500)
    postings: list[PostingIn] = Field(min_length=2, max_length=50)


class TransactionReverse(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"memo": "Entered twice by mistake"}]},
    )

    memo: str | None = Field(None, min_length=1, max_length=500)


class TransactionMemoEdit(StrictModel):
    """The one editable field. Other fields are let through validation so the route can
    answer them with 409 (corrections are reversals), not with a 422."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={"examples": [{"memo": "Paid via LN"}]},
    )

    memo: str | None = Field(None, min_length=1, max_length=500)


class PostingOut(BaseModel):
    account: str
    amount_sats: int


class TransactionOut(BaseModel):
    transaction_id: int
    seq: int | None = Field(
        description="Position in the hash chain; null for a moment, until the entry is sealed."
    )
    kind: str = Field(
        description="sale | stars_sale | adjustment | reversal | payout_hold | payout | "
        "payout_release"
    )
    idempotency_key: str
    memo: str | None
    created_at: datetime
    created_by: str
    invoice_id: str | None
    gross_sats: int | None
    share_bps: int | None = Field(description="The affiliate share that applied (basis points).")
    terms: str | None = Field(
        description="Which affiliate terms applied to a sale: base, level:<name>, custom:v<n>, "
        "suspended or no-referrer."
    )
    affiliate_user_id: int | None
    reverses_transaction_id: int | None
    hash: str | None = Field(description="sha256(prev_hash || canonical entry); see docs/ledger.md")
    prev_hash: str | None
    postings: list[PostingOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": 1,
                    "seq": 1,
                    "kind": "sale",
                    "terms": "base",
                    "idempotency_key": "invoice:inv_3x9Jk2mQp1Zr8LwT5vYbNa:settled",
                    "memo": "Premium channel, 30 days: invoice inv_3x9Jk2mQp1Zr8LwT5vYbNa",
                    "created_at": "2026-11-23T10:05:00Z",
                    "created_by": "system",
                    "invoice_id": "inv_3x9Jk2mQp1Zr8LwT5vYbNa",
                    "gross_sats": 50000,
                    "share_bps": 5000,
                    "affiliate_user_id": 3,
                    "reverses_transaction_id": None,
                    "hash": "9f2c…",
                    "prev_hash": "0000…",
                    "postings": [
                        {"account": "clearing:btcpay", "amount_sats": 50000},
                        {"account": "revenue:owner", "amount_sats": -25000},
                        {"account": "payable:affiliate:3", "amount_sats": -25000},
                    ],
                }
            ]
        }
    )
