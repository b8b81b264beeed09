"""Settlement: apply what the processor says about an invoice, exactly once.

Everything a settled payment changes happens in the caller's single transaction: the
invoice, the payment row, the balanced ledger entry with the split (queued for the sealer,
which chains it after commit), the subscription extension and the outbox rows. Rows are
locked in a fixed order: invoice, then subscription.

It is on the path of every sale, so it counts its round trips (``bench/settle_tx.py``): the
invoice, its subscription, buyer and plan in one query; the entry with its postings, notes
and queue rows in one statement; the invoice, the payment and the subscription in another
(``repository.record_sale``, not the ORM's flush); the three outbox rows in one INSERT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from satshare import logs
from satshare.affiliates import service as affiliates
from satshare.ledger import service as ledger
from satshare.ledger.models import EntryKind
from satshare.money import split
from satshare.notifications import service as outbox
from satshare.notifications.messages import (
    CommissionEarned,
    InvoiceGone,
    InvoiceMismatch,
    PaymentConfirmed,
    PaymentInvalidated,
    SaleNew,
)
from satshare.payments import referrals, repository
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.payments.ports import InvoiceFlag, InvoiceState, ProviderInvoice
from satshare.plans import service as plans
from satshare.plans.models import Plan
from satshare.promos import service as promos
from satshare.subscriptions import repository as subscriptions_repo
from satshare.subscriptions import service as subscriptions
from satshare.subscriptions.models import Subscription
from satshare.users import repository as users
from satshare.users.models import User
from satshare.webhooks_out import events as webhook_events


class Outcome(StrEnum):
    SETTLED = "settled"
    ALREADY_SETTLED = "already_settled"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    MISMATCH = "mismatch"


class CommissionHook(Protocol):
    """Runs inside the settlement transaction when a sale earns a commission (instant split)."""

    async def __call__(
        self,
        session: AsyncSession,
        *,
        affiliate_id: int,
        commission_sats: int,
        invoice_id: str,
        now: datetime,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class SettlementPolicy:
    program: affiliates.Program
    settle_on_processing: bool = False
    on_commission: CommissionHook | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    settle: bool
    paid_late: bool = False


def decide(observed: ProviderInvoice, policy: SettlementPolicy) -> Decision:
    """Should this observation settle the invoice?"""
    paid_in_full = observed.paid_sats >= observed.amount_sats
    if observed.state is InvoiceState.SETTLED:
        return Decision(settle=True)
    if observed.state is InvoiceState.PROCESSING:
        return Decision(settle=policy.settle_on_processing and paid_in_full)
    if observed.state is InvoiceState.EXPIRED and observed.flag is InvoiceFlag.PAID_LATE:
        confirmed = observed.confirmed_paid_sats >= observed.amount_sats
        zero_conf_ok = policy.settle_on_processing and paid_in_full
        return Decision(settle=confirmed or zero_conf_ok, paid_late=True)
    return Decision(settle=False)


#: An invoice that was paid and settled: what a processor says later never rewrites it.
SOLD_STATUSES = frozenset({InvoiceStatus.SETTLED, InvoiceStatus.REFUNDING, InvoiceStatus.REFUNDED})


async def apply_observation(
    session: AsyncSession,
    invoice_id: str,
    observed: ProviderInvoice,
    policy: SettlementPolicy,
    now: datetime,
) -> Outcome:
    locked = await repository.lock_invoice_for_settlement(session, invoice_id)
    if locked is None:
        raise LookupError(invoice_id)
    invoice, subscription, buyer, plan, webhooks_listened = locked
    logs.tag(user_id=invoice.user_id)  # the buyer, on this settlement's log lines
    if invoice.status in SOLD_STATUSES:
        # Sold (and maybe refunded since): the processor's later view never rewrites it. An
        # invalidated payment is told to the admins (who may have refunded it already).
        if observed.state is InvoiceState.INVALID:
            await _alert_invalidated(session, invoice, observed, now)
        return Outcome.ALREADY_SETTLED
    if (
        observed.provider_invoice_id != invoice.provider_invoice_id
        or observed.amount_sats != invoice.amount_sats
    ):
        # The processor describes a different bill than we issued: never settle on that.
        await outbox.enqueue(
            session,
            InvoiceMismatch(
                invoice.id, "sats", expected=invoice.amount_sats, observed=observed.amount_sats
            ),
            dedupe_key=f"invoice:{invoice.id}:mismatch:{observed.amount_sats}",
            now=now,
        )
        return Outcome.MISMATCH
    decision = decide(observed, policy)
    if decision.settle:
        parties = Parties(subscription, plan, buyer, webhooks_listened=webhooks_listened)
        await _settle(session, invoice, parties, observed, policy, decision.paid_late, now)
        return Outcome.SETTLED
    outcome = _track(invoice, observed, now)
    if invoice.status in (InvoiceStatus.EXPIRED, InvoiceStatus.INVALID):
        await promos.invoice_lapsed(session, invoice.id, now)  # its promo use is free again
    return outcome


def _track(invoice: Invoice, observed: ProviderInvoice, now: datetime) -> Outcome:
    before = (
        invoice.status,
        invoice.paid_sats,
        invoice.provider_status,
        invoice.provider_additional_status,
    )
    invoice.status = InvoiceStatus(observed.state)
    invoice.paid_sats = observed.paid_sats
    invoice.provider_status = observed.raw_status
    invoice.provider_additional_status = observed.raw_additional_status
    after = (
        invoice.status,
        invoice.paid_sats,
        invoice.provider_status,
        invoice.provider_additional_status,
    )
    if before == after:
        return Outcome.UNCHANGED
    invoice.updated_at = now
    return Outcome.UPDATED


async def _settle(
    session: AsyncSession,
    invoice: Invoice,
    parties: Parties,
    observed: ProviderInvoice,
    policy: SettlementPolicy,
    paid_late: bool,
    now: datetime,
) -> None:
    affiliate_id = parties.buyer.referrer_id
    terms = await _terms(session, affiliate_id, policy)
    sale = split(invoice.amount_sats, terms.share_bps)
    # A hand-marked invoice may show less paid than billed: the merchant vouches for the sale.
    received = max(observed.paid_sats, invoice.amount_sats)
    entry = await ledger.post_entry(
        session,
        ledger.NewEntry(
            idempotency_key=f"invoice:{invoice.id}:settled",
            kind=EntryKind.SALE,
            legs=ledger.sale_legs(
                provider=invoice.provider,
                split=sale,
                received_sats=received,
                affiliate_user_id=affiliate_id,
                buyer_user_id=parties.buyer.id,
            ),
            memo=f"{parties.plan.title}: invoice {invoice.id}",
            invoice_id=invoice.id,
            gross_sats=sale.gross_sats,
            share_bps=sale.share_bps,
            affiliate_user_id=affiliate_id if sale.affiliate_sats else None,
            terms=terms.label,
            buyer_user_id=parties.buyer.id,
            referrer_user_id=affiliate_id,
            renewal=parties.subscription.payments > 0,
            owners_known=True,  # the buyer and their referrer, read above
        ),
        now,
    )
    invoice.paid_sats = observed.paid_sats
    invoice.provider_status = observed.raw_status
    invoice.provider_additional_status = observed.raw_additional_status
    await _fulfil(
        session,
        invoice,
        parties,
        Fulfilment(
            entry_id=entry.id,
            received_sats=received,
            paid_late=paid_late,
            proof=observed.proof,
            owner_sats=sale.owner_sats,
            commission_sats=sale.affiliate_sats,
            share_bps=sale.share_bps,
        ),
        policy,
        now,
    )


NO_AFFILIATE = affiliates.Terms(share_bps=0, label="no-referrer")


async def _terms(
    session: AsyncSession, affiliate_id: int | None, policy: SettlementPolicy
) -> affiliates.Terms:
    """The affiliate's terms right now (before this sale counts towards their level)."""
    if affiliate_id is None:
        return NO_AFFILIATE
    return await affiliates.terms_for(
        session, affiliate_id, policy.program, referrals.level_progress
    )


