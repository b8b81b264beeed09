from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class InvoiceOut(BaseModel):
    id: str = Field(description="Our invoice id (also in the checkout URL).")
    provider: str
    provider_invoice_id: str
    amount_sats: int
    status: str = Field(description="new | processing | settled | expired | invalid")
    checkout_url: str = Field(description="SatShare's checkout page for this invoice.")
    provider_checkout_url: str | None = Field(None, description="The processor's own checkout.")
    payment_request: str | None = Field(None, description="BOLT11 Lightning invoice, if offered.")
    address: str | None = Field(None, description="On-chain address, if offered.")
    fiat_amount: str | None = Field(None, description="The plan's fiat price, if it has one.")
    fiat_currency: str | None = None
    rate: str | None = Field(
        None, description="BTC price in fiat_currency used to convert; locked until expiry."
    )
    rate_source: str | None = None
    rate_at: datetime | None = None
    expires_at: datetime
    created_at: datetime
    settled_at: datetime | None
    original_sats: int | None = Field(
        None, description="With a promo code: the plan's price before the discount."
    )
    discount_sats: int | None = Field(None, description="With a promo code: the discount.")
    promo_code: str | None = None
    bonus_days: int = Field(
        0, description="Days added to the plan's period (a promo code's, a referee bonus)."
    )


class WebhookAck(BaseModel):
    status: str = Field(
        description="settled, updated, unchanged, already_settled, duplicate, ignored or mismatch"
    )
    invoice_id: str | None = None
    detail: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "settled", "invoice_id": "inv_3x9Jk2mQp1Zr8LwT5vYbNa"}]
        }
    )
