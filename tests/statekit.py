"""The model and the database snapshot behind tests/test_stateful_money.py.

The model is plain Python and deliberately simple: what BTCPay shows for each invoice, what
SatShare's database should then say about it, each webhook inbox row, each payout and what
BTCPay made of it, and the balances that follow. It knows the rules from the README and
docs/architecture.md, not from the code: the test compares it with what the real system did.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select

from satshare.ledger import accounts
from satshare.ledger import repository as ledger_repo
from satshare.ledger.models import PAYOUT_KINDS, Entry
from satshare.ledger.verify import VerifyReport, verify_ledger
from satshare.notifications.messages import PaymentInvalidated
from satshare.notifications.models import OutboxMessage
from satshare.payments.models import Invoice, Payment
from satshare.payouts.models import Payout
from satshare.providers.btcpay import INVOICE_EVENTS
from satshare.users.models import User
from tests.conftest import BTCPAY_KEY, STORE_ID, Stack

SHARE_BPS = 5_000  # affiliate.share_bps by default
MIN_PAYOUT = 1_000
PROCESSED = "processed"
OPEN_PAYOUTS = ("approved", "sending", "unknown")
#: What SatShare stores about an invoice it tracks: (status, paid sats, BTCPay status,
#: BTCPay additional status). A re-fetch that changes none of these is "unchanged".
Tracked = tuple[str, int, str, str]
NEW_INVOICE: Tracked = ("new", 0, "New", "None")


def commission(amount: int, referrer: int | None) -> int:
    return amount * SHARE_BPS // 10_000 if referrer is not None else 0


@dataclass(frozen=True)
class Observation:
    """What a re-fetch of the invoice tells SatShare."""

    settle: bool
    paid_late: bool = False
    tracked: Tracked | None = None


@dataclass
class ProcessorInvoice:
    """The invoice as BTCPay (the emulator) shows it."""

    status: str = "New"  # New | Processing | Settled | Expired | Invalid
    additional: str = "None"  # None | PaidLate | Marked
    paid: bool = False  # a valid payment of the full amount
    late: bool = False  # paid after it expired (PaidLate)
    unconfirmed: bool = False  # paid on-chain, not mined yet

    @property
    def markable(self) -> bool:
        """The merchant may still mark it settled or invalid in BTCPay."""
        return self.status in ("New", "Processing", "Expired")

    def pay(self, method: str) -> None:
        assert self.status in ("New", "Expired") and not self.paid
        self.paid = True
        self.unconfirmed = method == "BTC-CHAIN"
        if self.status == "Expired":
            self.late, self.additional = True, "PaidLate"
        else:
            self.status = "Processing" if self.unconfirmed else "Settled"

    def mark(self, status: str) -> None:
        assert self.markable
        self.status, self.additional = status, "Marked"

    def invalidate_payment(self) -> None:
        """The payment is gone (a double spend, a reorg): BTCPay calls the invoice invalid."""
        assert self.paid and self.status != "Invalid"
        self.paid = self.unconfirmed = False
        self.status, self.additional = "Invalid", "None"

    def mine(self) -> None:
        if self.unconfirmed:
            self.unconfirmed = False
            if self.status == "Processing":
                self.status = "Settled"

    def observe(self, amount: int) -> Observation:
        if self.status == "Settled":
            return Observation(settle=True)
        if self.status == "Invalid":
            paid = amount if self.paid else 0
            return Observation(False, tracked=("invalid", paid, "Invalid", self.additional))
        if self.status == "Processing":
            return Observation(False, tracked=("processing", amount, "Processing", "None"))
        if self.status == "Expired" and self.late:
            if not self.unconfirmed:
                return Observation(settle=True, paid_late=True)
            return Observation(False, tracked=("expired", amount, "Expired", "PaidLate"))
        if self.status == "Expired":
            return Observation(False, tracked=("expired", 0, "Expired", "None"))
        return Observation(False, tracked=NEW_INVOICE)


@dataclass
class ModelInvoice:
    label: str
    id: str
    provider_id: str
    buyer: int
    referrer: int | None
    amount: int
    processor: ProcessorInvoice = field(default_factory=ProcessorInvoice)
    status: str = "new"  # what our database should say
    tracked: Tracked = NEW_INVOICE
    paid_late: bool = False
    #: SatShare has looked at it while BTCPay showed it paid: it must be settled (or refunded).
    seen_paid: bool = False
    #: Settled, then BTCPay called it invalid and SatShare saw it: admins must be alerted.
    alerted_invalid: bool = False
    #: Inbox rows by event type: PROCESSED, or the era (see Model.era) in which a holder
    #: that may since have died claimed it.
    inbox: dict[str, str | int] = field(default_factory=dict)

    @property
    def commission(self) -> int:
        return commission(self.amount, self.referrer)

    @property
    def sold(self) -> bool:
        """A sale entry exists (it stays when refunded: the refund is a reversal)."""
        return self.status in ("settled", "refunded")


def known_refund_bug(inv: ModelInvoice) -> bool:
    """A refunded invoice whose payment BTCPay has since invalidated: SatShare overwrites its
    status with "invalid" and alerts nobody (the xfail test in test_stateful_money.py). The
    machine keeps away from it so that it goes on looking for other things."""
    return inv.status == "refunded" and inv.processor.status == "Invalid"


@dataclass(frozen=True)
class Expected:
    """The answer a webhook delivery must get."""

    status_code: int
    ack: str | None = None  # the "status" of a 200


@dataclass
class ModelPayout:
    id: int
    user: int
    amount: int
    status: str = "approved"
    #: What BTCPay shows for our idempotency key: None (never made), AwaitingPayment,
    #: Completed or Cancelled.
    at_provider: str | None = None
    by_admin: bool = False  # failed because an admin marked it so (mark-failed)
    watched: bool = False  # released by an admin, still asked about for a late "paid"
    rehold: bool = False  # BTCPay paid it after an admin had released it
    due: bool = False  # the reconciler asks BTCPay about it at its next run

    @property
    def key(self) -> str:
        return f"satshare-payout-{self.id}"


#: Faults of BTCPay's payout create (sim/faults.py), and what each leaves behind: whether the
#: payout is made, and whether the fault hits every create or only the next one.
PAYOUT_FAULTS = {
    "slow": (True, False),  # made after payouts.timeout_seconds: our call gave up
    "refused": (False, True),  # a 503, nothing made
    "answer_lost": (True, True),  # made, then a 500
    "cut_after": (True, True),  # made, then the connection is cut mid-answer
    "cut_before": (False, True),  # the connection is cut, nothing made
}


@dataclass
class PayoutKnobs:
    """BTCPay's store-payout settings, as the machine set them."""

    processor: str = "instant"  # instant | manual
    fault: str | None = None  # one of PAYOUT_FAULTS


