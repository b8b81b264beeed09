"""An emulated Lightning network for payout tests: an LNbits wallet that pays and a
Lightning Address service that receives, both over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from satshare.container import Container
from satshare.providers.lnurl import LnurlClient
from satshare.sim.lightning import LightningNetwork
from satshare.sim.lnbits import LNbitsEmulator
from satshare.sim.lnbits import build_app as lnbits_app
from satshare.sim.lnurl import LnurlEmulator
from satshare.sim.lnurl import build_app as lnurl_app
from tests.servers import RunningServer, start_server

INVOICE_KEY, ADMIN_KEY = "lnbits-invoice-key-0123", "lnbits-admin-key-4567"


@dataclass
class Lightning:
    network: LightningNetwork
    lnbits: LNbitsEmulator
    lnbits_server: RunningServer
    lnurl: LnurlEmulator
    lnurl_server: RunningServer
    clients: list[LnurlClient] = field(default_factory=list)

    def reachable_from(self, container: Container) -> None:
        """Let the container's payouts use this service on 127.0.0.1 over http, which the
        network guard refuses outside the sandbox (tests/test_ssrf.py shows it does)."""
        client = LnurlClient(
            timeout_seconds=container.settings.payouts.timeout_seconds,
            allow_private_networks=True,
        )
        self.clients.append(client)
        container.payouts.lnurl = client

    def address(self, name: str, **limits: int) -> str:
        if name not in self.lnurl.accounts:
            self.lnurl.add_account(name, **limits)
        return self.lnurl.address(name)

    def received_sats(self, name: str) -> list[int]:
        return [msat // 1000 for msat in self.lnurl.accounts[name].received_msat()]


@pytest.fixture
async def lightning() -> AsyncIterator[Lightning]:
    network = LightningNetwork()
    wallet = LNbitsEmulator(invoice_key=INVOICE_KEY, admin_key=ADMIN_KEY, network=network)
    wallet_server = await start_server(lnbits_app(wallet))
    service = LnurlEmulator(network)
    service_server = await start_server(lnurl_app(service))
    service.base_url = service_server.url
    running = Lightning(network, wallet, wallet_server, service, service_server)
    yield running
    for client in running.clients:
        await client.aclose()
    await service_server.stop()
    await wallet_server.stop()
    await wallet.aclose()
