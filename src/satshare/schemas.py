"""Schema pieces shared by every domain's API models (pydantic only, no web framework)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")

#: Ids are 64-bit signed integers in the database; anything larger is refused up front.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
#: Any 64-bit signed integer (a BIGINT column), e.g. an id on another platform.
BigInt = Annotated[int, Field(ge=-MAX_ID - 1, le=MAX_ID)]

#: A promo code's length: its column, and every field and path that names one (an invoice's
#: code, a new subscription's) refuses a longer one up front.
PROMO_CODE_MAX_LENGTH = 32

NUL_MESSAGE = "must not contain NUL (\\x00) characters"


def contains_nul(value: Any) -> bool:
    """Whether a string, or any string inside a list or dict, holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    return False


class StrictModel(BaseModel):
    """Request bodies: unknown fields and silent type coercion are both refused, and so is a
    NUL character in any string (PostgreSQL cannot store one: it would fail as a 500 there
    and pass on SQLite, so both refuse it up front, naming the field)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value


class PageOf(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["/problems/validation-failed"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