@dataclass
class Model:
    users: dict[int, int | None] = field(default_factory=dict)  # user -> direct referrer
    accepted_terms: set[int] = field(default_factory=set)  # needed before a first payout
    #: Time is frozen but for "time passes", which outlasts every claim, grace and backoff:
    #: a claim made in the current era is live, one from an earlier era is its dead holder's.
    era: int = 0
    invoices: dict[str, ModelInvoice] = field(default_factory=dict)  # by label
    payouts: dict[int, ModelPayout] = field(default_factory=dict)
    knobs: PayoutKnobs = field(default_factory=PayoutKnobs)

    # -- invoices ---------------------------------------------------------------------------

    def by_id(self, invoice_id: str) -> ModelInvoice:
        return next(i for i in self.invoices.values() if i.id == invoice_id)

    def apply(self, inv: ModelInvoice) -> str:
        """SatShare re-fetches the invoice and applies what it sees; returns the outcome."""
        if inv.status == "settled":
            # Nothing is undone automatically; an admin is told, and reverses it if need be.
            inv.alerted_invalid |= inv.processor.status == "Invalid"
            return "already_settled"
        assert not known_refund_bug(inv), "the machine steers clear of it (see known_refund_bug)"
        seen = inv.processor.observe(inv.amount)
        if seen.settle:
            inv.seen_paid = True
            if inv.status == "refunded":
                return "already_settled"  # the sale's unique keys hold
            inv.status, inv.paid_late = "settled", seen.paid_late
            return "settled"
        assert inv.status != "refunded", "the model never un-pays an invoice at BTCPay"
        assert seen.tracked is not None
        if seen.tracked == inv.tracked:
            return "unchanged"
        inv.tracked = seen.tracked
        inv.status = seen.tracked[0]
        return "updated"

    def deliver(self, inv: ModelInvoice, event_type: str, processor_down: bool) -> Expected:
        """A signed webhook for this invoice arrives."""
        if event_type not in INVOICE_EVENTS:
            return Expected(200, "ignored")
        row = inv.inbox.get(event_type)
        if row == PROCESSED:
            return Expected(200, "duplicate")
        if row == self.era:
            return Expected(503)  # another request holds it (or died a moment ago)
        if processor_down:
            inv.inbox.pop(event_type, None)  # released: BTCPay's retry is processed afresh
            return Expected(502)
        outcome = self.apply(inv)
        if outcome == "unchanged":
            inv.inbox.pop(event_type, None)  # nothing happened, so nothing is kept as handled
            if event_type == "InvoiceSettled":
                return Expected(503)  # BTCPay does not show it settled yet: send again
            return Expected(200, "unchanged")
        inv.inbox[event_type] = PROCESSED
        return Expected(200, outcome)

    def reconcile_invoices(self) -> Counter[str]:
        """The invoice reconciler re-fetches every open invoice and every expired one
        (still inside the late window)."""
        outcomes: Counter[str] = Counter()
        for inv in self.invoices.values():
            if inv.status in ("new", "processing", "expired"):
                outcomes[self.apply(inv)] += 1
        return outcomes

    # -- payouts ----------------------------------------------------------------------------

    def send(self, payout: ModelPayout) -> None:
        knobs = self.knobs
        made, once = PAYOUT_FAULTS[knobs.fault] if knobs.fault else (True, False)
        if once:
            knobs.fault = None
        if made:
            instant = knobs.processor == "instant"
            payout.at_provider = "Completed" if instant else "AwaitingPayment"
        if knobs.fault is not None or once:
            payout.status = "unknown"  # no answer we can trust: maybe made, maybe not
        elif payout.at_provider == "Completed":
            payout.status = "paid"
        else:
            payout.status = "sending"  # BTCPay waits for its payout processor

    def run_payouts(self) -> int:
        """payouts.flows.run_once: send every approved payout, then reconcile."""
        sent = 0
        for payout in sorted(self.payouts.values(), key=lambda p: p.id):
            if payout.status == "approved":
                self.send(payout)
                sent += 1
        return sent + self.reconcile_payouts()

    def reconcile_payouts(self) -> int:
        decided = 0
        for payout in self.payouts.values():
            watched = payout.status == "failed" and payout.by_admin and payout.watched
            if not payout.due or not (payout.status in ("sending", "unknown") or watched):
                continue
            payout.due = False  # asked now; the next question is scheduled later
            said = {
                None: "unknown",
                "AwaitingPayment": "waiting",
                "Completed": "paid",
                "Cancelled": "failed",
            }[payout.at_provider]
            if said in ("paid", "failed"):
                decided += 1
            if payout.status == "failed":
                if said == "paid":
                    payout.status, payout.rehold, payout.watched = "paid", True, False
                elif said == "failed":
                    payout.watched = False
            elif said == "paid":
                payout.status = "paid"
            elif said == "failed":
                payout.status = "failed"
            elif said == "unknown":
                payout.status = "unknown"
        return decided

    def time_passes(self) -> None:
        """Longer than every backoff, grace and claim lifetime: every check falls due."""
        self.era += 1
        for payout in self.payouts.values():
            if payout.status in ("sending", "unknown") or (payout.by_admin and payout.watched):
                payout.due = True

    # -- money ------------------------------------------------------------------------------

    def earned(self, user: int) -> int:
        return sum(
            i.commission
            for i in self.invoices.values()
            if i.referrer == user and i.status == "settled"
        )

    def held(self, user: int) -> int:
        return sum(
            p.amount for p in self.payouts.values() if p.user == user and p.status in OPEN_PAYOUTS
        )

    def paid_out(self, user: int) -> int:
        return sum(p.amount for p in self.payouts.values() if p.user == user and p.status == "paid")

    def balance(self, user: int) -> int:
        return self.earned(user) - self.held(user) - self.paid_out(user)

    def available(self, user: int) -> int:
        return max(0, self.balance(user))

    def clawed_back(self, user: int) -> bool:
        """A refund took back a commission of theirs, or a released payout was paid after all:
        the two ways a balance may go below zero."""
        refunded = any(
            i.referrer == user and i.status == "refunded" and i.commission
            for i in self.invoices.values()
        )
        return refunded or any(p.user == user and p.rehold for p in self.payouts.values())


