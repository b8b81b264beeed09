"""BitPay adapter (REST API v2, pos facade). Custodial and optional.

IPNs are unsigned, so the notificationURL we give BitPay carries our own HMAC; every IPN is
only a trigger to re-fetch the invoice, and an invoice is fulfilled only once BitPay calls it
confirmed or complete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from satshare import jsonstrict
from satshare.money import sats_to_btc
from satshare.payments.ports import (
    InvoiceFlag,
    InvoiceGone,
    InvoiceOrder,
    InvoiceState,
    ProviderError,
    ProviderInvoice,
    WebhookNotice,
)
from satshare.providers.http import HttpAdapter
from satshare.security import signed_callback_url, verify_callback_query

_STATES = {
    "new": InvoiceState.NEW,
    "paid": InvoiceState.PROCESSING,
    "confirmed": InvoiceState.SETTLED,
    "complete": InvoiceState.SETTLED,
    "expired": InvoiceState.EXPIRED,
    "invalid": InvoiceState.INVALID,
    "declined": InvoiceState.INVALID,
}
_FLAGS = {"paidPartial": InvoiceFlag.PAID_PARTIAL, "paidOver": InvoiceFlag.PAID_OVER}


class BitPayProvider(HttpAdapter):
    name = "bitpay"
    service = "BitPay"

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        transaction_speed: str = "medium",
        webhook_secret: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        super().__init__(
            base_url,
            timeout_seconds=timeout_seconds,
            headers={
                "X-Accept-Version": "2.0.0",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        self._token = token
        self.transaction_speed = transaction_speed
        self._webhook_secret = (
            webhook_secret or hashlib.sha256(b"satshare-bitpay-ipn:" + token.encode()).hexdigest()
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's ``data`` object; a refusal or an error status raises ProviderError
        (InvoiceGone for an invoice BitPay does not know)."""
        response = await self._request(method, path, **kwargs)
        if response.status_code in (401, 403):
            raise ProviderError("BitPay refused our token; check bitpay.token (pos facade)")
        if response.status_code == 404 and method == "GET":
            raise InvoiceGone("BitPay does not know this invoice")
        if response.status_code >= 400:
            raise ProviderError(f"BitPay answered {response.status_code}: {response.text[:200]}")
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise ProviderError("BitPay's answer has no data object")
        return body["data"]

    async def create_invoice(self, order: InvoiceOrder) -> ProviderInvoice:
        body: dict[str, Any] = {
            "token": self._token,
            "price": sats_to_btc(order.amount_sats),
            "currency": "BTC",
            "orderId": order.reference,
            "itemDesc": order.description,
            "transactionSpeed": self.transaction_speed,
            "fullNotifications": True,
        }
        if order.webhook_url:
            body["notificationURL"] = signed_callback_url(
                order.webhook_url, self._webhook_secret, order.reference
            )
        data = await self._call("POST", "/invoices", json=body)
        return self._normalise(data, order.amount_sats)

    async def fetch_invoice(self, provider_invoice_id: str) -> ProviderInvoice:
        data = await self._call(
            "GET", f"/invoices/{provider_invoice_id}", params={"token": self._token}
        )
        return self._normalise(data, None)

    def _normalise(self, data: dict[str, Any], expected_sats: int | None) -> ProviderInvoice:
        try:
            status = str(data["status"])
            state = _STATES[status]
            amount = int(data["paymentTotals"]["BTC"])
            paid = int(data.get("amountPaid") or 0)
            expires_at = datetime.fromtimestamp(int(data["expirationTime"]) / 1000, UTC)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"BitPay sent an invoice we cannot read: {exc!r}") from exc
        if expected_sats is not None and amount != expected_sats:
            raise ProviderError(f"BitPay's invoice is for {amount} sats, not {expected_sats}")
        exception = data.get("exceptionStatus")
        flag = (
            _FLAGS.get(exception, InvoiceFlag.NONE)
            if isinstance(exception, str)
            else InvoiceFlag.NONE
        )
        settled = state is InvoiceState.SETTLED
        return ProviderInvoice(
            provider=self.name,
            provider_invoice_id=str(data["id"]),
            state=state,
            flag=flag,
            amount_sats=amount,
            paid_sats=paid,
            confirmed_paid_sats=paid if settled else 0,
            expires_at=expires_at,
            raw_status=status,
            raw_additional_status=str(exception or "None"),
            checkout_link=data.get("url"),
            address=data.get("bitpayAddress"),
        )

    def verify_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> bool:
        return verify_callback_query(self._webhook_secret, query)

    def parse_webhook(self, raw_body: bytes) -> WebhookNotice | None:
        try:
            payload = jsonstrict.loads(raw_body)
        except ValueError as exc:
            raise ValueError(f"IPN body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ValueError("IPN body must be a JSON object")
        data = payload.get("data")
        if not isinstance(data, dict):
            data = payload  # older IPNs put the invoice at the top level
        invoice_id = data.get("id")
        if not isinstance(invoice_id, str) or not invoice_id:
            raise ValueError("IPN without an invoice id")
        event = payload.get("event")
        name = str((event or {}).get("name") if isinstance(event, dict) else None)
        if name == "None":
            name = str(data.get("status") or "update")
        # What the columns keeping them hold (provider_invoice_id 128, event_type 64).
        for label, value, limit in (("invoice id", invoice_id, 128), ("event name", name, 64)):
            if len(value) > limit or "\x00" in value:
                raise ValueError(f"the IPN's {label} is over {limit} characters or has a NUL")
        status = str(data.get("status") or "")
        return WebhookNotice(
            provider_invoice_id=invoice_id,
            event_type=name,
            delivery_id=None,
            claims_settlement=status in ("confirmed", "complete")
            or name in ("invoice_confirmed", "invoice_completed"),
        )
