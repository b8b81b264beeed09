"""Which limits a request counts against, and the verdict with its headers.

Every request counts against its client IP's limit, and a request with an API key also
against the key's (whatever address it comes from). The counting is the ``limits``
library's sliding window counter — the previous window's count weighted by how much of it
still overlaps, plus the current one's — which, unlike a fixed window, lets no double burst
through at a window's edge. Headers follow the IETF RateLimit header fields draft
(``RateLimit-Policy`` and ``RateLimit``)."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from satshare import logs
from satshare.ratelimits.storage import storage_down

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    item: RateLimitItem

    @property
    def quota(self) -> int:
        return int(self.item.amount)

    @property
    def window_seconds(self) -> int:
        return int(self.item.get_expiry())

    def describe(self) -> str:
        return f'"{self.name}";q={self.quota};w={self.window_seconds}'


def policy(name: str, rate: str) -> Policy:
    return Policy(name, parse(rate))


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    #: Seconds until a refused request may be tried again (at least 1).
    retry_after: int = 0
    #: The policy that refused it.
    refused_by: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def key_identity(api_key: str) -> str:
    """Counters are keyed by a digest of the key, never the key itself: no database read
    per request, and an invalid key is limited like any other (the IP limit still holds)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


class RateLimiter:
    def __init__(
        self,
        storage: Storage,
        *,
        per_key: str,
        per_ip: str,
        login: str,
        enabled: bool = True,
    ) -> None:
        self.storage = storage
        self.enabled = enabled
        self.per_key = policy("per-key", per_key)
        self.per_ip = policy("per-ip", per_ip)
        self.login = policy("login", login)
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._storage_down = storage_down(storage)

    async def check(self, *, api_key: str | None, client_ip: str) -> Verdict:
        """Count one API request."""
        counted = [(self.per_ip, client_ip)]
        if api_key:
            counted.insert(0, (self.per_key, key_identity(api_key)))
        return await self._count(counted)

    async def check_login(self, client_ip: str) -> Verdict:
        """Count one attempt to log in to the admin panel (its own, stricter limit)."""
        return await self._count([(self.login, client_ip)])

    async def _count(self, counted: list[tuple[Policy, str]]) -> Verdict:
        if not self.enabled:
            return Verdict(True)
        try:
            return await self._hit(counted)
        except Exception as exc:
            # A limiter that cannot count must not take the API down with it.
            logs.warn_unavailable(
                log,
                "rate limit storage failed; the request is let through",
                exc,
                self._storage_down,
            )
            return Verdict(True)

    async def _hit(self, counted: list[tuple[Policy, str]]) -> Verdict:
        states: list[tuple[Policy, int, int]] = []  # (policy, remaining, reset in seconds)
        refused: Policy | None = None
        for limit, identity in counted:
            allowed = await self._strategy.hit(limit.item, limit.name, identity)
            stats = await self._strategy.get_window_stats(limit.item, limit.name, identity)
            reset = max(1, math.ceil(stats.reset_time - time.time()))
            states.append((limit, stats.remaining, reset))
            if not allowed:
                refused = limit
                break
        headers = {
            "RateLimit-Policy": ", ".join(p.describe() for p, _, _ in states),
            "RateLimit": ", ".join(f'"{p.name}";r={r};t={t}' for p, r, t in states),
        }
        if refused is None:
            return Verdict(True, headers=headers)
        retry_after = states[-1][2]
        headers["Retry-After"] = str(retry_after)
        return Verdict(False, retry_after=retry_after, refused_by=refused.name, headers=headers)
