"""PTB's rate limiter with the bot-wide limit shared by every SatShare process.

``AIORateLimiter`` paces each process on its own; here its overall limit is off and every
call it would have counted (a call to a chat: sends, edits, bans — not ``getUpdates`` or
answering a button) first waits for a token of ``ratelimits.shared.SharedRateLimit``, which
every process counts in the same place. The rest is PTB's own: the per-group limit (20 a
minute), waiting out a 429's ``retry_after`` (this process holds its other calls meanwhile)
and retrying. A retried call takes a new token: it is another send.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

from satshare.ratelimits.shared import SharedRateLimit

#: What a Bot API call returns (PTB's JSONDict is dict[str, Any]).
Answer = bool | dict[str, Any] | list[dict[str, Any]]
Call = Callable[..., Coroutine[Any, Any, Answer]]


class SharedRateLimiter(AIORateLimiter):
    def __init__(self, shared: SharedRateLimit, *, max_retries: int = 2) -> None:
        # overall_max_rate=0: PTB's per-process bucket is off; the shared limit replaces it.
        super().__init__(overall_max_rate=0, max_retries=max_retries)
        self.shared = shared

    async def process_request(
        self,
        callback: Call,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Answer:
        # The calls PTB's overall limit counts (see AIORateLimiter._run_request).
        if data.get("chat_id") is not None and not data.get("allow_paid_broadcast", False):
            callback = self._paced(callback)
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )

    def _paced(self, callback: Call) -> Call:
        shared = self.shared

        async def paced(*args: Any, **kwargs: Any) -> Answer:
            # After PTB's group limit and its wait for a 429: no token is held meanwhile.
            await shared.acquire()
            return await callback(*args, **kwargs)

        return paced
