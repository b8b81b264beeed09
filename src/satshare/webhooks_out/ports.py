"""What delivery needs from the outside world: an HTTP POST (``providers.webhook_http``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt: the status (None when no answer came), how long it took, the start of
    the answer's body, and what went wrong when there was no answer."""

    status_code: int | None
    latency_ms: int
    snippet: str
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """Send; never raises for a network failure (that is an Outcome without status)."""
        ...