# -- what the system says --------------------------------------------------------------------


@dataclass
class EntryRow:
    id: int
    kind: str
    idempotency_key: str
    invoice_id: str | None
    gross_sats: int | None
    share_bps: int | None
    affiliate_user_id: int | None
    reverses_entry_id: int | None
    postings: dict[str, int]


@dataclass
class Snapshot:
    report: VerifyReport
    invoices: dict[str, tuple[str, int]]  # id -> (status, paid sats)
    payments: list[tuple[str, bool, int]]  # (invoice id, paid late, ledger entry id)
    entries: list[EntryRow]
    accounts: dict[str, int]
    payouts: dict[int, tuple[str, int, int]]  # id -> (status, user, amount)
    referrers: dict[int, int | None]
    invalidation_alerts: int  # admin.payment_invalidated rows in the outbox
    #: One user's balance as the affiliates API shows it (a different user at each step).
    api_balance: tuple[int, dict[str, int]] | None
    btcpay_payouts: list[dict[str, Any]]  # the emulator's store payouts, cancelled included

    def entries_keyed(self, key: str) -> list[EntryRow]:
        return [e for e in self.entries if e.idempotency_key == key]

    def balance_of(self, user: int) -> dict[str, int]:
        """The affiliates API's balance fields, recomputed from the ledger and the payouts."""
        account = accounts.affiliate_payable(user)
        owed = -sum(e.postings.get(account, 0) for e in self.entries)
        earned = -sum(
            e.postings.get(account, 0) for e in self.entries if e.kind not in PAYOUT_KINDS
        )
        mine = [
            (status, amount) for status, owner, amount in self.payouts.values() if owner == user
        ]
        return {
            "balance_sats": owed,
            "available_sats": max(0, owed),  # no hold period (affiliate.hold_days: 0)
            "pending_sats": 0,
            "total_earned_sats": earned,
            "paid_out_sats": sum(amount for status, amount in mine if status == "paid"),
            "in_payouts_sats": sum(amount for status, amount in mine if status in OPEN_PAYOUTS),
        }


