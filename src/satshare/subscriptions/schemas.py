from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from satshare.schemas import PROMO_CODE_MAX_LENGTH, Id, StrictModel


class FiatPriceOut(BaseModel):
    amount: str
    currency: str


class PlanOut(BaseModel):
    subscription_type: str = Field(description="The plan id; pass it to POST /subscriptions.")
    title: str
    description: str
    price_sats: int | None = Field(description="Null when the plan is priced in fiat.")
    price: FiatPriceOut | None = Field(
        None, description="A fiat price, converted to sats at the current rate on each invoice."
    )
    providers: list[str] = Field(description="Payment rails that can sell this plan.")
    price_stars: int | None = Field(None, description="Price in Telegram Stars (sold in the bot).")
    duration_days: int
    channels: list[int]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subscription_type": "monthly",
                    "title": "Premium channel, 30 days",
                    "description": "Daily analysis",
                    "price_sats": 50000,
                    "price": None,
                    "providers": ["btcpay", "lnbits"],
                    "duration_days": 30,
                    "channels": [-1001234567890],
                }
            ]
        }
    )


class SubscriptionCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"user_id": 7, "subscription_type": "monthly", "promo_code": "SPRING20"},
                {"user_id": 7, "subscription_type": "monthly", "trial": True},
            ]
        },
    )

    user_id: Id
    subscription_type: str = Field(min_length=1, max_length=64)
    provider: Literal["btcpay", "lnbits", "onchain", "bitpay"] | None = Field(
        None, description="Payment rail; defaults to the configured default provider."
    )
    promo_code: str | None = Field(
        None,
        min_length=1,
        max_length=PROMO_CODE_MAX_LENGTH,
        description="A promo code: the invoice bills the "
        "discounted price (or adds its days). A code that does not apply is 422.",
    )
    trial: bool = Field(
        False,
        description="Start the plan's free trial instead (`trial_days`): no invoice, "
        "once per person and plan.",
    )


class SubscriptionUpdate(StrictModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"status": "canceled"}]}
    )

    status: Literal["canceled", "active"] = Field(
        description="Cancel, or re-activate a canceled subscription that still has paid time."
    )
