"""API models for the transparency figures and split statements (pydantic only)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class FiguresOut(BaseModel):
    gross_sats: int = Field(description="Bitcoin sales, net of refunds.")
    owner_share_sats: int = Field(description="The owner's share, net of refunds.")
    affiliate_share_sats: int = Field(
        description="Commissions credited to affiliates, net of clawbacks (those on Stars "
        "sales included: the owner pays them in sats)."
    )
    stars_received: int = Field(description="Telegram Stars received (not sats).")
    paid_out_sats: int = Field(description="Paid out to affiliates (fees excluded).")
    sales: int
    refunds: int


class MonthOut(FiguresOut):
    month: str = Field(description="YYYY-MM (UTC).")
    owed_sats: int = Field(
        description="Owed to affiliates at the end of the month, payouts in flight included."
    )


class LedgerHeadOut(BaseModel):
    entries: int = Field(description="Entries in the ledger.")
    sealed_entries: int = Field(description="Entries sealed into the hash chain.")
    head_seq: int
    head_hash: str = Field(description="Keep it: a rewritten history would no longer reach it.")


class TransparencyOut(BaseModel):
    months: list[MonthOut]
    totals: FiguresOut
    owed_sats: int = Field(description="Owed to affiliates now.")
    ledger: LedgerHeadOut
    generated_at: datetime
    note: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "months": [
                        {
                            "month": "2026-11",
                            "gross_sats": 150000,
                            "owner_share_sats": 75000,
                            "affiliate_share_sats": 75000,
                            "stars_received": 0,
                            "paid_out_sats": 50000,
                            "sales": 3,
                            "refunds": 0,
                            "owed_sats": 25000,
                        }
                    ],
                    "totals": {
                        "gross_sats": 150000,
                        "owner_share_sats": 75000,
                        "affiliate_share_sats": 75000,
                        "stars_received": 0,
                        "paid_out_sats": 50000,
                        "sales": 3,
                        "refunds": 0,
                    },
                    "owed_sats": 25000,
                    "ledger": {
                        "entries": 6,
                        "sealed_entries": 6,
                        "head_seq": 6,
                        "head_hash": "9f2c…",
                    },
                    "generated_at": "2026-11-23T10:00:00Z",
                    "note": "All amounts in satoshis except stars_received (Telegram Stars).",
                }
            ]
        }
    )


class StatementOut(BaseModel):
    transaction_id: int
    created_at: datetime
    invoice_id: str | None
    provider: str | None
    proof_kind: str | None = Field(
        description="lightning_preimage, txid, telegram_charge_id, or <provider>_invoice_id."
    )
    proof: str | None
    payment_hash: str | None = Field(
        description="Lightning: sha256(preimage) must equal it, and it is in the invoice."
    )
    gross_sats: int
    share_bps: int
    terms: str | None = Field(description="The terms that applied (base, level:…, custom:v…).")
    commission_sats: int
    reversed_by_transaction_id: int | None = Field(
        description="Set when the payment was refunded and the commission clawed back."
    )
    seq: int | None = Field(description="The entry's place in the hash chain (null: not yet).")
    entry_hash: str | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": 12,
                    "created_at": "2026-11-23T10:05:00Z",
                    "invoice_id": "inv_3x9Jk2mQp1Zr8LwT5vYbNa",
                    "provider": "lnbits",
                    "proof_kind": "lightning_preimage",
                    "proof": "5e2a0c6f…",
                    "payment_hash": "a1b2c3…",
                    "gross_sats": 50000,
                    "share_bps": 5000,
                    "terms": "base",
                    "commission_sats": 25000,
                    "reversed_by_transaction_id": None,
                    "seq": 12,
                    "entry_hash": "9f2c…",
                }
            ]
        }
    )


class DayOut(BaseModel):
    date: str = Field(description="YYYY-MM-DD (UTC).")
    figures: FiguresOut


class AffiliateLineOut(BaseModel):
    user_id: int
    username: str | None
    referred_sales_sats: int
    commissions: int
    earned_sats: int = Field(description="Commissions net of clawbacks in the month.")
    clawed_back_sats: int
    paid_out_sats: int
    owed_sats: int = Field(description="Owed to this affiliate at the end of the month.")


class MonthlyReportOut(BaseModel):
    month: str
    totals: FiguresOut
    owed_at_start_sats: int
    owed_at_end_sats: int
    days: list[DayOut]
    affiliates: list[AffiliateLineOut] = Field(
        description="A page of the affiliate lines (active that month or owed at its end), "
        "most earned first, then by user id: `limit` lines after `cursor`. The CSV "
        "(`format=csv&part=affiliates`) and the XLSX hold every line."
    )
    generated_at: datetime
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page of affiliate lines; null: none left."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "month": "2026-11",
                    "totals": {
                        "gross_sats": 150000,
                        "owner_share_sats": 75000,
                        "affiliate_share_sats": 75000,
                        "stars_received": 0,
                        "paid_out_sats": 50000,
                        "sales": 3,
                        "refunds": 0,
                    },
                    "owed_at_start_sats": 0,
                    "owed_at_end_sats": 25000,
                    "days": [
                        {
                            "date": "2026-11-01",
                            "figures": {
                                "gross_sats": 50000,
                                "owner_share_sats": 25000,
                                "affiliate_share_sats": 25000,
                                "stars_received": 0,
                                "paid_out_sats": 0,
                                "sales": 1,
                                "refunds": 0,
                            },
                        }
                    ],
                    "affiliates": [
                        {
                            "user_id": 3,
                            "username": "alice",
                            "referred_sales_sats": 150000,
                            "commissions": 3,
                            "earned_sats": 75000,
                            "clawed_back_sats": 0,
                            "paid_out_sats": 50000,
                            "owed_sats": 25000,
                        }
                    ],
                    "generated_at": "2026-11-23T10:00:00Z",
                    "next_cursor": None,
                }
            ]
        }
    )