async def read_snapshot(stack: Stack, btcpay: httpx.AsyncClient, api_user: int | None) -> Snapshot:
    # The sealer chains entries shortly after they commit; a crash may have left some.
    await stack.container.sealer.flush()
    async with stack.db.reading() as session:
        report = await verify_ledger(session)
        invoices = {
            i.id: (i.status, i.paid_sats)
            for i in (await session.execute(select(Invoice))).scalars()
        }
        payments = [
            (p.invoice_id, p.paid_late, p.ledger_entry_id)
            for p in (await session.execute(select(Payment))).scalars()
        ]
        rows = (await session.execute(select(Entry).order_by(Entry.id))).scalars().all()
        postings = await ledger_repo.postings_of(session, [e.id for e in rows])
        entries = [
            EntryRow(
                e.id,
                e.kind,
                e.idempotency_key,
                e.invoice_id,
                e.gross_sats,
                e.share_bps,
                e.affiliate_user_id,
                e.reverses_entry_id,
                dict(postings[e.id]),
            )
            for e in rows
        ]
        accounts = await ledger_repo.all_account_sums(session)
        payouts = {
            p.id: (p.status, p.user_id, p.amount_sats)
            for p in (await session.execute(select(Payout))).scalars()
        }
        referrers = {u.id: u.referrer_id for u in (await session.execute(select(User))).scalars()}
        alerts = select(func.count()).where(OutboxMessage.kind == PaymentInvalidated.kind)
        invalidation_alerts = (await session.execute(alerts)).scalar_one()
    api_balance = None
    if api_user is not None:
        response = await stack.client.get(f"/api/v1/affiliates/{api_user}")
        assert response.status_code == 200, response.text
        api_balance = (api_user, response.json()["balance"])
    listed = await btcpay_payouts(btcpay)
    return Snapshot(
        report,
        invoices,
        payments,
        entries,
        accounts,
        payouts,
        referrers,
        invalidation_alerts,
        api_balance,
        listed,
    )


async def btcpay_payouts(btcpay: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The store's payouts as BTCPay's Greenfield API lists them (cancelled ones too)."""
    response = await btcpay.get(
        f"/api/v1/stores/{STORE_ID}/payouts",
        params={"includeCancelled": "true"},
        headers={"Authorization": f"token {BTCPAY_KEY}"},
    )
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed
