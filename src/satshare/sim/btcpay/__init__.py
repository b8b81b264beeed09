"""A BTCPay Server emulator speaking the Greenfield API v1 over real HTTP.

Covers what SatShare uses, following the BTCPay Greenfield OpenAPI 2.4.1 spec:
invoices (create, get under the store or the invoice alone, payment methods, mark status),
store payouts (``btcpay_payouts``), store webhooks (create, list, get, delete, deliveries,
redeliver) signed with ``BTCPay-Sig``,
automatic redelivery with a NEW deliveryId on failure, expiry and late payments.

A control API under ``/_sim`` (not part of BTCPay) lets tests, benchmarks and the sandbox
checkout pay invoices, mine blocks, expire or invalidate invoices, drop webhooks and read
deliveries.

Faults (``sim/faults.py``): ``api_down`` answers 503 to every Greenfield call;
``drop_webhooks`` records deliveries as Dropped instead of sending them; and the uniform
knobs (``delay``, ``fail_next``, ``accept_then_fail``, ``die_mid_call``) on the operations
``create_invoice`` (POST an invoice) and ``fetch_invoice`` (GET one invoice; its payment
methods are not affected), as ``emulator.faults.create_invoice.fail_next = 2`` or
``POST /_sim/settings {"faults": {"create_invoice": {"fail_next": 2}}}``. Store payouts have
their own (``btcpay_payouts``).

The modules, one concern each:

- ``model``: the records (invoices, payments, webhooks, deliveries), ids, BTC amounts;
- ``emulator``: :class:`BTCPayEmulator`, the stores' invoices and their life;
- ``webhooks``: signed webhook deliveries, in order per webhook, retried as BTCPay does;
- ``greenfield``: the Greenfield routes (invoices, webhooks and deliveries, store rates)
  behind the API-key guard;
- ``control``: the ``/_sim`` control API and the checkout page;
- ``app``: :func:`build_app`, the routes put together (store payouts from
  ``sim/btcpay_payouts.py``).

Import from here: ``from satshare.sim.btcpay import BTCPayEmulator, build_app``.
"""

from satshare.sim.btcpay.app import build_app
from satshare.sim.btcpay.emulator import BTCPayEmulator
from satshare.sim.btcpay.model import (
    CONFIRMATIONS_NEEDED,
    SATS_PER_BTC,
    SimDelivery,
    SimInvoice,
    SimPayment,
    SimWebhook,
)
from satshare.sim.btcpay.webhooks import DEFAULT_RETRY_DELAYS

__all__ = [
    "CONFIRMATIONS_NEEDED",
    "DEFAULT_RETRY_DELAYS",
    "SATS_PER_BTC",
    "BTCPayEmulator",
    "SimDelivery",
    "SimInvoice",
    "SimPayment",
    "SimWebhook",
    "build_app",
]
