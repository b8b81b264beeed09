"""Outgoing webhooks over HTTP (the ``webhooks_out.ports.WebhookSender`` port).

Outside the sandbox every request goes through ``netguard``: https only, to public
addresses only, checked on the address actually connected to; an endpoint URL is typed by
an admin, but it must not turn SatShare into a probe of its own network. Redirects are not
followed (the spec expects a 2xx from the URL itself). The answer is read only up to a
snippet's worth, and every attempt ends within ``timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import httpx

from satshare.providers.http import timeout, tls_context
from satshare.providers.netguard import GuardedTransport, Refused
from satshare.webhooks_out.ports import Outcome

#: Bytes of the receiver's answer kept in the delivery log.
SNIPPET_BYTES = 500
USER_AGENT = "SatShare-Webhooks/1"


class HttpWebhookSender:
    def __init__(self, *, timeout_seconds: float, allow_private_networks: bool = False) -> None:
        self._timeout_seconds = timeout_seconds
        transport = None if allow_private_networks else GuardedTransport()
        self._client = httpx.AsyncClient(
            timeout=timeout(timeout_seconds),
            transport=transport,
            verify=tls_context(),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            # The whole attempt, headers and body read included, has one deadline.
            async with asyncio.timeout(self._timeout_seconds):
                async with self._client.stream(
                    "POST", url, content=body, headers=headers
                ) as answer:
                    snippet = b""
                    async for chunk in answer.aiter_bytes():
                        snippet += chunk
                        if len(snippet) >= SNIPPET_BYTES:
                            break
                    return Outcome(
                        status_code=answer.status_code,
                        latency_ms=elapsed(),
                        snippet=snippet[:SNIPPET_BYTES].decode("utf-8", "replace"),
                    )
        except Refused as exc:
            return Outcome(None, elapsed(), "", f"refused: {exc}")
        except TimeoutError:
            return Outcome(None, elapsed(), "", f"no answer within {self._timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome(None, elapsed(), "", f"{type(exc).__name__}: {exc}"[:500])

    async def aclose(self) -> None:
        await self._client.aclose()
