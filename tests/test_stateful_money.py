"""Money safety under faults (#8): a Hypothesis state machine drives the real SatShare (its
HTTP API, its payment and payout flows, a real database) and the BTCPay emulator over real
HTTP through any sequence of purchases, payments (Lightning, on-chain, late), webhooks
(duplicated, redelivered, reordered, arriving while BTCPay is down), expiries, invoices
BTCPay changes its mind about, reconciler runs, refunds, payouts (slow, refused, answer lost
or cut, paid later or cancelled by BTCPay, released by an admin) and crashes, and after
every step checks the money against the database, the API, BTCPay and a plain model of what
should have happened (tests/statekit.py). What it found is kept below as a regression test.

Time is a FrozenClock the machine moves by hand ("time passes"), so what the reconcilers
may look at is decided by the steps, never by how fast this machine runs. When a step breaks
an invariant, Hypothesis prints the shortest sequence of steps it found and the blob that
replays it (@reproduce_failure)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import shutil
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from satshare.aftercommit import NoListener
from satshare.clock import FrozenClock
from satshare.ledger import accounts
from satshare.notifications.messages import PaymentInvalidated
from satshare.notifications.models import OutboxMessage
from satshare.payments import flows as payment_flows
from satshare.payments import repository as payments_repo
from satshare.payouts import flows as payout_flows
from satshare.payouts import service as payout_service
from satshare.providers.btcpay import INVOICE_EVENTS
from satshare.sim.btcpay import BTCPayEmulator, build_app
from satshare.sim.lightning import RegtestWallet
from tests.conftest import (
    BTCPAY_KEY,
    PG_URL,
    PLANS,
    STORE_ID,
    WEBHOOK_SECRET,
    BTCPaySim,
    Stack,
    close_stack,
    open_stack,
    truncate_all,
)
from tests.helpers import buy, create_user, signed, wait_until
from tests.servers import start_server
from tests.statekit import (
    MIN_PAYOUT,
    OPEN_PAYOUTS,
    Expected,
    Model,
    ModelInvoice,
    ModelPayout,
    Snapshot,
    btcpay_payouts,
    read_snapshot,
)

T = TypeVar("T")
WEBHOOK = "/api/v1/webhooks/btcpay"
PRICES = {str(plan["id"]): int(plan["price_sats"]) for plan in PLANS}
#: Invoice events, plus two SatShare must acknowledge and ignore.
EVENT_TYPES = (*sorted(INVOICE_EVENTS), "InvoiceCreated", "PayoutCreated")
MAX_USERS, MAX_INVOICES = 6, 9
#: payouts.timeout_seconds, and a create that BTCPay finishes only after it.
PAYOUT_TIMEOUT, SLOW_CREATE = 2.0, 2.2
#: Longer than every wait in play: a claim's lifetime (30 s), the send grace (timeout +
#: 30 s), the longest payout re-check (payouts.recheck_max_seconds: 600 s) and the re-fetch
#: interval of expired invoices.
TIME_PASSES = timedelta(minutes=11)
#: The emulator's knobs (sim/faults.py) for each fault of statekit.PAYOUT_FAULTS.
FAULT_KNOBS: dict[str, dict[str, Any]] = {
    "slow": {"delay": SLOW_CREATE},
    "refused": {"fail_next": 1},
    "answer_lost": {"accept_then_fail": True},
    "cut_after": {"die_mid_call": True},
    "cut_before": {"die_mid_call": True, "die_before_effect": True},
}
PROCESSORS = st.sampled_from(["instant", "manual"])  # BTCPay's payout processor
NO_FAULT = {
    "delay": 0,
    "fail_next": 0,
    "accept_then_fail": False,
    "die_mid_call": False,
    "die_before_effect": False,
}


@dataclass
class Where:
    """Where each run's database comes from: a migrated SQLite file copied per run, or the
    PostgreSQL test database emptied per run."""

    template: str
    directory: Path
    runs: itertools.count[int]


class MoneyMachine(RuleBasedStateMachine):
    where: ClassVar[Where | None] = None

    def __init__(self) -> None:
        super().__init__()
        assert self.where is not None, "run it through test_money_under_faults"
        # One event loop for the whole run: the stack, the emulator and every step live on it.
        self.loop = asyncio.new_event_loop()
        self.clock = FrozenClock()
        self.model = Model()
        self.wallet = RegtestWallet()
        self.deliveries = itertools.count(1)
        self.version = 0
        self.cached: tuple[int, Snapshot] | None = None
        self.stack: Stack | None = None
        self.anon: httpx.AsyncClient | None = None
        self.btcpay: BTCPaySim | None = None
        self.btcpay_client: httpx.AsyncClient | None = None
        try:
            self.database_url = self.run(self._fresh_database(self.where))
            self.btcpay = self.run(self._start_btcpay())
            self.run(self._open())
        except BaseException:
            self.teardown()
            raise

    # -- plumbing ---------------------------------------------------------------------------

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def act(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a step's work; the invariants read the system afresh after it."""
        self.version += 1
        return self.run(work)

    @property
    def sim(self) -> BTCPaySim:
        assert self.btcpay is not None
        return self.btcpay

    @property
    def greenfield(self) -> httpx.AsyncClient:
        """A client to BTCPay (the emulator): its API and its control API (/_sim)."""
        assert self.btcpay_client is not None
        return self.btcpay_client

    async def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.greenfield.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    @property
    def live(self) -> Stack:
        assert self.stack is not None
        return self.stack

    async def _fresh_database(self, where: Where) -> str:
        if PG_URL:
            await truncate_all(where.template)
            return where.template
        target = where.directory / f"money-{next(where.runs)}.db"
        shutil.copyfile(where.template, target)
        return f"sqlite+aiosqlite:///{target}"

    async def _start_btcpay(self) -> BTCPaySim:
        emulator = BTCPayEmulator(api_key=BTCPAY_KEY, store_id=STORE_ID, retry_delays=(0.05,))
        server = await start_server(build_app(emulator))
        emulator.base_url = server.url
        sim = BTCPaySim(emulator=emulator, server=server)
        self.btcpay_client = httpx.AsyncClient(base_url=server.url, timeout=30)
        # The machine alone decides which notifications arrive, and when.
        response = await self.btcpay_client.post("/_sim/settings", json={"drop_webhooks": True})
        response.raise_for_status()
        return sim

    async def _open(self) -> None:
        stack = await open_stack(
            self.database_url,
            self.sim,
            clock=self.clock,
            payouts={
                "provider": "btcpay",
                "network": "regtest",
                "min_sats": MIN_PAYOUT,
                "auto_approve_max_sats": 10**9,
                "timeout_seconds": PAYOUT_TIMEOUT,
            },
        )
        # Expired invoices are re-fetched at every run, not every 5 minutes: the model says
        # what the reconciler decides, not when it gets round to each invoice.
        stack.container.payments.recheck_expired = timedelta(0)
        self.stack = stack
        self.anon = httpx.AsyncClient(base_url=stack.url, timeout=30)

    async def _close(self) -> None:
        if self.anon is not None:
            await self.anon.aclose()
            self.anon = None
        if self.stack is not None:
            stack, self.stack = self.stack, None
            await close_stack(stack, verify=False)  # the invariants verified it after each step

    def teardown(self) -> None:
        try:
            self.run(self._close())
            if self.btcpay_client is not None:
                self.run(self.btcpay_client.aclose())
            if self.btcpay is not None:
                self.run(self.btcpay.server.stop())
                self.run(self.btcpay.emulator.aclose())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def snapshot(self) -> Snapshot:
        if self.cached is None or self.cached[0] != self.version:
            assert self.btcpay_client is not None
            users = sorted(self.model.users)
            # One user's balance through the HTTP API per step, in turn: each API call writes
            # its key's last use, and all users at every step would dominate the run.
            api_user = users[self.version % len(users)] if users else None
            snapshot = read_snapshot(self.live, self.btcpay_client, api_user)
            self.cached = (self.version, self.run(snapshot))
        return self.cached[1]

    def _labels(self, wanted: Callable[[ModelInvoice], bool]) -> list[str]:
        return [label for label, inv in self.model.invoices.items() if wanted(inv)]

    def _draw_invoice(
        self, data: st.DataObject, wanted: Callable[[ModelInvoice], bool] = lambda _: True
    ) -> ModelInvoice:
        label = data.draw(st.sampled_from(self._labels(wanted)), label="invoice")
        return self.model.invoices[label]

    def _can_withdraw(self) -> list[int]:
        return [u for u in sorted(self.model.users) if self.model.available(u) >= MIN_PAYOUT]

    async def _api_down(self, down: bool) -> None:
        await self.control("POST", "/_sim/settings", json={"api_down": down})

    # -- buyers, invoices, BTCPay -----------------------------------------------------------

    @precondition(lambda self: len(self.model.users) < MAX_USERS)
    @rule(data=st.data(), referred=st.booleans())
    def create_user(self, data: st.DataObject, referred: bool) -> None:
        referrer = None
        if referred and self.model.users:
            referrer = data.draw(st.sampled_from(sorted(self.model.users)), label="referrer")
        self.act(self._create_user(referrer))

    async def _create_user(self, referrer: int | None) -> int:
        client = self.live.client
        fields = {} if referrer is None else {"referral_id": referrer}
        user = await create_user(client, f"user{len(self.model.users) + 1}", **fields)
        assert user["referrer_id"] == referrer
        self.model.users[user["user_id"]] = referrer
        note(f"user {user['user_id']} referred by {referrer}")
        return int(user["user_id"])

    @precondition(lambda self: self.model.users and len(self.model.invoices) < MAX_INVOICES)
    @rule(data=st.data(), plan=st.sampled_from(sorted(PRICES)))
    def buy(self, data: st.DataObject, plan: str) -> None:
        buyer = data.draw(st.sampled_from(sorted(self.model.users)), label="buyer")
        self.act(self._buy(buyer, plan))

    async def _buy(self, buyer: int, plan: str) -> None:
        order = await buy(self.live.client, buyer, plan)
        invoice = order["invoice"]
        assert (invoice["amount_sats"], invoice["status"]) == (PRICES[plan], "new")
        label = f"inv{len(self.model.invoices) + 1}"
        self.model.invoices[label] = ModelInvoice(
            label=label,
            id=invoice["id"],
            provider_id=invoice["provider_invoice_id"],
            buyer=buyer,
            referrer=self.model.users[buyer],
            amount=PRICES[plan],
        )
        note(f"{label} = {invoice['id']} ({plan}, buyer {buyer})")

    @initialize()
    def a_small_world(self) -> None:
        """A buyer of the owner's, an affiliate, their buyer, and that buyer's own buyer (who
        earns the middle one a commission, never the affiliate above), each with an
        invoice; the last one's yearly plan is paid, so there is money to withdraw."""
        self.act(self._world())

    async def _world(self) -> None:
        loner = await self._create_user(None)
        affiliate = await self._create_user(None)
        middle = await self._create_user(affiliate)
        last = await self._create_user(middle)
        for buyer, plan in ((loner, "monthly"), (middle, "monthly"), (last, "yearly")):
            await self._buy(buyer, plan)
        paid = self.model.invoices["inv3"]
        await self._pay(paid, "BTC-LN")
        paid.processor.pay("BTC-LN")
        bodies = [("InvoiceSettled", json.dumps(self._event(paid, "InvoiceSettled")).encode())]
        await self._deliver_all(paid, bodies, processor_down=False)
        assert paid.status == "settled"

    async def _pay(self, inv: ModelInvoice, method: str) -> Any:
        path = f"/_sim/invoices/{inv.provider_id}/pay"
        return await self.control("POST", path, json={"method": method})

    @precondition(lambda self: self._labels(lambda i: i.processor.status == "New"))
    @rule(data=st.data(), method=st.sampled_from(["BTC-LN", "BTC-CHAIN"]))
    def pay(self, data: st.DataObject, method: str) -> None:
        inv = self._draw_invoice(data, lambda i: i.processor.status == "New")
        answer = self.act(self._pay(inv, method))
        inv.processor.pay(method)
        assert answer["invoice"]["status"] == inv.processor.status

    @precondition(lambda self: self._labels(lambda i: i.processor.status == "New"))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        inv = self._draw_invoice(data, lambda i: i.processor.status == "New")
        path = f"/_sim/invoices/{inv.provider_id}/expire"
        answer = self.act(self.control("POST", path))
        inv.processor.status = "Expired"
        assert answer["status"] == "Expired"

    @precondition(
        lambda self: self._labels(
            lambda i: i.processor.status == "Expired" and not i.processor.paid
        )
    )
    @rule(data=st.data(), method=st.sampled_from(["BTC-LN", "BTC-CHAIN"]))
    def pay_late(self, data: st.DataObject, method: str) -> None:
        """Paid after expiry, within the late-payment window."""
        inv = self._draw_invoice(
            data, lambda i: i.processor.status == "Expired" and not i.processor.paid
        )
        answer = self.act(self._pay(inv, method))
        inv.processor.pay(method)
        assert (answer["invoice"]["status"], answer["invoice"]["additionalStatus"]) == (
            "Expired",
            "PaidLate",
        )

    def _changes(self) -> list[tuple[str, str]]:
        """What BTCPay may still do to each invoice, as (invoice, how)."""
        changes = []
        for label, inv in self.model.invoices.items():
            if inv.processor.markable:
                changes.append((label, "marked settled"))
                if inv.status != "refunded":  # known_refund_bug
                    changes.append((label, "marked invalid"))
            if (
                inv.processor.paid
                and inv.processor.status != "Invalid"
                and inv.status != "refunded"
            ):
                changes.append((label, "payment invalidated"))
        return changes

    @precondition(lambda self: self._changes())
    @rule(data=st.data())
    def btcpay_changes_its_mind(self, data: st.DataObject) -> None:
        """The merchant marks an invoice settled or invalid by hand in BTCPay, or a payment
        disappears (double spend, reorg) and BTCPay calls the invoice invalid."""
        label, how = data.draw(st.sampled_from(self._changes()), label="change")
        inv = self.model.invoices[label]
        if how == "payment invalidated":
            answer = self.act(self.control("POST", f"/_sim/invoices/{inv.provider_id}/invalidate"))
            inv.processor.invalidate_payment()
        else:
            status = "Settled" if how == "marked settled" else "Invalid"
            answer = self.act(
                self.control(
                    "POST",
                    f"/api/v1/stores/{STORE_ID}/invoices/{inv.provider_id}/status",
                    json={"status": status},
                    headers={"Authorization": f"token {BTCPAY_KEY}"},
                )
            )
            inv.processor.mark(status)
        assert (answer["status"], answer["additionalStatus"]) == (
            inv.processor.status,
            inv.processor.additional,
        )

    @precondition(lambda self: self._labels(lambda i: i.processor.unconfirmed))
    @rule()
    def mine_a_block(self) -> None:
        self.act(self.control("POST", "/_sim/mine", json={"blocks": 1}))
        for inv in self.model.invoices.values():
            inv.processor.mine()

    # -- notifications and the invoice reconciler -------------------------------------------

    def _event(self, inv: ModelInvoice, event_type: str) -> dict[str, Any]:
        delivery = f"machine-{next(self.deliveries)}"
        return {
            "deliveryId": delivery,
            "webhookId": "wh",
            "originalDeliveryId": delivery,
            "isRedelivery": False,
            "type": event_type,
            "timestamp": int(time.time()),
            "storeId": STORE_ID,
            "invoiceId": inv.provider_id,
            "metadata": {},
        }

    @precondition(lambda self: self.model.invoices)
    @rule(
        data=st.data(),
        event_type=st.sampled_from(EVENT_TYPES),
        copies=st.sampled_from(["once", "same delivery twice", "then a redelivery"]),
        processor_down=st.sampled_from([False, False, True]),
    )
    def deliver(
        self, data: st.DataObject, event_type: str, copies: str, processor_down: bool
    ) -> None:
        """A signed notification, possibly repeated: the same delivery again, or BTCPay's
        redelivery with a new deliveryId. Any type may come after any other (reordering)."""
        inv = self._draw_invoice(data)
        first = self._event(inv, event_type)
        events = [first]
        if copies == "same delivery twice":
            events.append(first)
        elif copies == "then a redelivery":
            again = f"machine-{next(self.deliveries)}"
            events.append({**first, "deliveryId": again, "isRedelivery": True})
        bodies = [(e["type"], json.dumps(e).encode()) for e in events]
        self.act(self._deliver_all(inv, bodies, processor_down))

    @precondition(lambda self: self.model.invoices)
    @rule(data=st.data())
    def deliver_what_btcpay_emitted_newest_first(self, data: st.DataObject) -> None:
        """BTCPay's own notifications for an invoice (the emulator recorded them), in reverse:
        an older event type always arrives after a newer one."""
        inv = self._draw_invoice(data)
        self.act(self._deliver_emitted(inv))

    async def _deliver_emitted(self, inv: ModelInvoice) -> None:
        items = await self.control(
            "GET", "/_sim/deliveries", params={"invoice_id": inv.provider_id}
        )
        bodies = [(str(i["type"]), str(i["body"]).encode()) for i in reversed(items)][:6]
        await self._deliver_all(inv, bodies, processor_down=False)

    async def _deliver_all(
        self, inv: ModelInvoice, bodies: list[tuple[str, bytes]], processor_down: bool
    ) -> None:
        assert self.anon is not None
        if processor_down:
            await self._api_down(True)
        try:
            for event_type, body in bodies:
                expected = self.model.deliver(inv, event_type, processor_down)
                raw, headers = signed(WEBHOOK_SECRET, body)
                answer = await self.anon.post(WEBHOOK, content=raw, headers=headers)
                _check_answer(answer, expected, f"{event_type} for {inv.label}")
        finally:
            if processor_down:
                await self._api_down(False)

    @precondition(lambda self: self.model.invoices)
    @rule(processor_down=st.sampled_from([False, False, True]))
    def reconcile_invoices(self, processor_down: bool) -> None:
        self.act(self._reconcile_invoices(processor_down))

    async def _reconcile_invoices(self, processor_down: bool) -> None:
        ctx = self.live.container.payments
        if processor_down:
            watched = self._labels(lambda i: i.status in ("new", "processing", "expired"))
            await self._api_down(True)
            try:
                report = await payment_flows.reconcile(ctx)
            finally:
                await self._api_down(False)
            assert (report.checked, report.outcomes) == (0, {}), report.as_json()
            assert len(report.errors) == len(watched), report.as_json()
            return
        expected = self.model.reconcile_invoices()
        report = await payment_flows.reconcile(ctx)
        assert report.errors == [], report.as_json()
        assert report.outcomes == dict(expected), report.as_json()

    @precondition(lambda self: self._labels(lambda i: i.status == "settled"))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        # Not one BTCPay has invalidated since it settled: that is known_refund_bug.
        inv = self._draw_invoice(
            data, lambda i: not (i.status == "settled" and i.processor.status == "Invalid")
        )
        self.act(self._refund(inv))

    async def _refund(self, inv: ModelInvoice) -> None:
        answer = await self.live.client.post(
            f"/api/v1/invoices/{inv.id}/refund", json={"note": "paid back from the owner's wallet"}
        )
        if inv.status != "settled":
            assert answer.status_code == 409, (inv.status, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            return
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "refunded"
        inv.status = "refunded"

    # -- payouts ----------------------------------------------------------------------------

    @precondition(lambda self: self.model.users)
    @rule(
        data=st.data(),
        amount=st.sampled_from(["available", "a third", "more"]),
        processor=PROCESSORS,
    )
    def request_payout(self, data: st.DataObject, amount: str, processor: str) -> None:
        user = data.draw(st.sampled_from(sorted(self.model.users)), label="affiliate")
        available = self.model.available(user)
        sats = max(
            1, {"available": available, "a third": available // 3, "more": available + 1}[amount]
        )
        self.act(self._request_payout(user, sats, processor))

    async def _payout_processor(self, processor: str) -> None:
        """instant: BTCPay pays a payout at once; manual: it waits (then completes or
        cancels it when the machine says so)."""
        if processor != self.model.knobs.processor:
            settings = {"processor": processor}
            await self.control("POST", "/_sim/payouts/settings", json=settings)
            self.model.knobs.processor = processor

    async def _accept_terms(self, user: int) -> None:
        """Anyone whose buyers paid is an affiliate; the terms come before a first payout."""
        if user not in self.model.accepted_terms:
            accepted = await self.live.client.post(
                f"/api/v1/affiliates/{user}/terms-acceptance", json={"version": "1"}
            )
            assert accepted.status_code == 201, accepted.text
            self.model.accepted_terms.add(user)

    async def _request_payout(self, user: int, sats: int, processor: str) -> None:
        await self._payout_processor(processor)
        await self._accept_terms(user)
        available = self.model.available(user)
        answer = await self.live.client.post(
            "/api/v1/payouts",
            json={"user_id": user, "amount_sats": sats, "destination": self.wallet.next_address()},
        )
        if sats < MIN_PAYOUT or sats > available:
            assert answer.status_code == 422, answer.text
            refusal = "below-minimum" if sats < MIN_PAYOUT else "insufficient-balance"
            assert answer.json()["type"] == f"/problems/{refusal}"
            return
        assert answer.status_code == 201, answer.text
        await self._payout_requested(answer.json(), user, sats)

    async def _payout_requested(self, created: dict[str, Any], user: int, sats: int) -> None:
        assert created["status"] == "approved"  # under auto_approve_max_sats
        payout = ModelPayout(id=created["payout_id"], user=user, amount=sats)
        self.model.payouts[payout.id] = payout
        # The request woke the sender; let it finish, then the runner goes once more.
        await self.live.container.payout_runner.flush()
        self.model.run_payouts()
        note(f"payout {payout.id}: {sats} sats for user {user} -> {payout.status}")

    @precondition(lambda self: self._can_withdraw())
    @rule(data=st.data(), fault=st.sampled_from(sorted(FAULT_KNOBS)), processor=PROCESSORS)
    def payout_with_a_provider_fault(self, data: st.DataObject, fault: str, processor: str) -> None:
        """BTCPay's payout create is slower than our timeout (it finishes anyway), refused
        (503), made but answered 500, made but its answer cut, or cut before anything is
        made. None of them may release the money or pay it twice."""
        user = data.draw(st.sampled_from(self._can_withdraw()), label="affiliate")
        self.act(self._faulty_payout(user, fault, processor))

    async def _faulty_payout(self, user: int, fault: str, processor: str) -> None:
        await self._payout_processor(processor)
        knobs = {"faults": {"create_payout": FAULT_KNOBS[fault]}}
        await self.control("POST", "/_sim/payouts/settings", json=knobs)
        self.model.knobs.fault = fault
        try:
            await self._accept_terms(user)
            sats = max(MIN_PAYOUT, self.model.available(user) // 3)
            answer = await self.live.client.post(
                "/api/v1/payouts",
                json={
                    "user_id": user,
                    "amount_sats": sats,
                    "destination": self.wallet.next_address(),
                },
            )
            assert answer.status_code == 201, answer.text
            await self._payout_requested(answer.json(), user, sats)
            if fault == "slow":
                await self._slow_creates_landed()
        finally:
            knobs = {"faults": {"create_payout": NO_FAULT}}
            await self.control("POST", "/_sim/payouts/settings", json=knobs)
            self.model.knobs.fault = None

    async def _slow_creates_landed(self) -> None:
        """BTCPay finishes the creates we stopped waiting for (as a slow server would)."""
        made = {p.key for p in self.model.payouts.values() if p.at_provider is not None}

        async def landed() -> bool:
            listed = await btcpay_payouts(self.greenfield)
            return made <= {p["metadata"].get("satshareIdempotencyKey") for p in listed}

        await wait_until(landed, timeout=10 + SLOW_CREATE, interval=0.1)

    @precondition(
        lambda self: any(p.at_provider == "AwaitingPayment" for p in self.model.payouts.values())
    )
    @rule(data=st.data(), outcome=st.sampled_from(["complete", "cancel"]))
    def btcpay_finishes_a_payout(self, data: st.DataObject, outcome: str) -> None:
        waiting = [p.id for p in self.model.payouts.values() if p.at_provider == "AwaitingPayment"]
        payout = self.model.payouts[data.draw(st.sampled_from(sorted(waiting)), label="payout")]
        self.act(self._btcpay_finishes(payout, outcome))

    async def _btcpay_finishes(self, payout: ModelPayout, outcome: str) -> None:
        listed = await btcpay_payouts(self.greenfield)
        (ref,) = [
            p["id"] for p in listed if p["metadata"].get("satshareIdempotencyKey") == payout.key
        ]
        answer = await self.control("POST", f"/_sim/payouts/{ref}/{outcome}")
        payout.at_provider = answer["state"]
        assert payout.at_provider == ("Completed" if outcome == "complete" else "Cancelled")

    @precondition(lambda self: self.model.payouts)
    @rule(which=st.sampled_from(["run_once", "reconcile"]))
    def run_payouts(self, which: str) -> None:
        self.act(self._run_payouts(which))

    async def _run_payouts(self, which: str) -> None:
        ctx = self.live.container.payouts
        if which == "run_once":
            expected = self.model.run_payouts()  # sent, plus decided by BTCPay's word
            done = await payout_flows.run_once(ctx)
        else:
            expected = self.model.reconcile_payouts()
            done = await payout_flows.reconcile(ctx)
        assert done == expected, (which, done, expected)

    @precondition(lambda self: any(p.status == "unknown" for p in self.model.payouts.values()))
    @rule(data=st.data())
    def admin_marks_a_payout_failed(self, data: st.DataObject) -> None:
        payout = self.model.payouts[
            data.draw(st.sampled_from(sorted(self.model.payouts)), label="payout")
        ]
        self.act(self._mark_failed(payout))

    async def _mark_failed(self, payout: ModelPayout) -> None:
        answer = await self.live.client.post(
            f"/api/v1/payouts/{payout.id}/mark-failed",
            json={"reason": "BTCPay lists no payout with its idempotency key"},
        )
        if payout.status != "unknown":
            assert answer.status_code == 409, (payout.status, answer.text)
            return
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "failed"
        payout.status, payout.by_admin, payout.watched, payout.due = "failed", True, True, False

    # -- time and crashes -------------------------------------------------------------------

    def _waits_on_time(self) -> bool:
        """Something only time unblocks: a payout check not due yet, a claim not stale yet."""
        payouts = any(
            p.status in ("sending", "unknown") or p.watched for p in self.model.payouts.values()
        )
        era = self.model.era
        claims = any(row == era for i in self.model.invoices.values() for row in i.inbox.values())
        return payouts or claims

    @precondition(lambda self: self._waits_on_time())
    @rule()
    def time_passes(self) -> None:
        """Minutes go by, and with them the periodic jobs: send_payouts (which also asks
        BTCPay about every payout whose fate is open) and reconcile_invoices."""
        self.clock.advance(TIME_PASSES)
        self.model.time_passes()
        self.act(self._periodic_jobs())

    async def _periodic_jobs(self) -> None:
        await self._run_payouts("run_once")
        await self._reconcile_invoices(processor_down=False)

    def _payable_unsold(self) -> list[str]:
        return self._labels(lambda i: not i.sold and i.processor.observe(i.amount).settle)

    @rule(
        data=st.data(),
        dangling_claim=st.booleans(),
        payout=st.sampled_from(["none", "approved", "claimed", "sent"]),
        unsealed=st.booleans(),
    )
    def crash_and_recover(
        self, data: st.DataObject, dangling_claim: bool, payout: str, unsealed: bool
    ) -> None:
        """The process is killed: maybe holding a webhook claim, maybe with a payout approved
        but never sent, claimed for sending but never sent, or sent with its answer lost,
        maybe right after committing a settlement the sealer never heard of. A new process
        starts on the same database; the reconcilers must heal it all."""
        claim = None
        if dangling_claim and self.model.invoices:
            claim = (
                self._draw_invoice(data),
                data.draw(st.sampled_from(sorted(INVOICE_EVENTS)), label="claimed event"),
            )
        withdrawer = None
        if payout != "none" and self._can_withdraw():
            withdrawer = data.draw(st.sampled_from(self._can_withdraw()), label="affiliate")
        settle = None
        payable = self._payable_unsold()
        if unsealed and payable:
            settle = self._draw_invoice(data, lambda i: i.label in payable)
        self.act(self._crash(claim, withdrawer, payout, settle))

    async def _crash(
        self,
        claim: tuple[ModelInvoice, str] | None,
        withdrawer: int | None,
        stage: str,
        settle: ModelInvoice | None,
    ) -> None:
        container = self.live.container
        now = self.clock.now()
        if claim is not None:
            inv, event_type = claim
            async with container.db.transaction() as session:
                new_row_id = await payments_repo.record_delivery(
                    session,
                    provider="btcpay",
                    provider_invoice_id=inv.provider_id,
                    event_type=event_type,
                    delivery_id="died-holding-it",
                    payload="{}",
                    now=now,
                )
            fresh = new_row_id is not None
            assert fresh == (event_type not in inv.inbox)
            if fresh:
                inv.inbox[event_type] = self.model.era
        if withdrawer is not None:
            await self._accept_terms(withdrawer)
            # Its wake-up calls die with the process: nothing sends it, nothing seals.
            ctx = dataclasses.replace(container.payouts, after_commit=NoListener())
            made = await payout_flows.request_payout(
                ctx,
                user_id=withdrawer,
                amount_sats=max(MIN_PAYOUT, self.model.available(withdrawer) // 3),
                destination=self.wallet.next_address(),
                requested_by="machine",
            )
            payout = ModelPayout(id=made.id, user=withdrawer, amount=made.amount_sats)
            self.model.payouts[payout.id] = payout
            if stage in ("claimed", "sent"):
                async with container.db.transaction() as session:
                    assert await payout_service.claim(session, made.id, now)
                payout.status = "sending"
            if stage == "sent":
                async with container.db.reading() as session:
                    order = payout_service.order_of(await payout_service.require(session, made.id))
                assert ctx.provider is not None
                await ctx.provider.send(order)  # BTCPay makes it; the answer is lost
                instant = self.model.knobs.processor == "instant"
                payout.at_provider = "Completed" if instant else "AwaitingPayment"
        if settle is not None:
            quiet = dataclasses.replace(container.payments, after_commit=NoListener())
            outcome = await payment_flows.refresh_invoice(quiet, settle.id)
            assert outcome.value == self.model.apply(settle) == "settled"
        await self._close()  # no flush: whatever was in flight stays as it was
        await self._open()

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def the_ledger_verifies(self) -> None:
        report = self.snapshot().report
        assert report.ok, report.problems
        assert (report.unsealed, report.unsealed_notes) == (0, 0)

    @invariant()
    def each_paid_invoice_is_settled_exactly_once(self) -> None:
        snap = self.snapshot()
        sales = [e for e in snap.entries if e.kind == "sale"]
        sales_per_invoice = _count(e.invoice_id for e in sales)
        payments_per_invoice = _count(invoice_id for invoice_id, _, _ in snap.payments)
        assert max(sales_per_invoice.values(), default=0) <= 1, sales_per_invoice
        assert max(payments_per_invoice.values(), default=0) <= 1, payments_per_invoice
        for inv in self.model.invoices.values():
            if inv.seen_paid:  # BTCPay showed it paid and SatShare has looked since
                assert inv.sold and snap.invoices[inv.id][0] in ("settled", "refunded"), inv
            sold = 1 if inv.sold else 0
            assert (sales_per_invoice.get(inv.id, 0), payments_per_invoice.get(inv.id, 0)) == (
                sold,
                sold,
            ), inv.label
        sale_of = {e.invoice_id: e.id for e in sales}
        for invoice_id, _, entry_id in snap.payments:
            assert sale_of[invoice_id] == entry_id

    @invariant()
    def admins_hear_of_each_settled_payment_btcpay_later_invalidates(self) -> None:
        alerted = sum(inv.alerted_invalid for inv in self.model.invoices.values())
        assert self.snapshot().invalidation_alerts == alerted

    @invariant()
    def invoices_and_refunds_match_the_model(self) -> None:
        snap = self.snapshot()
        assert set(snap.invoices) == {i.id for i in self.model.invoices.values()}
        late = {invoice_id: paid_late for invoice_id, paid_late, _ in snap.payments}
        reversed_ids = _count(e.reverses_entry_id for e in snap.entries if e.kind == "reversal")
        sale_of = {e.invoice_id: e.id for e in snap.entries if e.kind == "sale"}
        for inv in self.model.invoices.values():
            assert snap.invoices[inv.id][0] == inv.status, (inv.label, snap.invoices[inv.id])
            if inv.sold:
                assert late[inv.id] == inv.paid_late, inv.label
                refunds = reversed_ids.get(sale_of[inv.id], 0)
                assert refunds == (1 if inv.status == "refunded" else 0), inv.label
        assert max(reversed_ids.values(), default=0) <= 1

    @invariant()
    def each_sale_splits_its_gross_between_the_owner_and_the_direct_referrer(self) -> None:
        snap = self.snapshot()
        assert snap.referrers == self.model.users
        for entry in snap.entries:
            if entry.kind != "sale":
                continue
            assert entry.invoice_id is not None
            inv = self.model.by_id(entry.invoice_id)
            assert snap.referrers[inv.buyer] == inv.referrer
            commission = inv.commission
            expected = {accounts.clearing("btcpay"): inv.amount}
            expected[accounts.OWNER_REVENUE] = -(inv.amount - commission)
            if commission:
                assert inv.referrer is not None
                expected[accounts.affiliate_payable(inv.referrer)] = -commission
            assert entry.postings == expected, (inv.label, entry.postings)
            assert entry.gross_sats == inv.amount
            assert entry.affiliate_user_id == (inv.referrer if commission else None)

    @invariant()
    def balances_match_the_model(self) -> None:
        snap = self.snapshot()
        model = self.model
        for user in model.users:
            want = {
                "balance_sats": model.balance(user),
                "available_sats": model.available(user),
                "pending_sats": 0,
                "total_earned_sats": model.earned(user),
                "paid_out_sats": model.paid_out(user),
                "in_payouts_sats": model.held(user),
            }
            assert snap.balance_of(user) == want, (user, snap.balance_of(user), want)
            ledger = -snap.accounts.get(accounts.affiliate_payable(user), 0)
            assert ledger == model.balance(user), user
            # Below zero only when a refund clawed back a commission already paid out, or a
            # payout an admin released was paid after all.
            assert model.balance(user) >= 0 or model.clawed_back(user), user
        if snap.api_balance is not None:
            user, shown = snap.api_balance
            assert shown == snap.balance_of(user), (user, shown)  # and the API says so too

    @invariant()
    def each_payout_is_held_then_paid_or_released_once(self) -> None:
        snap = self.snapshot()
        model = self.model
        assert snap.payouts == {p.id: (p.status, p.user, p.amount) for p in model.payouts.values()}
        for p in model.payouts.values():

            def entries(step: str, payout_id: int = p.id) -> int:
                return len(snap.entries_keyed(f"payout:{payout_id}:{step}"))

            paid, released = p.status == "paid", p.status == "failed" or p.rehold
            assert entries("hold") == 1, p
            assert entries("paid") == (1 if paid else 0), p
            assert entries("release") == (1 if released else 0), p
            assert entries("rehold") == (1 if p.rehold else 0), p
        held = sum(p.amount for p in model.payouts.values() if p.status in OPEN_PAYOUTS)
        assert snap.accounts.get(accounts.PAYOUTS_IN_FLIGHT, 0) == -held
        received = sum(i.amount for i in model.invoices.values() if i.status == "settled")
        paid_out = sum(p.amount for p in model.payouts.values() if p.status == "paid")
        assert snap.accounts.get(accounts.clearing("btcpay"), 0) == received - paid_out

    @invariant()
    def btcpay_made_each_payout_at_most_once(self) -> None:
        snap = self.snapshot()
        keys = _count(p["metadata"].get("satshareIdempotencyKey") for p in snap.btcpay_payouts)
        assert max(keys.values(), default=0) <= 1, keys
        state = {
            p["metadata"].get("satshareIdempotencyKey"): p["state"] for p in snap.btcpay_payouts
        }
        for p in self.model.payouts.values():
            assert state.get(p.key) == p.at_provider, (p, state.get(p.key))

    @invariant()
    def a_payout_fails_only_on_the_providers_word_or_an_admins(self) -> None:
        snap = self.snapshot()
        state = {
            p["metadata"].get("satshareIdempotencyKey"): p["state"] for p in snap.btcpay_payouts
        }
        for payout_id, (status, _, _) in snap.payouts.items():
            if status == "failed":
                payout = self.model.payouts[payout_id]
                assert payout.by_admin or state.get(payout.key) == "Cancelled", payout


def _count(values: Any) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _check_answer(answer: httpx.Response, expected: Expected, what: str) -> None:
    assert answer.status_code == expected.status_code, (what, answer.status_code, answer.text)
    if expected.status_code == 200:
        assert answer.json()["status"] == expected.ack, (what, answer.text)
        return
    assert answer.headers["content-type"] == "application/problem+json", what
    if expected.status_code == 503:
        assert answer.json()["type"] == "/problems/retry-later", (what, answer.text)
        assert int(answer.headers["retry-after"]) > 0


SETTINGS = settings(
    max_examples=6,
    stateful_step_count=30,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


async def _deliver(stack: Stack, provider_invoice_id: str, event_type: str) -> dict[str, Any]:
    event = {
        "deliveryId": f"d-{event_type}",
        "webhookId": "wh",
        "originalDeliveryId": f"d-{event_type}",
        "isRedelivery": False,
        "type": event_type,
        "timestamp": int(time.time()),
        "storeId": STORE_ID,
        "invoiceId": provider_invoice_id,
        "metadata": {},
    }
    raw, headers = signed(WEBHOOK_SECRET, event)
    async with stack.anonymous() as anon:
        answer = await anon.post(WEBHOOK, content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    ack: dict[str, Any] = answer.json()
    return ack


async def test_a_refunded_payment_btcpay_later_invalidates_stays_refunded_and_alerts(
    stack: Stack,
) -> None:
    """Found by the machine's "BTCPay changes its mind" step: an on-chain sale settles, the
    owner refunds it, then the payment is double-spent (BTCPay: Invalid). The invoice stays
    refunded and the admins are told (it was an xfail until payments.service guarded sold
    invoices, refunded ones included)."""
    stack.btcpay.emulator.drop_webhooks = True
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    invoice_id, provider_id = order["invoice"]["id"], order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id, method="BTC-CHAIN", confirm_blocks=1)
    assert (await _deliver(stack, provider_id, "InvoiceSettled"))["status"] == "settled"
    refunded = await stack.client.post(f"/api/v1/invoices/{invoice_id}/refund", json={})
    assert refunded.status_code == 200, refunded.text
    await stack.btcpay.control("POST", f"/_sim/invoices/{provider_id}/invalidate")
    await _deliver(stack, provider_id, "InvoiceInvalid")
    async with stack.db.reading() as session:
        invoice = await payments_repo.get_invoice(session, invoice_id)
        alerts = await session.execute(
            select(func.count()).where(OutboxMessage.kind == PaymentInvalidated.kind)
        )
        assert invoice is not None
        assert (invoice.status, alerts.scalar_one()) == ("refunded", 1)


@pytest.mark.slow
def test_money_under_faults(migrated_template: str, tmp_path: Path) -> None:
    MoneyMachine.where = Where(migrated_template, tmp_path, itertools.count())
    try:
        run_state_machine_as_test(MoneyMachine, settings=SETTINGS)
    finally:
        MoneyMachine.where = None
