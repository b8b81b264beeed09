"""One send rate for every process that counts in the same storage (issue #11).

Telegram allows a bot about 30 messages a second in all, whichever process sends them; a
``serve`` process, two ``satshare worker``s and a broadcast each pacing themselves at that
rate would together go three or four times over it. ``SharedRateLimit.acquire`` waits for a
token counted where every process sees it: Redis when ``redis.url`` is set, else the
PostgreSQL database (``storage.DatabaseStorage``), or memory on SQLite, where one process
sends everything.

The counting is the ``limits`` library's sliding window counter, as for the API's limits:
the previous one-second window's count weighted by how much of it still overlaps, plus the
current window's. It never lets through a sequence that a token bucket of the same rate and
a burst of one second (how Telegram, and its emulator, count) would refuse: within the
current window at most the limit is sent, and the previous window's sends are weighted by
exactly the share of them the bucket has not yet refilled. The moving window would be exact
too, but only memory and Redis implement it in ``limits``; the counter already has a
PostgreSQL storage.

Each token is one round trip to the storage only when the process has one send waiting: a
busy process (a broadcast's workers, the outbox) asks for a block of up to ``block`` tokens
at once — as many as are waiting, so none is taken for nothing — which costs one round trip
per block. Every request to the storage is counted in
``satshare_telegram_rate_requests_total`` (by outcome: granted, refused, window — a read of
the window after a refusal —, failed) and every token in ``satshare_telegram_rate_tokens_total``.

A storage that cannot count (Redis or the database unreachable) must not stop the bot: the
process then counts in its own memory at the same rate until the storage answers again, so
it alone stays within the limit; Telegram's 429s, which PTB waits out, cover the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from fractions import Fraction

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from satshare import metrics

log = logging.getLogger(__name__)

#: After the storage failed, count in memory this long before asking it again.
RETRY_STORAGE_SECONDS = 5.0
#: The shortest nap between asks, so that a refusal never turns into a busy loop.
SHORTEST_NAP = 0.005


def rate_item(per_second: float) -> RateLimitItem:
    """``per_second`` as a ``limits`` item: whole seconds and a whole number of messages
    (25 → 25 per second; 12.5 → 25 per 2 seconds; 0.5 → 1 per 2 seconds)."""
    fraction = Fraction(per_second).limit_denominator(60)
    return RateLimitItemPerSecond(fraction.numerator, fraction.denominator)


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
        self._key = ("telegram", identity)
        #: At most this many tokens per request: a fifth of a second's worth, so that
        #: several busy processes take turns within each second.
        self.block = block or max(1, round(per_second / 5))
        self._shared = SlidingWindowCounterRateLimiter(storage)
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._local_until = 0.0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._granter: asyncio.Task[None] | None = None

    async def acquire(self) -> None:
        """Wait for one token (one send)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append(future)
        granter = self._granter
        if granter is None or granter.done() or granter.get_loop() is not loop:
            self._granter = loop.create_task(self._grant(), name="telegram rate limit")
        try:
            await future
        except asyncio.CancelledError:
            # Given up before its turn. (A token granted at that very moment is spent
            # unused: erring on the slow side.)
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
        """Hand out tokens, block by block, while sends are waiting."""
        while self._waiting:
            want = min(len(self._waiting), self.block)
            granted, nap = await self._take(want)
            metrics.telegram_rate_tokens(granted)
            for _ in range(granted):
                if not self._waiting:
                    break
                self._waiting.popleft().set_result(None)
            if nap > 0:
                await asyncio.sleep(nap)

    async def _take(self, want: int) -> tuple[int, float]:
        """Take up to ``want`` tokens: how many were granted, and how long to wait before
        asking again when none were."""
        now = time.time()
        if now >= self._local_until:
            try:
                result = await self._ask(self._shared, want)
            except Exception:
                # The storage cannot count: this process counts alone for a while.
                log.warning(
                    "the shared Telegram rate limit cannot be counted (redis.url or the "
                    "database unreachable); this process paces itself at %s messages/s "
                    "for %d s",
                    self.per_second,
                    RETRY_STORAGE_SECONDS,
                    exc_info=True,
                )
                metrics.telegram_rate_request("failed")
                self._local_until = now + RETRY_STORAGE_SECONDS
            else:
                return result
        return await self._ask(self._local, want)

    async def _ask(self, limiter: SlidingWindowCounterRateLimiter, want: int) -> tuple[int, float]:
        shared = limiter is self._shared
        if await self._hit(limiter, want, shared=shared):
            return want, 0.0
        stats = await limiter.get_window_stats(self.item, *self._key)
        if shared:
            metrics.telegram_rate_request("window")
        some = min(want, stats.remaining)
        if some and await self._hit(limiter, some, shared=shared):
            return some, 0.0
        # Until the next token frees up, and about ``want`` of them: a block per request.
        nap = max(stats.reset_time - time.time(), want / self.per_second)
        return 0, min(max(nap, SHORTEST_NAP), float(self.item.get_expiry()))

    async def _hit(
        self, limiter: SlidingWindowCounterRateLimiter, cost: int, *, shared: bool
    ) -> bool:
        granted = await limiter.hit(self.item, *self._key, cost=cost)
        if shared:
            metrics.telegram_rate_request("granted" if granted else "refused")
        return granted
