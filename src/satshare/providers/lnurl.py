"""LNURL-pay client (LUD-06, LUD-16): turns a Lightning Address or LNURL into a BOLT11 for an
exact amount, checking what the service returns before anyone pays it."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from bolt11 import decode as decode_bolt11

from satshare.payouts.ports import LnurlError, PayParams
from satshare.providers import jsonstrict


class LnurlClient:
    def __init__(
        self, *, timeout_seconds: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = await self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise LnurlError(f"the service did not answer ({type(exc).__name__})") from None
        try:
            body = jsonstrict.loads(response.content)
        except ValueError:
            raise LnurlError(
                f"the service answered HTTP {response.status_code}, not JSON"
            ) from None
        if not isinstance(body, dict):
            raise LnurlError("the service answered with something that is not an object")
        if str(body.get("status", "")).upper() == "ERROR":
            reason = str(body.get("reason") or "no reason given")[:200]
            raise LnurlError(f"the service refused: {reason}")
        if response.status_code >= 400:
            raise LnurlError(f"the service answered HTTP {response.status_code}")
        return body

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
