"""The Bot API client's HTTP layer with every error answer counted in /metrics.

One place sees every call (sends, long polls, member removal): PTB's own HTTPX request,
which reports the status Telegram answered with; the error code becomes the
``satshare_telegram_errors_total`` label (``network``/``timeout`` when no answer came).
"""

from __future__ import annotations

from typing import Any

from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest

from satshare import metrics


class MeteredRequest(HTTPXRequest):
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
