"""BTCPay Server Greenfield API adapter (API v1, BTCPay 1.x and 2.x)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from satshare import jsonstrict
from satshare.money import MoneyError, btc_to_sats, sats_to_btc, whole_sats
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
from satshare.security import verify_sha256_signature

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "BTCPay-Sig"
#: Events that can change what we know about an invoice; each triggers a re-fetch.
INVOICE_EVENTS = frozenset(
    {
        "InvoiceReceivedPayment",
        "InvoicePaymentSettled",
        "InvoiceProcessing",
        "InvoiceSettled",
        "InvoiceExpired",
        "InvoiceInvalid",
        "InvoicePaidAfterExpiration",
        "InvoiceExpiredPaidPartial",
    }
)
_STATES = {
    "New": InvoiceState.NEW,
    "Processing": InvoiceState.PROCESSING,
    "Settled": InvoiceState.SETTLED,
    "Expired": InvoiceState.EXPIRED,
    "Invalid": InvoiceState.INVALID,
}
_FLAGS = {
    "None": InvoiceFlag.NONE,
    "PaidLate": InvoiceFlag.PAID_LATE,
    "PaidPartial": InvoiceFlag.PAID_PARTIAL,
    "PaidOver": InvoiceFlag.PAID_OVER,
    "Marked": InvoiceFlag.MARKED,
    "Invalid": InvoiceFlag.NONE,
}


#: BTCPay's ids are ~22 characters; the columns that keep them hold 128.
MAX_WEBHOOK_ID_CHARS = 128


def _storable_id(name: str, value: str) -> None:
    """Refuse (as a 400) an id no BTCPay sends and the database could not store."""
    if len(value) > MAX_WEBHOOK_ID_CHARS or "\x00" in value:
        raise ValueError(
            f"{name} is not a BTCPay id: over {MAX_WEBHOOK_ID_CHARS} characters or with a NUL"
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


class BTCPayProvider(HttpAdapter):
    name = "btcpay"
    service = "BTCPay Server"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        store_id: str,
        webhook_secret: str,
        speed_policy: str = "MediumSpeed",
        payment_methods: list[str] | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        super().__init__(
            base_url,
            timeout_seconds=timeout_seconds,
            headers={"Authorization": f"token {api_key}", "Accept": "application/json"},
        )
        self.store_id = store_id
        self._webhook_secret = webhook_secret
        self.speed_policy = speed_policy
        self.payment_methods = payment_methods

    # -- HTTP -------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, json_body: Any = None) -> Any:
        response = await self._request(method, path, json=json_body)
        if response.status_code in (401, 403):
            raise ProviderError(
                f"BTCPay Server refused our API key ({response.status_code}); check btcpay.api_key "
                "and its permissions (btcpay.store.cancreateinvoice, btcpay.store.canviewinvoices)"
            )
        if response.status_code == 404 and "/invoices/" in path:
            raise InvoiceGone(
                f"BTCPay Server does not know this invoice ({self._error_text(response)})"
            )
        if response.status_code >= 400:
            raise ProviderError(
                f"BTCPay Server answered {response.status_code}: {self._error_text(response)}"
            )
        return self._json(response)

    @staticmethod
    def _error_text(response: httpx.Response) -> str:
        try:
            body = jsonstrict.loads(response.content)
        except ValueError:
            return response.text[:200]
        if isinstance(body, list):  # validation errors: [{"path", "message"}]
            return "; ".join(
                f"{e.get('path')}: {e.get('message')}" for e in body if isinstance(e, dict)
            )
        if isinstance(body, dict):
            return str(body.get("message") or body.get("code") or body)[:200]
        return str(body)[:200]

    # -- PaymentProvider --------------------------------------------------------------------

    async def create_invoice(self, order: InvoiceOrder) -> ProviderInvoice:
        checkout: dict[str, Any] = {
            "expirationMinutes": order.expiration_minutes,
            "speedPolicy": self.speed_policy,
        }
        if self.payment_methods:
            checkout["paymentMethods"] = list(self.payment_methods)
        body = {
            "amount": str(order.amount_sats),
            "currency": "SATS",
            "metadata": {**order.metadata, "orderId": order.reference},
            "checkout": checkout,
        }
        invoice = await self._call("POST", f"/api/v1/stores/{self.store_id}/invoices", body)
        if not isinstance(invoice, dict) or not isinstance(invoice.get("id"), str):
            raise ProviderError("BTCPay Server's invoice answer has no id")
        methods = await self._payment_methods(invoice["id"])
        return self._normalise(invoice, methods)

    async def fetch_invoice(self, provider_invoice_id: str) -> ProviderInvoice:
        invoice, methods = await asyncio.gather(
            self._call("GET", f"/api/v1/stores/{self.store_id}/invoices/{provider_invoice_id}"),
            self._payment_methods(provider_invoice_id),
        )
        return self._normalise(invoice, methods)

    async def _payment_methods(self, provider_invoice_id: str) -> list[dict[str, Any]]:
        methods = await self._call(
            "GET", f"/api/v1/stores/{self.store_id}/invoices/{provider_invoice_id}/payment-methods"
        )
        if not isinstance(methods, list):
            raise ProviderError("BTCPay Server's payment-methods answer is not a list")
        return [m for m in methods if isinstance(m, dict)]

    def verify_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> bool:
        return verify_sha256_signature(
            self._webhook_secret, raw_body, _header(headers, SIGNATURE_HEADER)
        )

    def parse_webhook(self, raw_body: bytes) -> WebhookNotice | None:
        try:
            event = jsonstrict.loads(raw_body)
        except ValueError as exc:
            raise ValueError(f"webhook body is not valid JSON: {exc}") from exc
        if not isinstance(event, dict):
            raise ValueError("webhook body must be a JSON object")
        event_type = event.get("type")
        if event_type not in INVOICE_EVENTS:
            return None
        invoice_id = event.get("invoiceId")
        if not isinstance(invoice_id, str) or not invoice_id:
            raise ValueError(f"{event_type} event without an invoiceId")
        _storable_id("invoiceId", invoice_id)
        if event.get("storeId") not in (None, self.store_id):
            log.warning(
                "ignoring %s for store %s (ours is %s)",
                event_type,
                event.get("storeId"),
                self.store_id,
            )
            return None
        delivery = event.get("deliveryId")
        if isinstance(delivery, str):
            _storable_id("deliveryId", delivery)
        return WebhookNotice(
            provider_invoice_id=invoice_id,
            event_type=event_type,
            delivery_id=delivery if isinstance(delivery, str) else None,
            claims_settlement=event_type == "InvoiceSettled",
        )

    async def ensure_webhook(self, url: str) -> str:
        """Register our receiver at the store (once) and return the webhook id."""
        hooks = await self._call("GET", f"/api/v1/stores/{self.store_id}/webhooks")
        for hook in hooks if isinstance(hooks, list) else []:
            if isinstance(hook, dict) and hook.get("url") == url:
                return str(hook["id"])
        created = await self._call(
            "POST",
            f"/api/v1/stores/{self.store_id}/webhooks",
            {
                "url": url,
                "secret": self._webhook_secret,
                "enabled": True,
                "automaticRedelivery": True,
                "authorizedEvents": {"everything": True},
            },
        )
        return str(created["id"])

    # -- normalisation ----------------------------------------------------------------------

    def _normalise(self, invoice: Any, methods: list[dict[str, Any]]) -> ProviderInvoice:
        if not isinstance(invoice, dict):
            raise ProviderError("BTCPay Server's invoice answer is not an object")
        try:
            raw_status = str(invoice["status"])
            raw_additional = str(invoice.get("additionalStatus") or "None")
            state = _STATES[raw_status]
            amount_sats = self._amount_sats(invoice, methods)
            paid_sats = sum(btc_to_sats(m.get("paymentMethodPaid") or "0") for m in methods)
            confirmed = sum(
                btc_to_sats(p.get("value") or "0")
                for m in methods
                for p in m.get("payments") or []
                if isinstance(p, dict) and p.get("status") == "Settled"
            )
            expires_at = datetime.fromtimestamp(int(invoice["expirationTime"]), UTC)
        except (KeyError, TypeError, ValueError, MoneyError) as exc:
            raise ProviderError(f"BTCPay Server sent an invoice we cannot read: {exc!r}") from exc
        payment_request = address = None
        for method in methods:
            method_id = str(method.get("paymentMethodId") or method.get("paymentMethod") or "")
            destination = method.get("destination")
            if not isinstance(destination, str):
                continue
            if method_id in ("BTC-LN", "BTC-LightningNetwork", "BTC_LightningLike"):
                payment_request = destination
            elif method_id in ("BTC-CHAIN", "BTC", "BTC-OnChain"):
                address = destination
        return ProviderInvoice(
            provider=self.name,
            provider_invoice_id=str(invoice["id"]),
            state=state,
            flag=_FLAGS.get(raw_additional, InvoiceFlag.NONE),
            amount_sats=amount_sats,
            paid_sats=paid_sats,
            confirmed_paid_sats=confirmed,
            expires_at=expires_at,
            raw_status=raw_status,
            raw_additional_status=raw_additional,
            checkout_link=invoice.get("checkoutLink"),
            payment_request=payment_request,
            address=address,
        )

    @staticmethod
    def _amount_sats(invoice: dict[str, Any], methods: list[dict[str, Any]]) -> int:
        currency = str(invoice.get("currency") or "").upper()
        if currency == "SATS":
            return whole_sats(invoice["amount"])
        if currency == "BTC":
            return btc_to_sats(invoice["amount"], round_up=True)
        # A fiat invoice: BTCPay's own conversion, rounded up to whole sats as it does.
        for method in methods:
            if method.get("currency") == "BTC" and method.get("amount") is not None:
                return btc_to_sats(method["amount"], round_up=True)
        raise ProviderError(f"cannot tell the amount in sats of a {currency} invoice")


#: BTCPay payout states mapped to what a payout sender needs to know.
_PAYOUT_STATES = {
    "AwaitingApproval": SendState.WAITING,
    "AwaitingPayment": SendState.WAITING,
    "InProgress": SendState.WAITING,
    "Completed": SendState.PAID,
    "Cancelled": SendState.FAILED,
}


class BTCPayPayouts(HttpAdapter):
    """Pays affiliates through BTCPay's store payouts (on-chain and Lightning, LNURL and
    Lightning Addresses resolved by BTCPay). A store payout processor (or the owner, in the
    BTCPay UI) does the paying; we create the payout approved and follow its state.

    BTCPay takes no idempotency key, so every payout carries ours in its metadata: after a
    timeout, ``check`` looks for it in the store's payouts before anything else happens, and
    a payout BTCPay does not list stays unknown (a slow create may still land), is asked
    about again with backoff and escalated to the admins; it is never created a second time
    and never released on silence.
    """

    name = "btcpay"
    service = "BTCPay Server"
    needs_invoice = False

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        store_id: str,
        timeout_seconds: float = 30.0,
    ) -> None:
        super().__init__(
            base_url,
            timeout_seconds=timeout_seconds,
            headers={"Authorization": f"token {api_key}", "Accept": "application/json"},
        )
        self.store_id = store_id

    def _no_answer(self, exc: httpx.HTTPError) -> Exception:
        return NoAnswer(exc)

    def supports(self, kind: DestinationKind) -> bool:
        return True

    async def send(self, order: PayoutOrder) -> SendResult:
        body = {
            "destination": order.payment_request or order.destination,
            "amount": sats_to_btc(order.send_sats),
            "payoutMethodId": "BTC-LN" if order.destination_kind.lightning else "BTC-CHAIN",
            "approved": True,
            "metadata": {
                "source": "SatShare affiliate payout",
                "satshareIdempotencyKey": order.idempotency_key,
            },
        }
        try:
            response = await self._request(
                "POST", f"/api/v1/stores/{self.store_id}/payouts", json=body
            )
        except NoAnswer as exc:
            if exc.never_connected:
                return SendResult(SendState.FAILED, reason="BTCPay Server could not be reached")
            # Sent, or perhaps sent: BTCPay may have created the payout.
            return SendResult(SendState.UNKNOWN, reason=f"no answer from BTCPay Server ({exc})")
        if response.status_code == 200:
            return self._result_of(json_object(response))
        if response.status_code in (400, 422):
            return SendResult(
                SendState.FAILED, reason=f"BTCPay Server refused the payout: {_problem(response)}"
            )
        if response.status_code in (401, 403):
            return SendResult(
                SendState.FAILED,
                reason="BTCPay Server refused our API key: it needs "
                "btcpay.store.cancreatepullpayments and btcpay.store.canmanagepullpayments",
            )
        # 5xx or a proxy timeout: the payout may exist; only BTCPay knows.
        return SendResult(
            SendState.UNKNOWN, reason=f"BTCPay Server answered {response.status_code}"
        )

    async def check(self, order: PayoutOrder) -> SendResult:
        try:
            if order.provider_ref:
                response = await self._request(
                    "GET", f"/api/v1/stores/{self.store_id}/payouts/{order.provider_ref}"
                )
                if response.status_code == 404:
                    # Not proof it was never paid (a wrong store, a restored server): ask a
                    # person rather than give the money back on silence.
                    return SendResult(
                        SendState.UNKNOWN,
                        reason=f"BTCPay Server does not know payout {order.provider_ref}",
                    )
                if response.status_code != 200:
                    return SendResult(
                        SendState.UNKNOWN, reason=f"BTCPay Server answered {response.status_code}"
                    )
                return self._result_of(json_object(response))
            response = await self._request(
                "GET",
                f"/api/v1/stores/{self.store_id}/payouts",
                params={"includeCancelled": "true"},
            )
        except NoAnswer as exc:
            return SendResult(SendState.UNKNOWN, reason=f"no answer from BTCPay Server ({exc})")
        if response.status_code != 200:
            return SendResult(
                SendState.UNKNOWN, reason=f"BTCPay Server answered {response.status_code}"
            )
        try:
            listed = jsonstrict.loads(response.content)
        except ValueError:
            return SendResult(
                SendState.UNKNOWN, reason="BTCPay Server sent a body that is not JSON"
            )
        for payout in listed if isinstance(listed, list) else []:
            metadata = payout.get("metadata") if isinstance(payout, dict) else None
            if isinstance(metadata, dict) and (
                metadata.get("satshareIdempotencyKey") == order.idempotency_key
            ):
                return self._result_of(payout)
        # Absence is not evidence: a slow create may still be running inside BTCPay and list
        # its payout later. BTCPay takes no idempotency key that could confirm it never
        # accepted ours, so the payout stays unknown (re-checked, then escalated to admins).
        return SendResult(SendState.UNKNOWN, reason="BTCPay Server does not list this payout (yet)")

    @staticmethod
    def _result_of(payout: dict[str, Any]) -> SendResult:
        state = _PAYOUT_STATES.get(str(payout.get("state")), SendState.UNKNOWN)
        ref = payout.get("id") if isinstance(payout.get("id"), str) else None
        proof = payout.get("paymentProof")
        proof_value = None
        if isinstance(proof, dict):
            found = proof.get("id") or proof.get("preimage") or proof.get("paymentHash")
            proof_value = found if isinstance(found, str) else None
        reason = "canceled in BTCPay Server" if state is SendState.FAILED else None
        return SendResult(state, proof=proof_value, provider_ref=ref, reason=reason)


def _problem(response: httpx.Response) -> str:
    try:
        body = jsonstrict.loads(response.content)
    except ValueError:
        return response.text[:200] or str(response.status_code)
    if isinstance(body, dict):
        return str(body.get("message") or body.get("code") or body)[:200]
    if isinstance(body, list):
        return "; ".join(
            f"{e.get('path')}: {e.get('message')}" for e in body if isinstance(e, dict)
        )
    return str(body)[:200]
