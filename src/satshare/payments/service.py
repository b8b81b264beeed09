"""Settlement: apply what the processor says about an invoice, exactly once.

Everything a settled payment changes happens in the caller's single transaction: the
invoice, the payment row, the balanced ledger entry with the split, the subscription
extension and the outbox rows. Rows are locked in a fixed order: invoice, subscription,
ledger chain head.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.affiliates import service as affiliates
from satshare.errors import Conflict, NotFound
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
    PaymentRefunded,
    SaleNew,
)
from satshare.payments import referrals, repository
from satshare.payments.models import Invoice, InvoiceStatus, Payment
from satshare.payments.ports import InvoiceFlag, InvoiceState, ProviderInvoice
from satshare.plans import service as plans
from satshare.plans.models import Plan
from satshare.promos import service as promos
from satshare.security import random_token
from satshare.subscriptions import repository as subscriptions_repo
from satshare.subscriptions import service as subscriptions
from satshare.subscriptions.models import Subscription
from satshare.users import repository as users
from satshare.users.models import User


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
    invoice = await repository.get_invoice(session, invoice_id, lock=True)
    if invoice is None:
        raise LookupError(invoice_id)
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
        await _settle(session, invoice, observed, policy, decision.paid_late, now)
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
    observed: ProviderInvoice,
    policy: SettlementPolicy,
    paid_late: bool,
    now: datetime,
) -> None:
    parties = await _parties(session, invoice)
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
        session, affiliate_id, policy.program, referrals.referral_stats
    )


@dataclass(frozen=True, slots=True)
class Parties:
    subscription: Subscription
    plan: Plan
    buyer: User


async def _parties(session: AsyncSession, invoice: Invoice) -> Parties:
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
    session.add(
        Payment(
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
        )
    )
    subscriptions.extend(subscription, plan.duration_days + invoice.bonus_days, now)
    await promos.invoice_settled(session, invoice.id, now)
    invoice.status = InvoiceStatus.SETTLED
    invoice.settled_at = now
    invoice.updated_at = now
    assert subscription.ends_at is not None
    await outbox.enqueue(
        session,
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
        now=now,
    )
    if affiliate_id is not None and done.commission_sats:
        await outbox.enqueue(
            session,
            CommissionEarned(
                invoice_id=invoice.id,
                buyer_user_id=buyer.id,
                commission_sats=done.commission_sats,
                share_bps=done.share_bps,
                transaction_id=done.entry_id,
            ),
            dedupe_key=f"invoice:{invoice.id}:commission.earned",
            user_id=affiliate_id,
            now=now,
        )
    await outbox.enqueue(
        session,
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
        now=now,
    )
    await session.flush()
    if affiliate_id is not None and done.commission_sats and policy.on_commission is not None:
        await policy.on_commission(
            session,
            affiliate_id=affiliate_id,
            commission_sats=done.commission_sats,
            invoice_id=invoice.id,
            now=now,
        )


@dataclass(frozen=True, slots=True)
class StarsPayment:
    """Telegram's successful_payment for an XTR invoice."""

    invoice_id: str  # our invoice id, sent as the invoice payload
    charge_id: str  # telegram_payment_charge_id: the proof, and what a refund needs
    amount_stars: int
    is_recurring: bool = False


