"""LNURL-pay client (LUD-06, LUD-16): turns a Lightning Address or LNURL into a BOLT11 for an
exact amount, checking what the service returns before anyone pays it.

Lightning Addresses and LNURLs are typed by affiliates, so outside the sandbox every request
(and every redirect, and the callback the service names) goes through the network guard: https
to public addresses only. Answers are capped in size and time. Whatever went wrong on the way,
people are told only that the service could not be reached; the owner's log has the detail.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import httpx

from satshare import jsonstrict
from satshare.payouts.ports import LnurlError, LnurlUnreachable, PayParams
from satshare.providers.http import timeout, tls_context
from satshare.providers.netguard import GuardedTransport, Refused

log = logging.getLogger(__name__)

#: What people are told; no address, port or exception name (that would map our network).
UNREACHABLE = "could not reach the service"
#: LNURL answers are a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES = 64 * 1024
#: Custom-domain Lightning Addresses often redirect to the wallet's service; each hop is
#: checked by the guard again, and a few are enough.
MAX_REDIRECTS = 3


class _Unusable(Exception):
    """An answer we will not read (too large, compressed)."""


class LnurlClient:
    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        allow_private_networks: bool = False,
        guard: GuardedTransport | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        """``allow_private_networks`` is for the sandbox only, whose Lightning Address service
        is SatShare itself on http://127.0.0.1; ``guard`` replaces the default guard (tests)."""
        self._guard = None if allow_private_networks else (guard or GuardedTransport())
        self._total_seconds = timeout_seconds
        self._max_body_bytes = max_body_bytes
        self._client = httpx.AsyncClient(
            timeout=timeout(timeout_seconds),
            transport=self._guard,
            verify=tls_context(),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            # Proxies from the environment would carry requests past the guard.
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            # One deadline for the whole lookup: a service trickling bytes never hits the
            # per-read timeout.
            async with asyncio.timeout(self._total_seconds):
                status, content = await self._fetch(url, params)
        except Refused as exc:
            log.warning("LNURL lookup of %s refused: %s", url, exc)
            raise LnurlUnreachable(UNREACHABLE) from None
        except TimeoutError:
            log.info("LNURL lookup of %s took longer than %s s", url, self._total_seconds)
            raise LnurlUnreachable(UNREACHABLE) from None
        except (httpx.HTTPError, httpx.InvalidURL, _Unusable) as exc:
            log.info("LNURL lookup of %s failed: %s: %s", url, type(exc).__name__, exc)
            raise LnurlUnreachable(UNREACHABLE) from None
        try:
            body = jsonstrict.loads(content)
        except ValueError:
            raise LnurlError(f"the service answered HTTP {status}, not JSON") from None
        if not isinstance(body, dict):
            raise LnurlError("the service answered with something that is not an object")
        if str(body.get("status", "")).upper() == "ERROR":
            reason = str(body.get("reason") or "no reason given")[:200]
            raise LnurlError(f"the service refused: {reason}")
        if status >= 400:
            raise LnurlError(f"the service answered HTTP {status}")
        return body

    async def _fetch(self, url: str, params: dict[str, str] | None) -> tuple[int, bytes]:
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        async with self._client.stream("GET", url, params=params, headers=headers) as response:
            # Read raw and uncompressed only, so the cap is on what is held in memory.
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise _Unusable(f"a {encoding}-compressed answer although identity was asked")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_body_bytes:
                raise _Unusable(f"an answer of {declared} bytes")
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > self._max_body_bytes:
                    raise _Unusable(f"an answer larger than {self._max_body_bytes} bytes")
            return response.status_code, bytes(body)

    async def _check_reachable(self, url: str) -> None:
        """Refuse a callback the guard would refuse, before the destination is saved."""
        if self._guard is None:
            return
        try:
            async with asyncio.timeout(self._total_seconds):
                await self._guard.vet(httpx.URL(url))
        except Refused as exc:
            log.warning("LNURL callback %s refused: %s", url, exc)
            raise LnurlUnreachable(UNREACHABLE) from None
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL) as exc:
            log.info("LNURL callback %s failed: %s: %s", url, type(exc).__name__, exc)
            raise LnurlUnreachable(UNREACHABLE) from None

    async def params(self, url: str) -> PayParams:
        body = await self._get(url)
        if body.get("tag") != "payRequest":
            raise LnurlError("this is not an LNURL-pay service (tag is not payRequest)")
        callback, low, high, metadata = (
            body.get("callback"),
            body.get("minSendable"),
            body.get("maxSendable"),
            body.get("metadata"),
        )
        if not isinstance(callback, str) or not callback.startswith(("https://", "http://")):
            raise LnurlError("the service gave no usable callback URL")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise LnurlError("the service gave no valid minSendable/maxSendable")
        if not isinstance(metadata, str):
            raise LnurlError("the service gave no metadata")
        assert isinstance(low, int) and isinstance(high, int)
        # The callback is fetched when paying; the guard checks it then too, on that day's DNS.
        await self._check_reachable(callback)
        return PayParams(
            callback=callback, min_sendable_msat=low, max_sendable_msat=high, metadata=metadata
        )

    async def invoice(self, params: PayParams, amount_msat: int) -> str:
        if not params.min_sendable_msat <= amount_msat <= params.max_sendable_msat:
            raise LnurlError(
                f"the service accepts {params.min_sendable_msat // 1000} to "
                f"{params.max_sendable_msat // 1000} sats"
            )
        body = await self._get(params.callback, {"amount": str(amount_msat)})
        bolt = body.get("pr")
        if not isinstance(bolt, str):
            raise LnurlError("the service returned no invoice")
        from bolt11 import decode as decode_bolt11  # here: most processes never pay (#15)

        try:
            decoded = decode_bolt11(bolt)
        except Exception:
            raise LnurlError("the service returned an invoice that cannot be decoded") from None
        if decoded.amount_msat != amount_msat:
            raise LnurlError(
                f"the service returned an invoice for {decoded.amount_msat} msat, not the "
                f"{amount_msat} asked; it was not paid"
            )
        # LUD-06: the invoice must commit to the metadata we were shown.
        expected = hashlib.sha256(params.metadata.encode()).hexdigest()
        if decoded.description_hash != expected:
            raise LnurlError("the invoice does not match the service's metadata; it was not paid")
        return bolt
