"""API response schemas that nest another domain's schema (a subscription with its latest
invoice, a user with their subscriptions). They live in the API layer so that no domain's
schemas import another domain's: subscriptions would otherwise import payments, and users
subscriptions (see the layering in ``tests/test_architecture.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from satshare.payments.schemas import InvoiceOut
from satshare.users.schemas import ReferralCounts, UserOut


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subscription_id": 12,
                    "user_id": 7,
                    "subscription_type": "monthly",
                    "status": "active",
                    "started_at": "2026-11-23T10:05:00Z",
                    "ends_at": "2026-12-23T10:05:00Z",
                    "created_at": "2026-11-23T10:00:00Z",
                    "latest_invoice": None,
                }
            ]
        }
    )

    subscription_id: int
    user_id: int
    subscription_type: str
    status: Literal["pending", "active", "expired", "canceled"]
    started_at: datetime | None
    ends_at: datetime | None
    created_at: datetime
    latest_invoice: InvoiceOut | None = None


class SubscriptionCreated(BaseModel):
    subscription_id: int
    user_id: int
    subscription_type: str
    status: Literal["pending", "active", "expired", "canceled"]
    ends_at: datetime | None
    invoice: InvoiceOut | None = Field(description="The invoice to pay; null for a free trial.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subscription_id": 12,
                    "user_id": 7,
                    "subscription_type": "monthly",
                    "status": "pending",
                    "ends_at": None,
                    "invoice": {
                        "id": "inv_3x9Jk2mQp1Zr8LwT5vYbNa",
                        "provider": "btcpay",
                        "provider_invoice_id": "9Qc2TmvX4bTrP8sKw1LzYq",
                        "amount_sats": 50000,
                        "status": "new",
                        "checkout_url": "https://pay.example.com/pay/inv_3x9Jk2mQp1Zr8LwT5vYbNa",
                        "provider_checkout_url": "https://btcpay.example.com/i/9Qc2TmvX4bTrP8sKw1LzYq",
                        "payment_request": "lnbc500u1p...",
                        "address": "bc1q...",
                        "expires_at": "2026-11-23T10:15:00Z",
                        "created_at": "2026-11-23T10:00:00Z",
                        "settled_at": None,
                    },
                }
            ]
        }
    )


class UserDetail(UserOut):
    balance_sats: int = Field(
        description="What the affiliate is owed, in sats: earnings minus payouts (held or "
        "paid). Can be negative after a refund clawed back a commission already paid out; "
        "future commissions offset it."
    )
    available_sats: int = Field(
        description="What can be paid out now: the balance minus commissions still in the "
        "hold period (affiliate.hold_days), never below zero."
    )
    pending_sats: int = Field(description="Commissions still in the hold period, in sats.")
    total_earned_sats: int = Field(
        description="All commissions ever earned, net of refunds (clawbacks), in sats."
    )
    referrals: ReferralCounts
    active_subscriptions: list[SubscriptionOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 3,
                    "username": "carol",
                    "platform": "telegram",
                    "external_id": "555000111",
                    "language": "en",
                    "referral_code": "k7m2xq9p",
                    "referrer_id": None,
                    "created_at": "2026-11-01T10:00:00Z",
                    "balance_sats": 25000,
                    "available_sats": 25000,
                    "pending_sats": 0,
                    "total_earned_sats": 25000,
                    "referrals": {"registered": 4, "paying": 1},
                    "active_subscriptions": [],
                }
            ]
        }
    )
