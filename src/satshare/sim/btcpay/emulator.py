"""The BTCPay emulator's state and behaviour: stores, invoices and their life.

Owns :class:`BTCPayEmulator`: invoices created with a Lightning invoice and an on-chain address
on the emulated regtest network (``sim/lightning.py``), paid in full, in part, late or over,
confirmed block by block as their speed policy needs, expired by time or on demand, marked by
hand; every transition emits the webhook events BTCPay would (delivered by ``webhooks``). Its
Greenfield JSON is here too (``invoice_json``, ``payment_methods_json``); the HTTP routes are
in ``greenfield`` and ``control``, store payouts in ``sim/btcpay_payouts.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from satshare.sim.btcpay.model import (
    CONFIRMATIONS_NEEDED,
    SATS_PER_BTC,
    SimInvoice,
    SimPayment,
    btc,
    new_id,
)
from satshare.sim.btcpay.webhooks import DEFAULT_RETRY_DELAYS, WebhookSource
from satshare.sim.btcpay_payouts import PayoutBook
from satshare.sim.faults import Faults
from satshare.sim.lightning import RegtestNode, RegtestWallet


class BTCPayEmulator(WebhookSource):
    """State and behaviour of one emulated BTCPay Server with one or more stores."""

    def __init__(
        self,
        *,
        api_key: str,
        store_id: str,
        base_url: str = "",
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        webhook_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(retry_delays=retry_delays, webhook_timeout=webhook_timeout, clock=clock)
        self.api_key = api_key
        self.stores = {store_id}
        self.base_url = base_url.rstrip("/")
        self.invoices: dict[str, SimInvoice] = {}
        self.api_down = False
        self.faults = Faults("create_invoice", "fetch_invoice")
        #: The store's rate table (BTC price per currency), served by GET .../rates.
        self.rates: dict[str, Decimal] = {"USD": Decimal("97000"), "EUR": Decimal("89500")}
        self.node = RegtestNode()
        self.wallet = RegtestWallet()
        #: Store payouts (paying affiliates), see btcpay_payouts.
        self.payouts = PayoutBook()
        self._watcher: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def ensure_watcher(self) -> None:
        """Expire invoices on time from now on (started by the first Greenfield call)."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._watch_expiry())

    async def _watch_expiry(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for invoice in list(self.invoices.values()):
                self.evaluate(invoice)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        if self._watcher is not None:
            tasks.append(self._watcher)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.faults.aclose()
        await self.payouts.faults.aclose()
        await self._client.aclose()

    # -- invoices -------------------------------------------------------------------------

    def create_invoice(self, store_id: str, body: dict[str, Any]) -> SimInvoice:
        now = int(self.clock())
        checkout = body.get("checkout") or {}
        amount_text = str(body["amount"])
        currency = str(body.get("currency") or "BTC").upper()
        amount = Decimal(amount_text)
        if currency == "SATS":
            amount_sats = int(amount.to_integral_value(rounding="ROUND_CEILING"))
        else:
            # BTC: due is rounded UP to whole sats, as BTCPay does.
            amount_sats = int((amount * SATS_PER_BTC).to_integral_value(rounding="ROUND_CEILING"))
        expiration_minutes = float(checkout.get("expirationMinutes") or 15)
        monitoring_minutes = float(checkout.get("monitoringMinutes") or 1440)
        expiration = now + int(expiration_minutes * 60)
        methods = list(checkout.get("paymentMethods") or ["BTC-CHAIN", "BTC-LN"])
        invoice_id = new_id()
        metadata = dict(body.get("metadata") or {})
        bolt11 = payment_hash = address = None
        if "BTC-LN" in methods:
            bolt11, payment_hash, _ = self.node.invoice(
                amount_sats * 1000,
                str(metadata.get("itemDesc") or f"Invoice {invoice_id}"),
                int(expiration_minutes * 60),
            )
        if "BTC-CHAIN" in methods:
            address = self.wallet.next_address()
        invoice = SimInvoice(
            id=invoice_id,
            store_id=store_id,
            amount=amount_text,
            currency=currency,
            amount_sats=amount_sats,
            metadata=metadata,
            checkout=checkout,
            created=now,
            expiration=expiration,
            monitoring_expiration=expiration + int(monitoring_minutes * 60),
            speed_policy=str(checkout.get("speedPolicy") or "MediumSpeed"),
            methods=methods,
            address=address,
            bolt11=bolt11,
            payment_hash=payment_hash,
        )
        self.invoices[invoice_id] = invoice
        self.emit(invoice, "InvoiceCreated")
        return invoice

    def invoice_json(self, invoice: SimInvoice) -> dict[str, Any]:
        self.evaluate(invoice)
        return {
            "id": invoice.id,
            "storeId": invoice.store_id,
            "amount": invoice.amount,
            "paidAmount": self._in_currency(invoice, invoice.paid_sats()),
            "currency": invoice.currency,
            "type": "Standard",
            "checkoutLink": f"{self.base_url}/i/{invoice.id}",
            "createdTime": invoice.created,
            "expirationTime": invoice.expiration,
            "monitoringExpiration": invoice.monitoring_expiration,
            "status": invoice.status,
            "additionalStatus": invoice.additional_status,
            "availableStatusesForManualMarking": self._markable(invoice),
            "archived": invoice.archived,
            "metadata": invoice.metadata,
            "checkout": {
                "speedPolicy": invoice.speed_policy,
                "paymentMethods": invoice.methods,
                "expirationMinutes": (invoice.expiration - invoice.created) // 60,
            },
        }

    @staticmethod
    def _in_currency(invoice: SimInvoice, sats: int) -> str:
        return str(sats) if invoice.currency == "SATS" else btc(sats)

    @staticmethod
    def _markable(invoice: SimInvoice) -> list[str]:
        if invoice.status in ("Settled", "Invalid"):
            return []
        return ["Settled", "Invalid"]

    def payment_methods_json(self, invoice: SimInvoice) -> list[dict[str, Any]]:
        self.evaluate(invoice)
        paid_total = invoice.paid_sats()
        result: list[dict[str, Any]] = []
        for method in invoice.methods:
            destination = invoice.bolt11 if method == "BTC-LN" else invoice.address
            payments = [p for p in invoice.payments if p.method == method]
            needed = CONFIRMATIONS_NEEDED.get(invoice.speed_policy, 1)
            result.append(
                {
                    "paymentMethodId": method,
                    "currency": "BTC",
                    "destination": destination,
                    "paymentLink": (
                        f"lightning:{destination}"
                        if method == "BTC-LN"
                        else f"bitcoin:{destination}?amount={btc(invoice.amount_sats)}"
                    ),
                    "rate": "1.00000000" if invoice.currency == "BTC" else "100000000",
                    "paymentMethodPaid": btc(sum(p.sats for p in payments if not p.invalid)),
                    "totalPaid": btc(paid_total),
                    "due": btc(invoice.amount_sats - paid_total),
                    "amount": btc(invoice.amount_sats),
                    "paymentMethodFee": "0.00000000",
                    "activated": True,
                    "payments": [
                        {
                            "id": p.id,
                            "receivedDate": p.received,
                            "value": btc(p.sats),
                            "fee": "0.00000000",
                            "status": (
                                "Invalid"
                                if p.invalid
                                else "Settled"
                                if p.method == "BTC-LN" or p.confirmations >= needed
                                else "Processing"
                            ),
                            "destination": p.destination,
                        }
                        for p in payments
                    ],
                    "additionalData": {},
                }
            )
        return result

    def evaluate(self, invoice: SimInvoice) -> None:
        """Recompute status from payments and time; emit the events of any transition."""
        if invoice.marked or invoice.status in ("Settled", "Invalid"):
            return
        now = int(self.clock())
        paid = invoice.paid_sats()
        before = (invoice.status, invoice.additional_status)
        if invoice.status == "Expired":
            if paid >= invoice.amount_sats and invoice.additional_status != "PaidLate":
                invoice.additional_status = "PaidLate"
            elif 0 < paid < invoice.amount_sats:
                invoice.additional_status = "PaidPartial"
        elif paid >= invoice.amount_sats:
            over = paid > invoice.amount_sats
            if invoice.confirmed_sats() >= invoice.amount_sats:
                invoice.status = "Settled"
            else:
                invoice.status = "Processing"
                if now > invoice.monitoring_expiration:
                    invoice.status = "Invalid"
            invoice.additional_status = "PaidOver" if over else "None"
        elif now > invoice.expiration:
            invoice.status = "Expired"
            invoice.additional_status = "PaidPartial" if paid > 0 else "None"
        else:
            invoice.additional_status = "PaidPartial" if paid > 0 else "None"
        after = (invoice.status, invoice.additional_status)
        if after == before:
            return
        over = invoice.additional_status == "PaidOver"
        if invoice.status == "Processing" and before[0] != "Processing":
            self.emit(invoice, "InvoiceProcessing", overPaid=over)
        elif invoice.status == "Settled":
            self.emit(invoice, "InvoiceSettled", manuallyMarked=False, overPaid=over)
        elif invoice.status == "Invalid":
            self.emit(invoice, "InvoiceInvalid", manuallyMarked=False)
        elif invoice.status == "Expired" and before[0] != "Expired":
            self.emit(invoice, "InvoiceExpired", partiallyPaid=paid > 0)
            if paid > 0:
                self.emit(invoice, "InvoiceExpiredPaidPartial", partiallyPaid=True)
        elif invoice.status == "Expired" and invoice.additional_status == "PaidLate":
            self.emit(invoice, "InvoicePaidAfterExpiration")

    def pay(self, invoice: SimInvoice, *, method: str, sats: int | None = None) -> SimPayment:
        self.evaluate(invoice)
        amount = invoice.amount_sats - invoice.paid_sats() if sats is None else sats
        if amount <= 0:
            raise ValueError("nothing left to pay; pass amount_sats to overpay")
        if method not in invoice.methods:
            raise ValueError(f"payment method {method} is not enabled on this invoice")
        destination = (invoice.bolt11 if method == "BTC-LN" else invoice.address) or ""
        payment = SimPayment(
            id=new_id(16) if method == "BTC-LN" else f"{secrets.token_hex(32)}-0",
            method=method,
            sats=amount,
            received=int(self.clock()),
            destination=destination,
        )
        invoice.payments.append(payment)
        late = invoice.status == "Expired"
        self.emit(
            invoice,
            "InvoiceReceivedPayment",
            afterExpiration=late,
            paymentMethodId=method,
            payment={"id": payment.id, "value": btc(amount), "status": "Processing"},
        )
        if method == "BTC-LN":
            self.emit(
                invoice,
                "InvoicePaymentSettled",
                afterExpiration=late,
                paymentMethodId=method,
                payment={"id": payment.id, "value": btc(amount), "status": "Settled"},
            )
        self.evaluate(invoice)
        return payment

    def mine(self, blocks: int = 1) -> None:
        """Confirm on-chain payments by ``blocks`` more blocks."""
        for invoice in self.invoices.values():
            needed = CONFIRMATIONS_NEEDED.get(invoice.speed_policy, 1)
            for payment in invoice.payments:
                if payment.method != "BTC-CHAIN" or payment.invalid:
                    continue
                was = payment.confirmations
                payment.confirmations += blocks
                if was < needed <= payment.confirmations:
                    self.emit(
                        invoice,
                        "InvoicePaymentSettled",
                        afterExpiration=False,
                        paymentMethodId="BTC-CHAIN",
                        payment={
                            "id": payment.id,
                            "value": btc(payment.sats),
                            "status": "Settled",
                        },
                    )
            self.evaluate(invoice)

    def expire(self, invoice: SimInvoice) -> None:
        invoice.expiration = min(invoice.expiration, int(self.clock()) - 1)
        self.evaluate(invoice)

    def mark(self, invoice: SimInvoice, status: str) -> None:
        if status not in ("Settled", "Invalid"):
            raise ValueError("status must be Settled or Invalid")
        invoice.status = status
        invoice.additional_status = "Marked"
        invoice.marked = True
        event = "InvoiceSettled" if status == "Settled" else "InvoiceInvalid"
        extra = {"overPaid": False} if status == "Settled" else {}
        self.emit(invoice, event, manuallyMarked=True, **extra)
