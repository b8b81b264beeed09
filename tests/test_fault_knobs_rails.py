"""Every payment rail under the emulators' fault knobs (sim/faults.py), through the real
providers and the running stack: BTCPay, LNbits, BitPay and the on-chain watcher (Esplora).

- An invoice create that is refused N times, slower than our timeout, done-then-failed or cut
  mid-answer is a clear 502, writes nothing (an invoice the processor made meanwhile is an
  orphan nobody is shown), and the next try works.
- A settlement notification whose re-fetch is refused, slow, failed or cut is not
  acknowledged and settles nothing; once the processor answers it settles exactly once.
- With the notifications dropped, the reconciler settles exactly once, and not while the
  processor's answers fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from satshare.payments import flows
from satshare.payments.models import Payment
from satshare.providers.btcpay import BTCPayProvider
from satshare.sim import bitpay as bitpay_sim
from satshare.sim import esplora as esplora_sim
from satshare.sim import lnbits as lnbits_sim
from satshare.sim.faults import Faults
from tests.conftest import (
    BTCPAY_KEY,
    STORE_ID,
    WEBHOOK_SECRET,
    BTCPaySim,
    Stack,
    close_stack,
    open_stack,
)
from tests.helpers import create_user, invoice_status, wait_until
from tests.servers import RunningServer, start_server
from tests.test_api import assert_problem
from tests.test_onchain import REGTEST_TPUB

#: Our timeout for every processor call, and a delay past it (the emulators run on the test's
#: event loop, so our timeout always fires first).
TIMEOUT = 1.0
SLOW = 1.25
PRICE = 50_000  # the monthly plan
LNBITS_INVOICE_KEY = "lnbits-invoice-key-0123"
BITPAY_TOKEN = "bitpay-pos-token-0123456789"

#: (name, knobs, how many calls fail, whether the processor did the work anyway)
CREATE_FAULTS: list[tuple[str, dict[str, Any], int, bool]] = [
    ("fail_next", {"fail_next": 2}, 2, False),
    ("delay", {"delay": SLOW}, 1, True),
    ("accept_then_fail", {"accept_then_fail": True}, 1, True),
    ("die_mid_call", {"die_mid_call": True}, 1, True),
    ("die_before_effect", {"die_mid_call": True, "die_before_effect": True}, 1, False),
]
#: (name, knobs, how many fetches fail)
FETCH_FAULTS: list[tuple[str, dict[str, Any], int]] = [
    ("fail_next", {"fail_next": 2}, 2),
    ("delay", {"delay": SLOW}, 1),
    ("accept_then_fail", {"accept_then_fail": True}, 1),
    ("die_mid_call", {"die_mid_call": True}, 1),
]


@dataclass
class Rail:
    """One payment rail: its emulator's knobs and how to drive it from outside."""

    name: str
    stack: Stack
    faults: Faults
    create_op: str
    fetch_op: str

    def processor_invoices(self) -> set[str]:
        raise NotImplementedError

    async def pay(self, order: dict[str, Any]) -> None:
        """Pay the invoice in full (and confirm it) at the processor, its notifications
        dropped: the processor shows it settled, SatShare has not been told."""
        raise NotImplementedError

    async def notify(self, order: dict[str, Any]) -> int | None:
        """Have the processor send the notification that claims settlement; the status
        SatShare answered."""
        raise NotImplementedError

    async def buy(self) -> dict[str, Any]:
        user = await create_user(self.stack.client, "buyer")
        response = await _subscribe(self.stack, user["user_id"])
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        assert data["invoice"]["provider"] == self.name
        return data


