"""One send rate for every process that counts in the same storage (issue #11).

Telegram allows a bot about 30 messages a second in all, whichever process sends them; a
``serve`` process, two ``satshare worker``s and a broadcast each pacing themselves at that
rate would together go three or four times over it. ``SharedRateLimit.acquire`` waits for a
token counted where every process sees it: Redis when ``redis.url`` is set, else the
PostgreSQL database (``storage.DatabaseStorage``), or memory on SQLite, where one process
sends everything.

The count is a ``limits`` storage's fixed-window counter (``Storage.incr``: atomic in
memory, Redis and the database alike), one counter per one-second window: a process adds the
number of tokens it wants and the new total tells it which places of the window it got. Place
``p`` of ``A`` per window of ``P`` seconds starting at ``s`` may be used from ``s + p·P/A``
until the next window's first place (``s + P + P/A``), so each window holds at most ``A``
sends, spread over it at the rate — what a token bucket of that rate with a one-window burst
(how Telegram, and its emulator, count) accepts. Places past ``A`` move on to the next
window. The processes' clocks must agree (NTP), as for every shared window.

Why not the library's strategies (the sliding window counter, as the API's limits use, or
the moving window): they only answer "yes" or "no", so every process waiting for a token
has to ask again and again. Measured with three processes sending at once, that was 3.5
requests to the storage per message; a counter's total answers "when", so a request
reserves a block of places and never has to be repeated.

A process asks for as many places as it has sends waiting, or, when it has been sending
steadily, a block of up to ``block`` (a fifth of a second's worth) ahead: a busy sender (a
broadcast, the outbox) pays one request per block, an idle bot one per message. A place not
used by the end of its window is lost (counted in
``satshare_telegram_rate_tokens_total{use="unused"}``); that is at most a block's worth
when the sending stops.

A storage that cannot count (Redis or the database unreachable) must not stop the bot: the
process then counts in its own memory at the same rate for a few seconds before asking the
storage again, so it alone stays within the limit; Telegram's 429s, which PTB waits out,
cover the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage

from satshare import logs, metrics
from satshare.ratelimits.storage import storage_down

log = logging.getLogger(__name__)

#: After the storage failed, count in memory this long before asking it again.
RETRY_STORAGE_SECONDS = 5.0


def rate_item(per_second: float) -> RateLimitItem:
    """``per_second`` as a ``limits`` item: whole seconds and a whole number of messages
    (25 → 25 per second; 12.5 → 25 per 2 seconds; 0.5 → 1 per 2 seconds)."""
    fraction = Fraction(per_second).limit_denominator(60)
    return RateLimitItemPerSecond(fraction.numerator, fraction.denominator)


@dataclass(frozen=True, slots=True)
class Place:
    """One reserved send: not before ``start``, and not at or after ``end``."""

    start: float
    end: float


class SharedRateLimit:
    """Tokens at ``per_second`` for everyone counting under ``identity`` in ``storage``."""

    def __init__(
        self,
        storage: Storage,
        per_second: float,
        *,
        identity: str,
        block: int | None = None,
    ) -> None:
        self.per_second = per_second
        self.item = rate_item(per_second)
        self.identity = identity
        #: Reserve at most this many places at once.
        self.block = block or max(1, round(per_second / 5))
        self._storage = storage
        self._storage_down = storage_down(storage)
        self._local = MemoryStorage()
        self._local_until = 0.0
        self._key = self.item.key_for("telegram", identity)
        self._places: deque[Place] = deque()
        #: Per storage (the shared one, this process's own): the first window not seen full.
        self._open_window = {id(storage): 0, id(self._local): 0}
        self._waiting: deque[asyncio.Future[None]] = deque()
        #: When this process's recent tokens were granted (the last window's worth).
        self._granted: deque[float] = deque()
        self._granter: asyncio.Task[None] | None = None

    async def acquire(self) -> None:
        """Wait for one token (one send)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append(future)
        granter = self._granter
        if granter is None or granter.done() or granter.get_loop() is not loop:
            # Its own context: not the log context of the request that happened to start it.
            self._granter = loop.create_task(
                self._grant(), name="telegram rate limit", context=contextvars.Context()
            )
        try:
            await future
        except asyncio.CancelledError:
            # Given up before its turn. (A token granted at that very moment is lost.)
            if future in self._waiting:
                self._waiting.remove(future)
            raise

    async def aclose(self) -> None:
        granter, self._granter = self._granter, None
        if granter is not None and not granter.done():
            granter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await granter
        for future in self._waiting:
            future.cancel()
        self._waiting.clear()

    async def _grant(self) -> None:
        """Reserve places for the sends waiting and let each go at its place's time."""
        while self._waiting:
            now = time.time()
            self._forget_ended(now)
            short = len(self._waiting) - len(self._places)
            if short > 0:
                await self._reserve(min(self.block, max(short, self._steady(now))))
                continue
            place = self._places[0]
            if place.start > now:
                await asyncio.sleep(place.start - now)
                continue
            self._places.popleft()
            self._waiting.popleft().set_result(None)
            self._granted.append(now)
            metrics.telegram_rate_tokens("granted")

    def _forget_ended(self, now: float) -> None:
        while self._places and self._places[0].end <= now:
            self._places.popleft()
            metrics.telegram_rate_tokens("unused")
        period = self.item.get_expiry()
        while self._granted and self._granted[0] <= now - period:
            self._granted.popleft()

    def _steady(self, now: float) -> int:
        """Places worth reserving ahead: what this process sent in the last window, scaled
        to a block's duration (a steady sender at the full rate: a whole block)."""
        return math.ceil(len(self._granted) * self.block / self.item.amount)

    async def _reserve(self, count: int) -> None:
        """Add ``count`` places, from the current window on, to this process's own."""
        now = time.time()
        storage: Storage = self._local
        if now >= self._local_until:
            storage = self._storage
        try:
            places = await self._count(storage, count, now)
        except Exception as exc:
            if storage is self._local:
                raise
            # The storage cannot count: this process counts alone for a while. Its backend
            # down is one line with the reason, every few seconds while it lasts (the
            # traceback with log_level DEBUG); anything else keeps its traceback.
            logs.warn_unavailable(
                log,
                "the shared Telegram rate limit cannot be counted (redis.url or the database "
                "unreachable?); this process paces itself at %s messages/s for %d s",
                exc,
                self._storage_down,
                self.per_second,
                RETRY_STORAGE_SECONDS,
            )
            metrics.telegram_rate_request("failed")
            self._local_until = now + RETRY_STORAGE_SECONDS
            places = await self._count(self._local, count, now)
        self._places.extend(places)

    async def _count(self, storage: Storage, count: int, now: float) -> list[Place]:
        period, amount = self.item.get_expiry(), self.item.amount
        # Windows this process saw filled stay full (counts only grow): start past them.
        window = max(math.floor(now / period), self._open_window[id(storage)])
        places: list[Place] = []
        while count > 0:
            start, step = window * period, period / amount
            # Kept until the window has ended (it may be reserved well ahead), and a window
            # more: a process asking late must still find it full.
            keep = math.ceil(start + period - now) + period
            total = await storage.incr(f"{self._key}/{window}", keep, amount=count)
            if storage is self._storage:
                metrics.telegram_rate_request("reserved")
            for place in range(total - count + 1, min(total, amount) + 1):
                places.append(Place(start + place * step, start + period + step))
            if total < amount:
                break
            # Full now; what did not fit goes to the next window.
            count = min(count, total - amount)
            window += 1
            self._open_window[id(storage)] = window
        return places
