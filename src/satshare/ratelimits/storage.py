"""A ``limits`` storage over our own database, so the counters of several SatShare
processes on one PostgreSQL meet without Redis.

The library ships storages for memory, Redis, Memcached and MongoDB but none over SQL;
this one implements its async ``Storage`` interface (fixed-window counters) and the
sliding-window-counter support the limiter uses, following the library's own memory
storage: each window is a counter row keyed by the limit and the window's number. Every
read and write is one statement, sent alone (``Database.each_statement_alone``: no BEGIN
and COMMIT on PostgreSQL, #15); taking a sliding-window place is one conditional upsert.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from math import floor

from limits.aio.storage import MemoryStorage, SlidingWindowCounterSupport, Storage
from limits.errors import StorageError
from limits.storage.base import TimestampedSlidingWindow

from satshare.db import DATABASE_ERRORS, Database, database_down
from satshare.ratelimits import repository


def storage_down(storage: Storage) -> Callable[[BaseException], bool]:
    """Whether an error of ``storage`` is its backend being down, unreachable or timed out
    rather than a bug (logged then with its traceback): the network's errors; for the
    database, what ``db.database_down`` says; for Redis, its connection and timeout errors
    and a replica refusing writes. A storage in memory has no backend to lose."""
    if isinstance(storage, DatabaseStorage):
        return lambda exc: database_down(_unwrapped(exc))
    if isinstance(storage, MemoryStorage):
        return lambda exc: isinstance(_unwrapped(exc), OSError)
    from redis.exceptions import ConnectionError as RedisDown
    from redis.exceptions import ReadOnlyError
    from redis.exceptions import TimeoutError as RedisTimeout

    redis_down = (OSError, RedisDown, RedisTimeout, ReadOnlyError)
    return lambda exc: isinstance(_unwrapped(exc), redis_down)


def _unwrapped(exc: BaseException) -> BaseException:
    """The backend's own error inside limits' wrapper (``wrap_exceptions``)."""
    if isinstance(exc, StorageError) and isinstance(exc.storage_error, BaseException):
        return exc.storage_error
    return exc


class DatabaseStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    STORAGE_SCHEME = ["satshare+database"]

    def __init__(self, db: Database, *, wrap_exceptions: bool = False) -> None:
        super().__init__(None, wrap_exceptions=wrap_exceptions)
        self.db = db

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return DATABASE_ERRORS

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        async with self.db.each_statement_alone(write=True, effect=False) as session:
            return await repository.incr(session, key, amount, now + expiry, now)

    async def get(self, key: str) -> int:
        async with self.db.each_statement_alone(write=False) as session:
            found = await repository.counts(session, [key], time.time())
        return found[key][0] if key in found else 0

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        async with self.db.each_statement_alone(write=False) as session:
            found = await repository.counts(session, [key], now)
        return found[key][1] if key in found else now

    async def check(self) -> bool:
        try:
            async with self.db.each_statement_alone(write=False) as session:
                await repository.counts(session, ["-"], time.time())
        except self.base_exceptions:
            return False
        return True

    async def reset(self) -> int | None:
        async with self.db.transaction(effect=False) as session:
            return await repository.clear_all(session)

    async def clear(self, key: str) -> None:
        async with self.db.transaction(effect=False) as session:
            await repository.clear(session, [key])

    # -- the sliding window counter (previous and current window, weighted) ---------------

    async def _window(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float]:
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        async with self.db.each_statement_alone(write=False) as session:
            found = await repository.counts(session, [previous_key, current_key], now)
        previous_count = found.get(previous_key, (0, 0.0))[0]
        current_count = found.get(current_key, (0, 0.0))[0]
        # As the library's storages reckon them: the time left of each window's weight.
        previous_ttl = (
            0.0 if previous_count == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        )
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, current_count, current_ttl

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = time.time()
        previous_count, previous_ttl, current_count, _ = await self._window(key, expiry, now)
        # floor(previous weight + current count) <= limit, with the count an integer: the
        # current count may reach the limit less the previous window's weight, floored.
        cap = limit - floor(previous_count * previous_ttl / expiry)
        if current_count + amount > cap:
            return False
        _, current_key = self.sliding_window_keys(key, expiry, now)
        # One conditional upsert checks the cap again as it counts, so a place another
        # process took meanwhile is never taken twice (and nothing has to be given back).
        async with self.db.each_statement_alone(write=True, effect=False) as session:
            # Kept twice the window: it is the previous window's count for the next one.
            counted = await repository.incr_within(
                session, current_key, amount, now + 2 * expiry, now, cap
            )
        return counted is not None

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return await self._window(key, expiry, time.time())

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        async with self.db.transaction(effect=False) as session:
            await repository.clear(session, [previous_key, current_key])
