"""The Bot API client's HTTP layer with every error answer counted in /metrics.

One place sees every call (sends, long polls, member removal): PTB's own HTTPX request,
which reports the status Telegram answered with; the error code becomes the
``satshare_telegram_errors_total`` label (``network``/``timeout`` when no answer came).
Its connections come from ``satshare.httppool`` (cheaper per request than httpx's own pool).
"""

from __future__ import annotations

from typing import Any

import httpx
from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest

from satshare import httppool, metrics


class MeteredRequest(HTTPXRequest):
    def __init__(self, *, connection_pool_size: int, **kwargs: Any) -> None:
        self._pool_size = connection_pool_size  # before PTB builds its first client
        super().__init__(connection_pool_size=connection_pool_size, **kwargs)

    def _build_client(self) -> httpx.AsyncClient:
        # PTB builds its client here, and again in initialize() after a shutdown closed it
        # (with its pool): each client gets a transport of its own.
        transport = httppool.transport(max_connections=self._pool_size)
        return httpx.AsyncClient(**{**self._client_kwargs, "transport": transport})

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except TimedOut:
            metrics.telegram_error("timeout")
            raise
        except NetworkError:
            metrics.telegram_error("network")
            raise
        if code >= 400:
            metrics.telegram_error(code)
        return code, payload
