"""LNbits adapter (API v1): Lightning invoices, checked before they are shown.

LNbits signs nothing, so the webhook URL we hand it carries our own HMAC over our invoice
reference; a call without it is refused before anything is read. The webhook body is only a
trigger: the payment is re-fetched, and counted as paid only with a preimage that hashes to
its payment hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from satshare import jsonstrict
from satshare.clock import Clock, SystemClock
from satshare.payments.ports import (
    InvoiceFlag,
    InvoiceGone,
    InvoiceOrder,
    InvoiceState,
    ProviderError,
    ProviderInvoice,
    WebhookNotice,
)
from satshare.payouts.destinations import DestinationKind
from satshare.payouts.ports import PayoutOrder, SendResult, SendState
from satshare.providers.http import HttpAdapter, NoAnswer, json_object
from satshare.security import signed_callback_url, verify_callback_query

#: Seconds of slack allowed between the expiry we asked for and the one in the invoice.
EXPIRY_SLACK = 60


def preimage_matches(preimage: str | None, payment_hash: str) -> bool:
    if not preimage:
        return False
    try:
        return hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == payment_hash
    except ValueError:
        return False


class LNbitsProvider(HttpAdapter):
    name = "lnbits"
    service = "LNbits"

    def __init__(
        self,
        *,
        base_url: str,
        invoice_key: str,
        webhook_secret: str | None = None,
        timeout_seconds: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout_seconds=timeout_seconds,
            headers={"X-Api-Key": invoice_key, "Accept": "application/json"},
        )
        self._webhook_secret = (
            webhook_secret
            or hashlib.sha256(b"satshare-lnbits-webhook:" + invoice_key.encode()).hexdigest()
        )
        self.clock = clock or SystemClock()

    async def _call(self, method: str, path: str, json_body: Any = None) -> Any:
        """The JSON answer; a refusal or an error status raises ProviderError (InvoiceGone
        for a payment LNbits does not know)."""
        response = await self._request(method, path, json=json_body)
        if response.status_code in (401, 403):
            raise ProviderError("LNbits refused the invoice key; check lnbits.invoice_key")
        if response.status_code == 404 and path.startswith("/api/v1/payments/"):
            raise InvoiceGone("LNbits does not know this payment")
        if response.status_code >= 400:
            raise ProviderError(f"LNbits answered {response.status_code}: {response.text[:200]}")
        return self._json(response)

    def signed_webhook(self, url: str, reference: str) -> str:
        return signed_callback_url(url, self._webhook_secret, reference)

    async def create_invoice(self, order: InvoiceOrder) -> ProviderInvoice:
        expiry = order.expiration_minutes * 60
        body: dict[str, Any] = {
            "out": False,  # LNbits' default is to PAY: always say so
            "amount": order.amount_sats,
            "unit": "sat",
            "memo": order.description,
            "expiry": expiry,
            "extra": {"satshare_invoice": order.reference},
        }
        if order.webhook_url:
            body["webhook"] = self.signed_webhook(order.webhook_url, order.reference)
        data = await self._call("POST", "/api/v1/payments", body)
        if not isinstance(data, dict):
            raise ProviderError("LNbits' answer is not an object")
        bolt11 = data.get("bolt11") or data.get("payment_request")
        payment_hash = data.get("payment_hash")
        if not isinstance(bolt11, str) or not isinstance(payment_hash, str):
            raise ProviderError("LNbits' answer has no bolt11 and payment_hash")
        expires_at = self._check_invoice(bolt11, payment_hash, order.amount_sats, expiry)
        return ProviderInvoice(
            provider=self.name,
            provider_invoice_id=payment_hash,
            state=InvoiceState.NEW,
            flag=InvoiceFlag.NONE,
            amount_sats=order.amount_sats,
            paid_sats=0,
            confirmed_paid_sats=0,
            expires_at=expires_at,
            raw_status="pending",
            raw_additional_status="None",
            payment_request=bolt11,
        )

    def _check_invoice(
        self, bolt11: str, payment_hash: str, amount_sats: int, expiry: int
    ) -> datetime:
        """Never show a buyer an invoice that is not the one we asked for."""
        # bolt11 here and below, not at the top: only a configured LNbits uses it (#15).
        from bolt11 import decode as decode_bolt11
        from bolt11.exceptions import Bolt11Exception

        try:
            decoded = decode_bolt11(bolt11)
        except (Bolt11Exception, ValueError) as exc:
            raise ProviderError(f"LNbits returned an unreadable invoice: {exc}") from exc
        if decoded.payment_hash != payment_hash:
            raise ProviderError("LNbits' invoice has another payment hash than it reported")
        if int(decoded.amount_msat or 0) != amount_sats * 1000:
            raise ProviderError(
                f"LNbits' invoice is for {decoded.amount_msat} msat, not {amount_sats * 1000}"
            )
        invoice_expiry = int(decoded.expiry or 3600)
        if abs(invoice_expiry - expiry) > EXPIRY_SLACK:
            raise ProviderError(f"LNbits' invoice expires after {invoice_expiry} s, not {expiry} s")
        expires_at = datetime.fromtimestamp(decoded.date + invoice_expiry, UTC)
        if expires_at <= self.clock.now():
            raise ProviderError("LNbits returned an invoice that has already expired")
        return expires_at

    async def fetch_invoice(self, provider_invoice_id: str) -> ProviderInvoice:
        data = await self._call("GET", f"/api/v1/payments/{provider_invoice_id}")
        if not isinstance(data, dict) or not isinstance(data.get("details"), dict):
            raise ProviderError("LNbits' payment answer has no details")
        details = data["details"]
        from bolt11 import decode as decode_bolt11
        from bolt11.exceptions import Bolt11Exception

        try:
            amount_msat = int(details["amount"])
            bolt11 = str(details["bolt11"])
            decoded = decode_bolt11(bolt11)
        except (KeyError, TypeError, ValueError, Bolt11Exception) as exc:
            raise ProviderError(f"LNbits sent a payment we cannot read: {exc!r}") from exc
        if decoded.payment_hash != provider_invoice_id or amount_msat <= 0:
            raise ProviderError("LNbits describes another payment than the one asked for")
        amount_sats = amount_msat // 1000
        expires_at = datetime.fromtimestamp(decoded.date + int(decoded.expiry or 3600), UTC)
        status = str(data.get("status") or details.get("status") or "pending")
        preimage = data.get("preimage") or details.get("preimage")
        paid = bool(data.get("paid")) and preimage_matches(preimage, provider_invoice_id)
        if paid:
            state = InvoiceState.SETTLED
        elif status == "failed" or expires_at <= self.clock.now():
            state = InvoiceState.EXPIRED
        else:
            state = InvoiceState.NEW
        return ProviderInvoice(
            provider=self.name,
            provider_invoice_id=provider_invoice_id,
            state=state,
            flag=InvoiceFlag.NONE,
            amount_sats=amount_sats,
            paid_sats=amount_sats if paid else 0,
            confirmed_paid_sats=amount_sats if paid else 0,
            expires_at=expires_at,
            raw_status=status,
            raw_additional_status="None",
            payment_request=bolt11,
            proof=preimage if paid else None,
        )

    def verify_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> bool:
        return verify_callback_query(self._webhook_secret, query)

    def parse_webhook(self, raw_body: bytes) -> WebhookNotice | None:
        try:
            payload: Any = jsonstrict.loads(raw_body)
            if isinstance(payload, str):  # LNbits >= 1.1 double-encodes the body
                payload = jsonstrict.loads(payload)
        except ValueError as exc:
            raise ValueError(f"webhook body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ValueError("webhook body must be a JSON object")
        payment_hash = payload.get("payment_hash") or payload.get("checking_id")
        if not isinstance(payment_hash, str) or len(payment_hash) != 64:
            raise ValueError("webhook without a payment_hash")
        if not all(c in "0123456789abcdefABCDEF" for c in payment_hash):
            raise ValueError("the payment_hash is not 64 hex characters")
        return WebhookNotice(
            provider_invoice_id=payment_hash,
            event_type="paid",
            delivery_id=None,
            claims_settlement=True,  # LNbits calls only when the invoice was paid
        )


#: An invoice LNbits never heard of is declared unpayable only this long after it expired.
NOT_FOUND_MARGIN = timedelta(minutes=10)


class LNbitsPayouts(HttpAdapter):
    """Pays affiliates from an LNbits wallet (admin key). Lightning only.

    Every payment is a BOLT11 whose payment hash we stored before paying, so after a timeout
    ``check`` asks LNbits about that exact payment instead of paying again.
    """

    name = "lnbits"
    service = "LNbits"
    needs_invoice = True

    def __init__(
        self,
        *,
        base_url: str,
        admin_key: str,
        timeout_seconds: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout_seconds=timeout_seconds,
            headers={"X-Api-Key": admin_key, "Accept": "application/json"},
        )
        self.clock = clock or SystemClock()

    def _no_answer(self, exc: httpx.HTTPError) -> Exception:
        return NoAnswer(exc)

    def supports(self, kind: DestinationKind) -> bool:
        return kind.lightning

    async def send(self, order: PayoutOrder) -> SendResult:
        assert order.payment_request is not None and order.payment_hash is not None
        try:
            response = await self._request(
                "POST", "/api/v1/payments", json={"out": True, "bolt11": order.payment_request}
            )
        except NoAnswer as exc:
            if exc.never_connected:
                # The connection was never made, so nothing was sent: safe to call it failed.
                return SendResult(SendState.FAILED, reason="LNbits could not be reached")
            return SendResult(SendState.UNKNOWN, reason=f"no answer from LNbits ({exc})")
        if response.status_code in (200, 201):
            return self._result_of(json_object(response))
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            # Refused before any attempt (bad invoice, balance, already paid).
            return SendResult(SendState.FAILED, reason=f"LNbits refused: {_detail(response)}")
        # 5xx: the payment may have been tried; LNbits knows how it ended.
        return await self.check(order)

    async def check(self, order: PayoutOrder) -> SendResult:
        assert order.payment_hash is not None
        try:
            response = await self._request("GET", f"/api/v1/payments/{order.payment_hash}")
        except NoAnswer as exc:
            return SendResult(SendState.UNKNOWN, reason=f"no answer from LNbits ({exc})")
        if response.status_code == 404:
            return self._not_found(order)
        if response.status_code != 200:
            return SendResult(SendState.UNKNOWN, reason=f"LNbits answered {response.status_code}")
        body = json_object(response)
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        assert isinstance(details, dict)
        merged = {**details, "status": body.get("status"), "preimage": body.get("preimage")}
        if body.get("paid") is True:
            merged["status"] = "success"
        return self._result_of(merged)

    def _result_of(self, payment: dict[str, Any]) -> SendResult:
        status = str(payment.get("status") or ("success" if payment.get("paid") else "pending"))
        if status == "success":
            preimage = payment.get("preimage")
            fee_msat = payment.get("fee")
            fee = -(-abs(fee_msat) // 1000) if isinstance(fee_msat, int) else None
            return SendResult(
                SendState.PAID,
                proof=preimage if isinstance(preimage, str) else None,
                network_fee_sats=fee,
            )
        if status == "failed":
            return SendResult(SendState.FAILED, reason="the Lightning payment failed")
        return SendResult(SendState.UNKNOWN, reason="the Lightning payment is still in flight")

    def _not_found(self, order: PayoutOrder) -> SendResult:
        # LNbits has no record of that payment hash. That alone proves nothing (our call may
        # still be on its way in), but once the invoice has expired, with a margin for a call
        # that started just before, it can never be paid: then, and only then, it failed.
        assert order.payment_request is not None
        from bolt11 import decode as decode_bolt11
        from bolt11.exceptions import Bolt11Exception

        try:
            decoded = decode_bolt11(order.payment_request)
        except Bolt11Exception:
            return SendResult(SendState.UNKNOWN, reason="LNbits has no record of the payment")
        expires = datetime.fromtimestamp(decoded.date + (decoded.expiry or 3600), UTC)
        if expires + NOT_FOUND_MARGIN <= self.clock.now():
            return SendResult(SendState.FAILED, reason="never sent, and the invoice has expired")
        return SendResult(SendState.UNKNOWN, reason="LNbits has no record of the payment yet")


def _detail(response: httpx.Response) -> str:
    body = json_object(response)
    return str(body.get("detail") or response.reason_phrase or response.status_code)[:200]
