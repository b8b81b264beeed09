"""Builds the adapters the settings name: payment rails, the payout provider, the rate
source and the LNURL client.

Only settings decide: there is no sandbox branch here. In sandbox mode the sandbox module
hands the composition root a settings overlay pointing these same adapters at its emulators.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from satshare.clock import Clock
from satshare.config import Settings
from satshare.db import Database
from satshare.payments.ports import PaymentProvider
from satshare.payouts.ports import PayoutProvider
from satshare.providers.bitpay import BitPayProvider
from satshare.providers.btcpay import BTCPayPayouts, BTCPayProvider
from satshare.providers.lnbits import LNbitsPayouts, LNbitsProvider
from satshare.providers.lnurl import LnurlClient
from satshare.providers.onchain import DatabaseAddressStore, OnchainProvider
from satshare.providers.rates import BTCPayRates, FixedRates, KrakenRates, YadioRates
from satshare.rates.ports import RateSource

OFFICIAL_RATE_URLS = {"kraken": "https://api.kraken.com", "yadio": "https://api.yadio.io"}


@dataclass(frozen=True, slots=True)
class Providers:
    #: Configured payment rails by name, in the settings' preference order.
    payments: dict[str, PaymentProvider]
    #: None when the owner pays affiliates by hand.
    payouts: PayoutProvider | None
    rates: RateSource | None
    lnurl: LnurlClient
    #: Each adapter's aclose, in the order they were built.
    closers: tuple[Callable[[], Awaitable[None]], ...]


def build_providers(
    settings: Settings, db: Database, clock: Clock, *, lnurl_private_networks: bool = False
) -> Providers:
    """Every adapter the settings configure. ``lnurl_private_networks`` lets the LNURL client
    reach loopback addresses (only the sandbox's own Lightning Address service lives there)."""
    payments = _payment_providers(settings, db, clock)
    payouts = _payout_provider(settings, clock)
    rates = _rate_source(settings, clock)
    lnurl = LnurlClient(
        timeout_seconds=settings.payouts.timeout_seconds,
        allow_private_networks=lnurl_private_networks,
    )
    closers: list[Callable[[], Awaitable[None]]] = []
    for adapter in (*payments.values(), rates, lnurl, payouts):
        close = getattr(adapter, "aclose", None)
        if close is not None:
            closers.append(close)
    return Providers(payments, payouts, rates, lnurl, tuple(closers))


def _payment_providers(
    settings: Settings, db: Database, clock: Clock
) -> dict[str, PaymentProvider]:
    providers: dict[str, PaymentProvider] = {}
    btcpay = settings.btcpay
    if btcpay.configured:
        assert btcpay.url and btcpay.api_key and btcpay.store_id and btcpay.webhook_secret
        providers["btcpay"] = BTCPayProvider(
            base_url=btcpay.url,
            api_key=btcpay.api_key.get_secret_value(),
            store_id=btcpay.store_id,
            webhook_secret=btcpay.webhook_secret.get_secret_value(),
            speed_policy=btcpay.speed_policy,
            payment_methods=btcpay.payment_methods,
            timeout_seconds=btcpay.timeout_seconds,
        )
    lnbits = settings.lnbits
    if lnbits.configured:
        assert lnbits.url and lnbits.invoice_key
        providers["lnbits"] = LNbitsProvider(
            base_url=lnbits.url,
            invoice_key=lnbits.invoice_key.get_secret_value(),
            webhook_secret=(
                lnbits.webhook_secret.get_secret_value() if lnbits.webhook_secret else None
            ),
            timeout_seconds=lnbits.timeout_seconds,
            clock=clock,
        )
    onchain = settings.onchain
    if onchain.configured:
        providers["onchain"] = OnchainProvider(
            esplora_url=onchain.esplora_url,
            store=DatabaseAddressStore(db, onchain.wallet(), clock, onchain.gap_limit),
            clock=clock,
            min_confirmations=onchain.min_confirmations,
            timeout_seconds=onchain.timeout_seconds,
        )
    bitpay = settings.bitpay
    if bitpay.configured:
        assert bitpay.url and bitpay.token
        providers["bitpay"] = BitPayProvider(
            base_url=bitpay.url,
            token=bitpay.token.get_secret_value(),
            transaction_speed=bitpay.transaction_speed,
            webhook_secret=bitpay.webhook_secret.get_secret_value()
            if bitpay.webhook_secret
            else None,
            timeout_seconds=bitpay.timeout_seconds,
        )
    return providers


def _payout_provider(settings: Settings, clock: Clock) -> PayoutProvider | None:
    """The provider that sends payouts; None when the owner pays by hand."""
    timeout = settings.payouts.timeout_seconds
    if settings.payout_provider == "btcpay":
        btcpay = settings.btcpay
        assert btcpay.url and btcpay.api_key and btcpay.store_id
        return BTCPayPayouts(
            base_url=btcpay.url,
            api_key=btcpay.api_key.get_secret_value(),
            store_id=btcpay.store_id,
            timeout_seconds=timeout,
        )
    if settings.payout_provider == "lnbits":
        lnbits = settings.lnbits
        assert lnbits.url and lnbits.admin_key
        return LNbitsPayouts(
            base_url=lnbits.url,
            admin_key=lnbits.admin_key.get_secret_value(),
            timeout_seconds=timeout,
            clock=clock,
        )
    return None


def _rate_source(settings: Settings, clock: Clock) -> RateSource | None:
    rates = settings.rates
    timeout = rates.timeout_seconds
    if rates.source == "fixed":
        return FixedRates(rates.fixed, clock)
    if rates.source == "btcpay":
        btcpay = settings.btcpay
        if not btcpay.configured:
            return None
        assert btcpay.url and btcpay.api_key and btcpay.store_id
        return BTCPayRates(
            btcpay.url, btcpay.api_key.get_secret_value(), btcpay.store_id, clock, timeout
        )
    url = rates.url or OFFICIAL_RATE_URLS[rates.source]
    source_class = KrakenRates if rates.source == "kraken" else YadioRates
    return source_class(url, clock, timeout)