@dataclass
class BTCPayRail(Rail):
    sim: BTCPaySim

    def processor_invoices(self) -> set[str]:
        return set(self.sim.emulator.invoices)

    async def pay(self, order: dict[str, Any]) -> None:
        self.sim.emulator.drop_webhooks = True
        await self.sim.pay(order["invoice"]["provider_invoice_id"])  # Lightning: settled at once
        self.sim.emulator.drop_webhooks = False

    async def notify(self, order: dict[str, Any]) -> int | None:
        emulator = self.sim.emulator
        settled = next(
            d
            for d in emulator.deliveries
            if d.event["type"] == "InvoiceSettled"
            and d.event["invoiceId"] == order["invoice"]["provider_invoice_id"]
        )
        delivery = emulator.redeliver(settled)  # as BTCPay redelivers: a new delivery id
        await emulator.wait_idle()
        return delivery.http_code


@dataclass
class LNbitsRail(Rail):
    emulator: lnbits_sim.LNbitsEmulator
    server: RunningServer

    def processor_invoices(self) -> set[str]:
        return set(self.emulator.payments)

    async def pay(self, order: dict[str, Any]) -> None:
        self.emulator.drop_webhooks = True
        self.emulator.settle(order["invoice"]["provider_invoice_id"])
        self.emulator.drop_webhooks = False

    async def notify(self, order: dict[str, Any]) -> int | None:
        payment = self.emulator.payments[order["invoice"]["provider_invoice_id"]]
        return await self.emulator.send_webhook(payment)


@dataclass
class BitPayRail(Rail):
    emulator: bitpay_sim.BitPayEmulator
    server: RunningServer

    def processor_invoices(self) -> set[str]:
        return set(self.emulator.invoices)

    async def pay(self, order: dict[str, Any]) -> None:
        invoice = self.emulator.invoices[order["invoice"]["provider_invoice_id"]]
        self.emulator.drop_webhooks = True
        self.emulator.pay(invoice)
        self.emulator.transition(invoice, "confirmed")
        self.emulator.drop_webhooks = False

    async def notify(self, order: dict[str, Any]) -> int | None:
        invoice = self.emulator.invoices[order["invoice"]["provider_invoice_id"]]
        return await self.emulator.notify(invoice, "confirmed")


@dataclass
class OnchainRail(Rail):
    emulator: esplora_sim.EsploraEmulator
    server: RunningServer

    def processor_invoices(self) -> set[str]:
        raise AssertionError("the on-chain rail has no processor: addresses are derived here")

    async def pay(self, order: dict[str, Any]) -> None:
        self.emulator.broadcast([(order["invoice"]["address"], PRICE)])
        self.emulator.mine(1)  # onchain.min_confirmations: 1

    async def notify(self, order: dict[str, Any]) -> int | None:
        raise AssertionError("nothing notifies the on-chain rail: the reconciler polls")


@pytest.fixture
async def rail(
    request: pytest.FixtureRequest, database_url: str, btcpay: BTCPaySim
) -> AsyncIterator[Rail]:
    name: str = request.param
    server: RunningServer | None = None
    closing: Any = None
    built: Rail
    if name == "btcpay":
        stack = await open_stack(database_url, btcpay)
        # btcpay.timeout_seconds, which open_stack's own btcpay argument leaves no room for.
        quick = BTCPayProvider(
            base_url=btcpay.url,
            api_key=BTCPAY_KEY,
            store_id=STORE_ID,
            webhook_secret=WEBHOOK_SECRET,
            timeout_seconds=TIMEOUT,
        )
        stack.container.payments.providers["btcpay"] = quick  # type: ignore[index]
        closing = quick.aclose
        for hook in btcpay.emulator.webhooks.values():
            hook.automatic_redelivery = False  # each test says when a delivery is repeated
        built = BTCPayRail(
            name, stack, btcpay.emulator.faults, "create_invoice", "fetch_invoice", btcpay
        )
    elif name == "lnbits":
        wallet = lnbits_sim.LNbitsEmulator(invoice_key=LNBITS_INVOICE_KEY, admin_key="unused-key")
        server, closing = await start_server(lnbits_sim.build_app(wallet)), wallet.aclose
        stack = await open_stack(
            database_url,
            btcpay,
            lnbits={
                "url": server.url,
                "invoice_key": LNBITS_INVOICE_KEY,
                "timeout_seconds": TIMEOUT,
            },
            payments={"default_provider": "lnbits"},
        )
        built = LNbitsRail(
            name, stack, wallet.faults, "create_invoice", "fetch_payment", wallet, server
        )
    elif name == "bitpay":
        custodian = bitpay_sim.BitPayEmulator(token=BITPAY_TOKEN)
        server, closing = await start_server(bitpay_sim.build_app(custodian)), custodian.aclose
        custodian.base_url = server.url
        stack = await open_stack(
            database_url,
            btcpay,
            bitpay={"url": server.url, "token": BITPAY_TOKEN, "timeout_seconds": TIMEOUT},
            payments={"default_provider": "bitpay"},
        )
        built = BitPayRail(
            name, stack, custodian.faults, "create_invoice", "fetch_invoice", custodian, server
        )
    else:
        chain = esplora_sim.EsploraEmulator()
        server = await start_server(esplora_sim.build_app(chain))
        stack = await open_stack(
            database_url,
            btcpay,
            onchain={
                "xpub": REGTEST_TPUB,
                "network": "regtest",
                "esplora_url": server.url,
                "min_confirmations": 1,
                "timeout_seconds": TIMEOUT,
            },
            payments={"default_provider": "onchain"},
        )
        built = OnchainRail(name, stack, chain.faults, "", "fetch", chain, server)
    yield built
    await built.faults.wait_idle()
    await close_stack(stack)
    if server is not None:
        await server.stop()
    if closing is not None:
        await closing()


