"""A configured URL with user:password in it never shows them in an error (issue #8, item 9).

Each client is pointed at a real local port where nothing listens, with credentials in its
URL; the error it raises names the server without them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from satshare.clock import FrozenClock
from satshare.payments.ports import ProviderError
from satshare.providers.bitpay import BitPayProvider
from satshare.providers.btcpay import BTCPayProvider
from satshare.providers.lnbits import LNbitsProvider
from satshare.providers.onchain import OnchainProvider
from satshare.providers.rates import KrakenRates
from satshare.rates.ports import RateUnreachable
from tests.servers import free_port

PASSWORD = "Hx7kP2qL9vR4mT8w"
KEY = "3f0c2a9e7b1d4c6a8e5f0b2d9c7a1e3f5b8d0a2c"


def _client(name: str, url: str) -> tuple[Callable[[], Awaitable[object]], Any]:
    """A call that reaches the server, and the client to close."""
    clock = FrozenClock(datetime(2026, 11, 30, tzinfo=UTC))
    if name == "btcpay":
        btcpay = BTCPayProvider(base_url=url, api_key=KEY, store_id="S1", webhook_secret=KEY)
        return (lambda: btcpay.fetch_invoice("inv1")), btcpay
    if name == "lnbits":
        lnbits = LNbitsProvider(base_url=url, invoice_key=KEY)
        return (lambda: lnbits.fetch_invoice("hash1")), lnbits
    if name == "bitpay":
        bitpay = BitPayProvider(base_url=url, token=KEY)
        return (lambda: bitpay.fetch_invoice("inv1")), bitpay
    if name == "onchain":
        onchain = OnchainProvider(esplora_url=url, store=None, clock=clock)  # type: ignore[arg-type]
        return (lambda: onchain.observe("bcrt1qexample")), onchain
    rates = KrakenRates(url, clock, 5.0)
    return (lambda: rates.quote("USD")), rates


@pytest.mark.parametrize("name", ["btcpay", "lnbits", "bitpay", "onchain", "rates"])
async def test_unreachable_server_errors_hide_url_credentials(name: str) -> None:
    port = free_port()
    call, client = _client(name, f"http://admin:{PASSWORD}@127.0.0.1:{port}")
    unreachable = RateUnreachable if name == "rates" else ProviderError  # each port's own error
    try:
        with pytest.raises(unreachable) as caught:
            await call()
    finally:
        await client.aclose()
    message = str(caught.value)
    assert f"http://***@127.0.0.1:{port}" in message, message
    assert PASSWORD not in message and "admin" not in message
