"""Telegram's flood limits on what a bot sends.

Owns the token buckets: one for the bot as a whole (default 30 messages/s) and one per chat
(1/s sustained, a short burst allowed). A send over either answers 429 "Too Many Requests"
with ``parameters.retry_after``, in whole seconds, as Telegram does. Accepted sends are
counted per whole second of the clock, so tests and benchmarks can read the rate the bot
achieved as Telegram saw it (``per_second``, ``busiest_second``).
"""

from __future__ import annotations

import time
from collections import Counter

from satshare.sim.telegram.state import BotApiError


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.capacity = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self) -> float:
        """Take one token; return 0 if allowed, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimits:
    """The global and per-chat send rates of one bot."""

    def __init__(self, global_rate: float, chat_rate: float, chat_burst: float) -> None:
        self.global_rate = global_rate
        self.chat_rate = chat_rate
        self.chat_burst = chat_burst
        self._global_bucket = TokenBucket(global_rate, global_rate)
        self._chat_buckets: dict[int, TokenBucket] = {}
        #: How many sends were answered 429 (benchmarks and tests read it).
        self.refused = 0
        #: Accepted sends per whole second of the wall clock (Unix time).
        self.per_second: Counter[int] = Counter()

    def throttle(self, chat_id: int) -> None:
        """Count one message to ``chat_id``, or raise 429 with the seconds to wait."""
        wait = self._global_bucket.take()
        if wait == 0:
            bucket = self._chat_buckets.get(chat_id)
            if bucket is None:
                bucket = self._chat_buckets[chat_id] = TokenBucket(self.chat_rate, self.chat_burst)
            wait = bucket.take()
        if wait > 0:
            self.refused += 1
            retry = max(1, int(wait + 0.999))
            raise BotApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        self.per_second[int(time.time())] += 1

    @property
    def busiest_second(self) -> int:
        """The most sends accepted within one whole second."""
        return max(self.per_second.values(), default=0)

    def set(
        self,
        global_rate: float | None = None,
        chat_rate: float | None = None,
        chat_burst: float | None = None,
    ) -> None:
        """Change the rates given; the chats' buckets start full again (the global one too when
        its rate changes)."""
        if global_rate is not None:
            self.global_rate = global_rate
            self._global_bucket = TokenBucket(global_rate, global_rate)
        if chat_rate is not None:
            self.chat_rate = chat_rate
        if chat_burst is not None:
            self.chat_burst = chat_burst
        self._chat_buckets.clear()

    def as_json(self) -> dict[str, float | int]:
        return {
            "global_rate": self.global_rate,
            "chat_rate": self.chat_rate,
            "chat_burst": self.chat_burst,
            "refused": self.refused,
            "accepted": sum(self.per_second.values()),
            "busiest_second": self.busiest_second,
        }