async def _subscribe(stack: Stack, user_id: int) -> httpx.Response:
    return await stack.client.post(
        "/api/v1/subscriptions", json={"user_id": user_id, "subscription_type": "monthly"}
    )


async def _payments(stack: Stack) -> int:
    async with stack.db.reading() as session:
        return int((await session.execute(select(func.count()).select_from(Payment))).scalar_one())


async def _sales(stack: Stack) -> int:
    """Ledger entries written (one per settled sale here)."""
    listed = await stack.client.get("/api/v1/transactions")
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


async def _assert_settled_once(rail: Rail, order: dict[str, Any], settled_before: int) -> None:
    assert await invoice_status(rail.stack.client, order["subscription_id"]) == "settled"
    assert await _payments(rail.stack) == settled_before + 1
    assert await _sales(rail.stack) == settled_before + 1
    report = await flows.reconcile(rail.stack.container.payments)
    assert "settled" not in report.outcomes, report.outcomes
    assert await _payments(rail.stack) == settled_before + 1


async def _assert_not_settled(rail: Rail, order: dict[str, Any], settled_before: int) -> None:
    assert await invoice_status(rail.stack.client, order["subscription_id"]) != "settled"
    assert await _payments(rail.stack) == settled_before
    assert await _sales(rail.stack) == settled_before


@pytest.mark.parametrize("rail", ["btcpay", "lnbits", "bitpay"], indirect=True)
async def test_a_failed_invoice_create_writes_nothing_and_a_retry_works(rail: Rail) -> None:
    stack = rail.stack
    user = (await create_user(stack.client, "buyer"))["user_id"]
    for fault, knobs, failures, done_anyway in CREATE_FAULTS:
        before = await stack.counts()
        at_processor = rail.processor_invoices()
        rail.faults.update({rail.create_op: knobs})
        for attempt in range(failures):
            problem = assert_problem(await _subscribe(stack, user), 502)
            assert f"could not create the invoice at {rail.name}" in problem["detail"], (
                fault,
                attempt,
            )
        await rail.faults.wait_idle()  # a slow processor finishes what it was asked
        rail.faults.clear()
        orphans = rail.processor_invoices() - at_processor
        assert len(orphans) == (1 if done_anyway else 0), fault
        assert await stack.counts() == before, f"{fault}: something was written"
        retry = await _subscribe(stack, user)
        assert retry.status_code == 201, (fault, retry.text)
        made = retry.json()["invoice"]["provider_invoice_id"]
        assert made in rail.processor_invoices() and made not in orphans, fault