@dataclass(frozen=True, slots=True)
class Parties:
    subscription: Subscription
    plan: Plan
    buyer: User
    #: False when the settlement's first read found no enabled webhook endpoint (then the
    #: sale's events are not recorded without asking again); True: ask.
    webhooks_listened: bool = True


async def _parties(session: AsyncSession, invoice: Invoice) -> Parties:
    """The invoice's subscription (locked: after the invoice), plan and buyer."""
    subscription = await subscriptions_repo.get(session, invoice.subscription_id, lock=True)
    plan = await plans.get(session, invoice.plan_id)
    buyer = await users.get(session, invoice.user_id)
    assert subscription is not None and plan is not None and buyer is not None
    return Parties(subscription, plan, buyer)


@dataclass(frozen=True, slots=True)
class Fulfilment:
    entry_id: int
    received_sats: int
    paid_late: bool
    proof: str | None
    owner_sats: int
    commission_sats: int
    share_bps: int


async def _fulfil(
    session: AsyncSession,
    invoice: Invoice,
    parties: Parties,
    done: Fulfilment,
    policy: SettlementPolicy,
    now: datetime,
) -> None:
    """What every settled sale does, whatever it was paid with: the payment row, the
    subscription extended, the invoice closed, and the notifications queued."""
    subscription, plan, buyer = parties.subscription, parties.plan, parties.buyer
    affiliate_id = buyer.referrer_id
    renewed = subscriptions.extension_start(subscription, now) != now  # paid while active
    invoice.status = InvoiceStatus.SETTLED
    invoice.settled_at = now
    invoice.updated_at = now
    counted_before = subscriptions.before_change(subscription)
    subscriptions.extend(subscription, plan.duration_days + invoice.bonus_days, now)
    bitcoin = invoice.amount_sats if invoice.currency == "SAT" else None
    subscriptions.record_payment(subscription, bitcoin)
    await repository.record_sale(
        session,
        invoice,
        subscription,
        repository.SalePayment(
            invoice_id=invoice.id,
            user_id=buyer.id,
            provider=invoice.provider,
            amount_sats=invoice.amount_sats,
            received_sats=done.received_sats,
            overpaid_sats=done.received_sats - invoice.amount_sats,
            paid_late=done.paid_late,
            proof=done.proof,
            ledger_entry_id=done.entry_id,
            settled_at=now,
        ),
    )
    await subscriptions.counted(session, counted_before, subscription)  # the dashboard's tallies
    if invoice.promo_code is not None:  # only an invoice with a code holds a promo use
        await promos.invoice_settled(session, invoice.id, now)
    assert subscription.ends_at is not None
    messages = [
        outbox.Queued(
            PaymentConfirmed(
                invoice_id=invoice.id,
                subscription_id=subscription.id,
                plan_id=plan.id,
                plan_title=plan.title,
                amount_sats=invoice.amount_sats,
                amount_stars=invoice.amount_stars,
                currency=invoice.currency,
                active_until=subscription.ends_at,
                channels=tuple(plan.channels),
                paid_late=done.paid_late,
            ),
            dedupe_key=f"invoice:{invoice.id}:payment.confirmed",
            user_id=buyer.id,
        )
    ]
    if affiliate_id is not None and done.commission_sats:
        messages.append(
            outbox.Queued(
                CommissionEarned(
                    invoice_id=invoice.id,
                    buyer_user_id=buyer.id,
                    commission_sats=done.commission_sats,
                    share_bps=done.share_bps,
                    transaction_id=done.entry_id,
                ),
                dedupe_key=f"invoice:{invoice.id}:commission.earned",
                user_id=affiliate_id,
            )
        )
    messages.append(
        outbox.Queued(
            SaleNew(
                invoice_id=invoice.id,
                plan_id=plan.id,
                buyer_user_id=buyer.id,
                currency=invoice.currency,
                amount_sats=invoice.amount_sats,
                amount_stars=invoice.amount_stars,
                owner_sats=done.owner_sats,
                affiliate_sats=done.commission_sats,
                affiliate_user_id=affiliate_id,
                overpaid_sats=done.received_sats - invoice.amount_sats,
                paid_late=done.paid_late,
            ),
            dedupe_key=f"invoice:{invoice.id}:sale.new",
        )
    )
    # One statement for the three.
    await outbox.enqueue_all(session, messages, now)
    await webhook_events.sale_settled(  # outgoing webhooks (#14), in the sale's transaction
        session,
        listened=parties.webhooks_listened,
        invoice=invoice,
        subscription=subscription,
        renewed=renewed,
        transaction_id=done.entry_id,
        received_sats=done.received_sats,
        paid_late=done.paid_late,
        affiliate_user_id=affiliate_id,
        commission_sats=done.commission_sats,
        share_bps=done.share_bps,
        now=now,
    )
    if affiliate_id is not None and done.commission_sats and policy.on_commission is not None:
        await policy.on_commission(
            session,
            affiliate_id=affiliate_id,
            commission_sats=done.commission_sats,
            invoice_id=invoice.id,
            now=now,
        )


