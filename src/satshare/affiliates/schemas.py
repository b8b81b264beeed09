"""API models for the affiliate program (pydantic only)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from satshare.schemas import StrictModel


class TermsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    share_bps: int = Field(description="The share of each sale the affiliate earns now.")
    label: str = Field(
        description="How it was decided: base, level:<name>, custom:v<n> or suspended. Every "
        "ledger entry keeps the label that applied to it."
    )
    level: str | None


class AffiliateBalance(BaseModel):
    balance_sats: int = Field(description="Owed now; negative after a clawback (see docs).")
    available_sats: int = Field(description="Can be paid out now.")
    pending_sats: int = Field(description="Commissions still in the hold period.")
    total_earned_sats: int = Field(description="All commissions, net of clawbacks.")
    paid_out_sats: int
    in_payouts_sats: int = Field(description="Held by payouts not yet paid.")


class ReferralStatsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    registered: int
    paying: int
    referred_sales_sats: int


class SuspensionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reason: str
    suspended_by: str
    suspended_at: datetime


class DestinationOut(BaseModel):
    kind: str
    value: str
    updated_at: datetime

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "kind": "lightning_address",
                    "value": "alice@example.com",
                    "updated_at": "2026-11-20T10:01:00Z",
                }
            ]
        },
    )


class AffiliateOut(BaseModel):
    user_id: int
    terms: TermsOut
    balance: AffiliateBalance
    referrals: ReferralStatsOut
    suspension: SuspensionOut | None
    terms_version: str = Field(description="The current affiliate terms version.")
    terms_accepted_at: datetime | None = Field(
        description="When this affiliate accepted the current version; null: not yet (no "
        "payouts until they do)."
    )
    destination: DestinationOut | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 3,
                    "terms": {"share_bps": 5000, "label": "base", "level": None},
                    "balance": {
                        "balance_sats": 40000,
                        "available_sats": 25000,
                        "pending_sats": 15000,
                        "total_earned_sats": 90000,
                        "paid_out_sats": 50000,
                        "in_payouts_sats": 0,
                    },
                    "referrals": {"registered": 12, "paying": 4, "referred_sales_sats": 180000},
                    "suspension": None,
                    "terms_version": "1",
                    "terms_accepted_at": "2026-11-20T10:00:00Z",
                    "destination": {
                        "kind": "lightning_address",
                        "value": "alice@example.com",
                        "updated_at": "2026-11-20T10:01:00Z",
                    },
                }
            ]
        }
    )


class CustomTermsIn(StrictModel):
    share_bps: int | None = Field(
        ge=0,
        le=10_000,
        description="The affiliate's share in basis points; null returns them to the "
        "level-based terms.",
    )
    reason: str = Field(min_length=1, max_length=500, description="Why (kept in the history).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"share_bps": 6000, "reason": "top partner, agreed by mail"}]
        }
    )


class CustomTermsOut(BaseModel):
    version: int
    share_bps: int | None
    set_by: str
    reason: str
    created_at: datetime

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "version": 2,
                    "share_bps": 6000,
                    "set_by": "api-key:1:admin",
                    "reason": "top partner, agreed by mail",
                    "created_at": "2026-11-21T09:00:00Z",
                }
            ]
        },
    )


class SuspensionIn(StrictModel):
    reason: str = Field(min_length=1, max_length=500)

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "spam in public chats"}]})


class TermsAcceptanceIn(StrictModel):
    version: str = Field(min_length=1, max_length=32, description="The version being accepted.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": "1"}]})


class DestinationIn(StrictModel):
    destination: str = Field(
        min_length=1,
        max_length=2048,
        description="A Lightning Address, LNURL-pay code or bitcoin address (a BOLT11 invoice "
        "is single-use and cannot be saved).",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"destination": "alice@example.com"}]}
    )


class LevelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    share_bps: int
    min_paying_referrals: int | None
    min_referred_sales_sats: int | None


class ProgramOut(BaseModel):
    """The affiliate program as configured: public, so anyone can read the rules."""

    share_bps: int
    levels: list[LevelOut]
    hold_days: int
    terms_version: str
    terms_text: str
    payout_min_sats: int
    payout_lightning_fee_sats: int
    payout_onchain_fee_sats: int
    payout_provider: str
    instant_lightning: bool

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "share_bps": 5000,
                    "levels": [
                        {
                            "name": "partner",
                            "share_bps": 5000,
                            "min_paying_referrals": 0,
                            "min_referred_sales_sats": None,
                        }
                    ],
                    "hold_days": 0,
                    "terms_version": "1",
                    "terms_text": "Commission is paid on real subscription sales only...",
                    "payout_min_sats": 10000,
                    "payout_lightning_fee_sats": 0,
                    "payout_onchain_fee_sats": 2000,
                    "payout_provider": "lnbits",
                    "instant_lightning": False,
                }
            ]
        }
    )


class LeaderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rank: int = Field(description="Equal values share a rank.")
    user_id: int
    name: str | None = Field(description="Shown only if the affiliate opted in; else null.")
    value: int = Field(description="Paying referrals, or referred sales in sats.")


class LeaderboardOut(BaseModel):
    by: str
    period: str
    since: datetime | None
    items: list[LeaderOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "by": "sales",
                    "period": "month",
                    "since": "2026-10-24T10:00:00Z",
                    "items": [
                        {"rank": 1, "user_id": 3, "name": "alice", "value": 150000},
                        {"rank": 2, "user_id": 9, "name": None, "value": 50000},
                    ],
                }
            ]
        }
    )


class LeaderboardNameIn(StrictModel):
    name: str | None = Field(
        max_length=32,
        description="The name to show on the leaderboard; null: stay anonymous (the default).",
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "alice"}]})


class FunnelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    clicks: int = Field(description="Times the referral link was opened.")
    registrations: int = Field(description="Users registered through the link.")
    paying: int = Field(description="Of those, how many paid (refunds excluded).")


class MonthEarningsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    month: str
    earned_sats: int = Field(description="Commissions net of clawbacks.")
    commissions: int


class AffiliateStatsOut(BaseModel):
    user_id: int
    funnel: FunnelOut
    earnings_by_month: list[MonthEarningsOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 3,
                    "funnel": {"clicks": 40, "registrations": 12, "paying": 4},
                    "earnings_by_month": [
                        {"month": "2026-10", "earned_sats": 50000, "commissions": 2},
                        {"month": "2026-11", "earned_sats": 25000, "commissions": 1},
                    ],
                }
            ]
        }
    )


class ReferralClickIn(StrictModel):
    referral_code: str = Field(min_length=1, max_length=16)
    source: str = Field(
        "website",
        max_length=16,
        description="Where the link was opened: telegram, website, discord or api.",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"referral_code": "k3x9ab", "source": "website"}]}
    )


class ReferralClickOut(BaseModel):
    affiliate_user_id: int

    model_config = ConfigDict(json_schema_extra={"examples": [{"affiliate_user_id": 3}]})