@pytest.mark.parametrize("rail", ["onchain"], indirect=True)
async def test_an_onchain_invoice_needs_no_esplora_call(rail: Rail) -> None:
    """The watch-only rail derives its address here: Esplora failing cannot fail a sale."""
    rail.faults.update({"fetch": {"fail_next": 5}})
    order = await rail.buy()
    assert order["invoice"]["address"].startswith("bcrt1q")
    assert rail.faults.fetch.fail_next == 5  # nothing was asked of Esplora


async def _notifications_under_fetch_faults(rail: Rail) -> None:
    """A settlement notification whose re-fetch fails is not acknowledged and settles
    nothing; the first one that can re-fetch settles once; a repeat changes nothing."""
    for fault, knobs, failures in FETCH_FAULTS:
        settled_before = await _payments(rail.stack)
        order = await rail.buy()
        await rail.pay(order)
        rail.faults.update({rail.fetch_op: knobs})
        for attempt in range(failures):
            assert await rail.notify(order) == 502, (fault, attempt)
            await _assert_not_settled(rail, order, settled_before)
        await rail.faults.wait_idle()
        rail.faults.clear()
        assert await rail.notify(order) == 200, fault
        await _assert_settled_once(rail, order, settled_before)
        assert await rail.notify(order) == 200, fault  # a repeat: acknowledged, nothing more
        assert await _payments(rail.stack) == settled_before + 1


async def _reconciler_under_fetch_faults(rail: Rail) -> None:
    """With the notifications dropped, the reconciler settles nothing while the re-fetch
    fails, then exactly once."""
    payments = rail.stack.container.payments
    for fault, knobs, failures in FETCH_FAULTS:
        settled_before = await _payments(rail.stack)
        order = await rail.buy()
        await rail.pay(order)  # nobody tells SatShare
        await _assert_not_settled(rail, order, settled_before)
        rail.faults.update({rail.fetch_op: knobs})
        for attempt in range(failures):
            report = await flows.reconcile(payments)
            assert len(report.errors) == 1 and not report.outcomes, (fault, attempt, report)
            await _assert_not_settled(rail, order, settled_before)
        await rail.faults.wait_idle()
        rail.faults.clear()
        report = await flows.reconcile(payments)
        assert report.outcomes == {"settled": 1}, (fault, report)
        await _assert_settled_once(rail, order, settled_before)


@pytest.mark.parametrize("rail", ["btcpay", "lnbits", "bitpay"], indirect=True)
async def test_a_failing_refetch_settles_nothing_then_exactly_once(rail: Rail) -> None:
    await _notifications_under_fetch_faults(rail)
    await _reconciler_under_fetch_faults(rail)


@pytest.mark.parametrize("rail", ["onchain"], indirect=True)
async def test_the_onchain_watcher_settles_once_whatever_esplora_does(rail: Rail) -> None:
    await _reconciler_under_fetch_faults(rail)  # nothing notifies this rail: it is polled


async def test_btcpay_redelivers_a_refused_webhook_until_it_settles_once(
    stack: Stack, btcpay: BTCPaySim
) -> None:
    """End to end, with BTCPay's own automatic redelivery: the first re-fetches are refused,
    so those deliveries are answered 502 and redelivered; the invoice settles once."""
    user = await create_user(stack.client, "buyer")
    order = (await _subscribe(stack, user["user_id"])).json()
    invoice_id = order["invoice"]["provider_invoice_id"]
    btcpay.emulator.faults.fetch_invoice.fail_next = 2
    await btcpay.pay(invoice_id)

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    await btcpay.emulator.wait_idle()
    mine = [d for d in btcpay.emulator.deliveries if d.event["invoiceId"] == invoice_id]
    assert [d.http_code for d in mine].count(502) == 2
    answered = {d.event["type"] for d in mine if d.http_code == 200}
    assert answered == {d.event["type"] for d in mine}  # every event acknowledged in the end
    assert await _payments(stack) == 1
    assert await _sales(stack) == 1