async def mark_gone(session: AsyncSession, invoice_id: str, now: datetime) -> Outcome:
    """The processor lost the invoice: it can never be paid, so stop watching it."""
    invoice = await repository.get_invoice(session, invoice_id, lock=True)
    if invoice is None or invoice.status in (InvoiceStatus.SETTLED, InvoiceStatus.INVALID):
        return Outcome.UNCHANGED
    invoice.status = InvoiceStatus.INVALID
    invoice.provider_status = "NotFound"
    invoice.updated_at = now
    await promos.invoice_lapsed(session, invoice.id, now)
    await outbox.enqueue(
        session,
        InvoiceGone(invoice_id=invoice.id, provider=invoice.provider),
        dedupe_key=f"invoice:{invoice.id}:gone",
        now=now,
    )
    return Outcome.UPDATED


async def _alert_invalidated(
    session: AsyncSession, invoice: Invoice, observed: ProviderInvoice, now: datetime
) -> None:
    """A settled invoice the processor now calls invalid (e.g. a replaced zero-conf payment).

    Nothing is undone automatically: an admin reviews and reverses the sale entry.
    """
    await outbox.enqueue(
        session,
        PaymentInvalidated(invoice_id=invoice.id, provider_status=observed.raw_status),
        dedupe_key=f"invoice:{invoice.id}:invalidated",
        now=now,
    )
