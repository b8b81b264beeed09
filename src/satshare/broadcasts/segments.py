"""Who gets a broadcast: the segment kinds and their rules (the SQL is in ``repository``).

Every segment is a subset of the users who started the bot (platform ``telegram``) and have
not blocked it; ``language`` narrows any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from satshare.errors import InvalidRequest

LANGUAGES = ("en", "ru")
MAX_DAYS = 3650


class SegmentKind(StrEnum):
    ALL = "all"  # everyone who started the bot
    ACTIVE = "active"  # an active subscription (to plan_id, if given)
    EXPIRING = "expiring"  # an active subscription ending within `days`
    EXPIRED = "expired"  # a subscription expired and none active now (not renewed)
    NEVER_PAID = "never_paid"  # registered, never paid an invoice
    LANGUAGE = "language"  # everyone whose language is `language`
    AFFILIATES = "affiliates"  # at least one referral registered through their link


#: Which optional fields each kind takes; "days" is required for `expiring`, "language" for
#: `language`.
TAKES: dict[SegmentKind, frozenset[str]] = {
    SegmentKind.ALL: frozenset({"language"}),
    SegmentKind.ACTIVE: frozenset({"plan_id", "language"}),
    SegmentKind.EXPIRING: frozenset({"plan_id", "days", "language"}),
    SegmentKind.EXPIRED: frozenset({"plan_id", "language"}),
    SegmentKind.NEVER_PAID: frozenset({"language"}),
    SegmentKind.LANGUAGE: frozenset({"language"}),
    SegmentKind.AFFILIATES: frozenset({"language"}),
}


@dataclass(frozen=True, slots=True)
class Segment:
    kind: SegmentKind
    plan_id: str | None = None
    days: int | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        given = {
            name for name in ("plan_id", "days", "language") if getattr(self, name) is not None
        }
        extra = given - TAKES[self.kind]
        if extra:
            raise InvalidRequest(
                f"segment kind {self.kind!r} does not take {', '.join(sorted(extra))}",
                field="segment",
            )
        if self.kind == SegmentKind.EXPIRING and self.days is None:
            raise InvalidRequest(
                "segment kind 'expiring' needs days: subscriptions ending within that many days",
                field="segment.days",
            )
        if self.days is not None and not 1 <= self.days <= MAX_DAYS:
            raise InvalidRequest(f"segment days must be 1-{MAX_DAYS}", field="segment.days")
        if self.kind == SegmentKind.LANGUAGE and self.language is None:
            raise InvalidRequest(
                "segment kind 'language' needs language: en or ru", field="segment.language"
            )
        if self.language is not None and self.language not in LANGUAGES:
            raise InvalidRequest(
                f"segment language must be one of {', '.join(LANGUAGES)}",
                field="segment.language",
            )

    def as_json(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"kind": self.kind.value}
        for name in ("plan_id", "days", "language"):
            value = getattr(self, name)
            if value is not None:
                stored[name] = value
        return stored

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Segment:
        return cls(
            kind=SegmentKind(stored["kind"]),
            plan_id=stored.get("plan_id"),
            days=stored.get("days"),
            language=stored.get("language"),
        )
