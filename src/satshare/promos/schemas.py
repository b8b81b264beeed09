from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from satshare.promos.models import CODE_MAX_LENGTH
from satshare.schemas import NUL_MESSAGE, StrictModel

MOMENT_MAX_LENGTH = 40


def _short(value: object) -> object:
    if isinstance(value, str) and len(value) > MOMENT_MAX_LENGTH:
        raise ValueError(f"a date and time is at most {MOMENT_MAX_LENGTH} characters")
    return value


#: An ISO 8601 date and time with its time zone, e.g. 2026-12-31T23:59:59Z.
Moment = Annotated[
    AwareDatetime,
    Field(strict=False),
    BeforeValidator(_short),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": MOMENT_MAX_LENGTH}),
]


def _no_nul(value: str) -> str:
    # Checked per item so the problem names the item (plans.0), not the whole list.
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


PlanId = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)]


class PromoCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "code": "SPRING20",
                    "kind": "percent",
                    "value": 20,
                    "plans": ["monthly"],
                    "max_uses": 100,
                    "once_per_user": True,
                    "first_purchase_only": False,
                    "valid_from": "2026-03-01T00:00:00Z",
                    "valid_until": "2026-04-01T00:00:00Z",
                },
                {"code": "WELCOME", "kind": "extra_days", "value": 7, "first_purchase_only": True},
            ]
        },
    )

    code: str = Field(
        min_length=3,
        max_length=CODE_MAX_LENGTH,
        description="Letters, digits, _ and -; matched without regard to case.",
    )
    kind: Literal["percent", "fixed_sats", "extra_days"]
    value: int = Field(
        ge=1,
        le=2_100_000_000_000_000,
        description="percent: 1-100 off; fixed_sats: sats off; extra_days: days added. A "
        "discounted price is never below 1 sat.",
    )
    plans: list[PlanId] | None = Field(
        None, max_length=100, description="Plan ids it applies to; absent: every plan."
    )
    max_uses: int | None = Field(
        None,
        ge=1,
        le=1_000_000_000,
        description="Uses in all; an unpaid invoice's use is given back when the invoice expires.",
    )
    once_per_user: bool = True
    first_purchase_only: bool = False
    valid_from: Moment | None = None
    valid_until: Moment | None = None


class PromoUpdate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "max_uses": 200,
                    "plans": ["monthly", "yearly"],
                    "valid_from": "2026-03-01T00:00:00Z",
                    "valid_until": "2026-05-01T00:00:00Z",
                },
                {"active": False},
            ]
        },
    )

    active: bool | None = Field(None, description="false disables the code at once.")
    plans: list[PlanId] | None = Field(None, max_length=100)
    max_uses: int | None = Field(None, ge=1, le=1_000_000_000)
    once_per_user: bool | None = None
    first_purchase_only: bool | None = None
    valid_from: Moment | None = None
    valid_until: Moment | None = None


class PromoStats(BaseModel):
    uses: int = Field(description="Settled purchases made with the code.")
    pending: int = Field(description="Uses held by invoices not paid yet.")
    revenue_sats: int = Field(description="What those purchases paid.")
    discount_sats: int = Field(description="The discount they were given.")


class PromoOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "SPRING20",
                    "kind": "percent",
                    "value": 20,
                    "plans": ["monthly"],
                    "max_uses": 100,
                    "once_per_user": True,
                    "first_purchase_only": False,
                    "valid_from": "2026-03-01T00:00:00Z",
                    "valid_until": "2026-04-01T00:00:00Z",
                    "active": True,
                    "stats": {
                        "uses": 12,
                        "pending": 2,
                        "revenue_sats": 480000,
                        "discount_sats": 120000,
                    },
                    "created_by": "api-key:1:admin",
                    "created_at": "2026-02-20T10:00:00Z",
                    "updated_at": "2026-02-20T10:00:00Z",
                }
            ]
        }
    )

    code: str
    kind: str
    value: int
    plans: list[str] | None
    max_uses: int | None
    once_per_user: bool
    first_purchase_only: bool
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool
    stats: PromoStats
    created_by: str
    created_at: datetime
    updated_at: datetime