async def settle_stars(
    session: AsyncSession,
    paid: StarsPayment,
    policy: SettlementPolicy,
    sats_per_star: int | None,
    now: datetime,
) -> tuple[Outcome, str]:
    """Settle a Stars payment once. A Stars subscription renews with a new charge against the
    same payload: each renewal becomes its own settled invoice."""
    invoice = await repository.get_invoice(session, paid.invoice_id, lock=True)
    if invoice is None or invoice.currency != "XTR":
        raise LookupError(paid.invoice_id)
    if invoice.status == InvoiceStatus.SETTLED:
        previous = await repository.payment_of_invoice(session, invoice.id)
        if previous is not None and previous.proof == paid.charge_id:
            return Outcome.ALREADY_SETTLED, invoice.id
        renewal = await repository.invoice_by_provider_id(session, "stars", paid.charge_id)
        if renewal is not None:
            return Outcome.ALREADY_SETTLED, renewal.id
        invoice = Invoice(
            id="inv_" + random_token(16),
            provider="stars",
            provider_invoice_id=paid.charge_id,
            subscription_id=invoice.subscription_id,
            user_id=invoice.user_id,
            plan_id=invoice.plan_id,
            amount_sats=0,
            currency="XTR",
            amount_stars=paid.amount_stars,
            status=InvoiceStatus.NEW,
            provider_status="renewal",
            provider_additional_status="None",
            expires_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(invoice)
        await session.flush()
    if paid.amount_stars != invoice.amount_stars:
        await outbox.enqueue(
            session,
            InvoiceMismatch(
                invoice.id, "stars", expected=invoice.amount_stars, observed=paid.amount_stars
            ),
            dedupe_key=f"invoice:{invoice.id}:mismatch:{paid.amount_stars}",
            now=now,
        )
        return Outcome.MISMATCH, invoice.id
    parties = await _parties(session, invoice)
    affiliate_id = parties.buyer.referrer_id
    value_sats = paid.amount_stars * sats_per_star if sats_per_star else 0
    terms = await _terms(session, affiliate_id, policy)
    share = terms.share_bps if value_sats else 0
    commission = split(value_sats, share)
    entry = await ledger.post_entry(
        session,
        ledger.NewEntry(
            idempotency_key=f"invoice:{invoice.id}:settled",
            kind=EntryKind.STARS_SALE,
            legs=ledger.stars_sale_legs(
                stars=paid.amount_stars,
                affiliate_user_id=affiliate_id,
                commission_sats=commission.affiliate_sats,
            ),
            memo=f"{parties.plan.title}: {paid.amount_stars} Stars, invoice {invoice.id}",
            invoice_id=invoice.id,
            gross_sats=value_sats,
            share_bps=share,
            affiliate_user_id=affiliate_id if commission.affiliate_sats else None,
            terms=terms.label if value_sats else "stars-no-commission",
        ),
        now,
    )
    invoice.provider_status = "paid"
    await _fulfil(
        session,
        invoice,
        parties,
        Fulfilment(
            entry_id=entry.id,
            received_sats=0,
            paid_late=False,
            proof=paid.charge_id,
            owner_sats=0,
            commission_sats=commission.affiliate_sats,
            share_bps=share,
        ),
        policy,
        now,
    )
    return Outcome.SETTLED, invoice.id


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


async def begin_stars_refund(
    session: AsyncSession, invoice_id: str, now: datetime
) -> tuple[str, str]:
    """Mark a settled Stars invoice as being refunded; return (telegram user id, charge id).

    The mark keeps two admins from refunding at once; a refund that finds it (after a crash)
    may go on: Telegram answers an already refunded charge with CHARGE_ALREADY_REFUNDED."""
    invoice = await repository.get_invoice(session, invoice_id, lock=True)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    if invoice.currency != "XTR":
        raise Conflict(f"invoice {invoice_id} was paid in bitcoin, not Telegram Stars")
    if invoice.status not in (InvoiceStatus.SETTLED, InvoiceStatus.REFUNDING):
        raise Conflict(f"invoice {invoice_id} is {invoice.status}; only a paid invoice is refunded")
    payment = await repository.payment_of_invoice(session, invoice_id)
    buyer = await users.get(session, invoice.user_id)
    assert payment is not None and payment.proof and buyer is not None
    invoice.status = InvoiceStatus.REFUNDING
    invoice.updated_at = now
    return str(buyer.external_id), payment.proof


async def abort_stars_refund(session: AsyncSession, invoice_id: str, now: datetime) -> None:
    invoice = await repository.get_invoice(session, invoice_id, lock=True)
    if invoice is not None and invoice.status == InvoiceStatus.REFUNDING:
        invoice.status = InvoiceStatus.SETTLED
        invoice.updated_at = now


async def finish_stars_refund(
    session: AsyncSession, invoice_id: str, *, author: str, now: datetime
) -> int:
    """Telegram returned the Stars: reverse the sale (the affiliate's commission with it) and
    take back the paid time. Returns the reversing transaction id."""
    invoice = await repository.get_invoice(session, invoice_id, lock=True)
    assert invoice is not None and invoice.status == InvoiceStatus.REFUNDING
    return await _refund(
        session, invoice, f"Telegram Stars refund of invoice {invoice_id}", author, now
    )


async def record_bitcoin_refund(
    session: AsyncSession, invoice_id: str, *, note: str | None, author: str, now: datetime
) -> int:
    """The owner paid a bitcoin sale back from their wallet (bitcoin has no chargebacks, so
    this only happens when they choose to): reverse the sale, the affiliate's commission
    included (a clawback), and take back the paid time. Returns the reversal's id."""
    invoice = await repository.get_invoice(session, invoice_id, lock=True)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    if invoice.currency != "SAT":
        raise Conflict(f"invoice {invoice_id} was paid in Telegram Stars, not bitcoin")
    if invoice.status != InvoiceStatus.SETTLED:
        raise Conflict(f"invoice {invoice_id} is {invoice.status}; only a paid invoice is refunded")
    memo = f"refund of invoice {invoice_id}" + (f": {note}" if note else "")
    return await _refund(session, invoice, memo, author, now)


async def _refund(
    session: AsyncSession, invoice: Invoice, memo: str, author: str, now: datetime
) -> int:
    invoice_id = invoice.id
    payment = await repository.payment_of_invoice(session, invoice_id)
    assert payment is not None
    reversal = await ledger.reverse_entry(
        session, payment.ledger_entry_id, memo=memo, author=author, now=now
    )
    parties = await _parties(session, invoice)
    subscriptions.shorten(
        parties.subscription, parties.plan.duration_days + invoice.bonus_days, now
    )
    invoice.status = InvoiceStatus.REFUNDED
    invoice.updated_at = now
    await outbox.enqueue(
        session,
        PaymentRefunded(
            invoice_id=invoice_id,
            plan_id=parties.plan.id,
            plan_title=parties.plan.title,
            amount_stars=invoice.amount_stars,
        ),
        dedupe_key=f"invoice:{invoice_id}:refunded",
        user_id=invoice.user_id,
        now=now,
    )
    await session.flush()
    return reversal.id
