"""Telegram Stars sales: settled from Telegram's successful_payment, not by a processor.

The sale goes through the same fulfilment as a processor's settlement
(``payments.settlement``): one transaction, the split in sats at the configured rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ledger import service as ledger
from satshare.ledger.models import EntryKind
from satshare.money import split
from satshare.notifications import service as outbox
from satshare.notifications.messages import (
    InvoiceMismatch,
)
from satshare.payments import repository
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.payments.settlement import (
    Fulfilment,
    Outcome,
    SettlementPolicy,
    _fulfil,
    _parties,
    _terms,
)
from satshare.security import random_token


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
            buyer_user_id=parties.buyer.id,
            referrer_user_id=affiliate_id,
            renewal=parties.subscription.payments > 0,
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
