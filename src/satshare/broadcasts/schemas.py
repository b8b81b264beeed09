from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from satshare.broadcasts.models import BroadcastStatus
from satshare.broadcasts.segments import MAX_DAYS
from satshare.schemas import StrictModel


def _short(value: object) -> object:
    if isinstance(value, str) and len(value) > MOMENT_MAX_LENGTH:
        raise ValueError(f"a date and time is at most {MOMENT_MAX_LENGTH} characters")
    return value


MOMENT_MAX_LENGTH = 40
#: An ISO 8601 date and time with its time zone, e.g. 2026-12-01T09:00:00Z.
Moment = Annotated[
    AwareDatetime,
    Field(strict=False),
    BeforeValidator(_short),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": MOMENT_MAX_LENGTH}),
]


class SegmentIn(StrictModel):
    kind: Literal[
        "all", "active", "expiring", "expired", "never_paid", "language", "affiliates"
    ] = Field(
        description="all: everyone who started the bot; active: active subscribers (of "
        "plan_id, if given); expiring: active subscriptions ending within `days`; expired: "
        "a subscription expired and none active now; never_paid: never paid an invoice; "
        "language: everyone with `language`; affiliates: at least one referral. Users who "
        "blocked the bot are never counted."
    )
    plan_id: str | None = Field(None, min_length=1, max_length=64)
    days: int | None = Field(None, ge=1, le=MAX_DAYS)
    language: Literal["en", "ru"] | None = Field(
        None, description="Only users with this language (any kind)."
    )


class ButtonIn(StrictModel):
    text: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=2048, description="http(s):// or tg:// URL.")
    text_ru: str | None = Field(None, min_length=1, max_length=64)


class BroadcastCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "text": "<b>New this week</b>: a live Q&amp;A on Friday.",
                    "text_ru": "<b>Новое</b>: в пятницу живой эфир с ответами на вопросы.",  # noqa: RUF001
                    "segment": {"kind": "active"},
                    "buttons": [
                        {"text": "Programme", "text_ru": "Программа", "url": "https://example.com"}
                    ],
                    "photo": "https://example.com/qa.jpg",
                    "send_at": "2026-12-01T09:00:00Z",
                },
                {
                    "text": "Your subscription ends soon: renew to keep access.",
                    "segment": {"kind": "expiring", "days": 3, "plan_id": "monthly"},
                    "buttons": [{"text": "Renew", "url": "https://t.me/satshare_bot"}],
                    "send_at": "2026-12-01T09:00:00Z",
                },
            ]
        },
    )

    text: str = Field(
        min_length=1,
        max_length=20_000,
        description="Telegram HTML (b, i, u, s, a, code, pre, blockquote, tg-spoiler); at "
        "most 4,096 characters without the tags (1,024 with a photo).",
    )
    text_ru: str | None = Field(
        None, min_length=1, max_length=20_000, description="For users whose language is ru."
    )
    photo: str | None = Field(
        None, min_length=1, max_length=2048, description="An http(s) URL or a Telegram file_id."
    )
    buttons: list[ButtonIn] = Field(default_factory=list, max_length=8)
    segment: SegmentIn
    send_at: Moment | None = Field(
        None,
        description="When to send, with its time zone; `/send` before then schedules it. "
        "Absent or past: `/send` sends at once.",
    )


class BroadcastCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"broadcast_id": 4, "recipients": 1250}]}
    )

    broadcast_id: int
    recipients: int = Field(description="How many users the segment holds now.")


class BroadcastProgress(BaseModel):
    pending: int
    sent: int
    blocked: int
    failed: int


class BroadcastOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "broadcast_id": 4,
                    "status": "sending",
                    "text": "<b>New this week</b>: a live Q&amp;A on Friday.",
                    "text_ru": None,
                    "photo": None,
                    "buttons": [],
                    "segment": {"kind": "active", "plan_id": "monthly"},
                    "send_at": None,
                    "recipients": 1250,
                    "progress": {"pending": 830, "sent": 410, "blocked": 8, "failed": 2},
                    "created_by": "api-key:1:admin",
                    "created_at": "2026-11-30T10:00:00Z",
                    "started_at": "2026-11-30T10:05:00Z",
                    "finished_at": None,
                }
            ]
        }
    )

    broadcast_id: int
    status: BroadcastStatus
    text: str
    text_ru: str | None
    photo: str | None
    buttons: list[dict[str, str]]
    segment: dict[str, object]
    send_at: datetime | None
    recipients: int = Field(
        description="The segment's size when composed; the recipients chosen once sending."
    )
    progress: BroadcastProgress
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BroadcastPreviewQueued(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"chats": [123456789], "languages": ["en", "ru"]}]}
    )

    chats: list[int] = Field(description="The admin chats the preview goes to.")
    languages: list[str] = Field(description="One preview per language the broadcast has.")
