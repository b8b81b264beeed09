from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from satshare.schemas import MAX_ID, BigInt, Id, StrictModel

Platform = Literal["telegram", "discord", "website", "api"]
Language = Literal["en", "ru"]


def _user_id_in_range(reference: str) -> str:
    # A digit string is read as a user id: int() must accept it and the database hold it.
    digits = reference.strip()
    if digits.isdigit() and not (digits.isascii() and int(digits) <= MAX_ID):
        raise ValueError(f"a user id is written with the digits 0-9 and is at most {MAX_ID}")
    return reference


#: The referrer: a user id, or a referral code (a user id may come as a string of digits).
ReferralReference = (
    Id | Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_user_id_in_range)]
)
#: The users.external_id column is VARCHAR(128); a number is any 64-bit id.
ExternalId = BigInt | Annotated[str, Field(max_length=128)]


class UserCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"username": "alice", "platform": "telegram", "external_id": "123456789"},
                {"username": "bob", "platform": "website", "referral_id": "k7m2xq9p"},
            ]
        },
    )

    username: str = Field(min_length=1, max_length=64)
    platform: Platform
    external_id: ExternalId | None = Field(
        None, description="The user's id on the platform (e.g. the Telegram user id)."
    )
    referral_id: ReferralReference | None = Field(
        None,
        description="Who referred this user: their user id or their referral code. "
        "Set once, at registration; it can never change.",
    )
    language: Language | None = None


class UserUpdate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"username": "alice_new", "language": "ru"}]},
    )

    username: str | None = Field(None, min_length=1, max_length=64)
    language: Language | None = None
    referral_id: ReferralReference | None = Field(
        None, description="Not changeable: sending it is answered with 409."
    )


class UserCreated(BaseModel):
    user_id: int
    referral_code: str
    referrer_id: int | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"user_id": 7, "referral_code": "k7m2xq9p", "referrer_id": 3}]
        }
    )


USER_EXAMPLE: dict[str, Any] = {
    "user_id": 7,
    "username": "alice",
    "platform": "telegram",
    "external_id": "123456789",
    "language": "en",
    "referral_code": "k7m2xq9p",
    "referrer_id": 3,
    "created_at": "2026-11-01T10:00:00Z",
}


class UserOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [USER_EXAMPLE]})

    user_id: int
    username: str | None
    platform: str
    external_id: str | None
    language: str
    referral_code: str
    referrer_id: int | None
    created_at: datetime


class ReferralCounts(BaseModel):
    registered: int = Field(description="Users who registered through this user's link or code.")
    paying: int = Field(description="Of those, how many have paid at least once.")
