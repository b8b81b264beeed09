"""Refunds: a Stars refund (marked, returned through Telegram, then recorded) and a bitcoin
refund the owner paid from their wallet. Both reverse the sale entry (the affiliate's
commission included: a clawback), unless a ledger correction reversed it already, and take
back the paid time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import Conflict, NotFound
from satshare.ledger import repository as ledger_repo
from satshare.ledger import service as ledger
from satshare.ledger.accounts import affiliate_payable
from satshare.notifications import service as outbox
from satshare.notifications.messages import (
    CommissionReversed,
    PaymentRefunded,
)
from satshare.payments import repository
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.payments.settlement import _parties
from satshare.subscriptions import service as subscriptions
from satshare.users import repository as users
from satshare.webhooks_out import events as webhook_events


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
    # A sale already reversed as a ledger correction (POST /transactions/{id}/reversal, as
    # an admin may after the processor invalidated the payment) is not reversed twice: the
    # refund does what that left undone (the invoice, the paid time, the messages) and
    # records its memo on the reversal.
    reversal = await ledger_repo.entry_reversing(session, payment.ledger_entry_id)
    if reversal is None:
        reversal = await ledger.reverse_entry(
            session, payment.ledger_entry_id, memo=memo, author=author, now=now
        )
    else:
        await ledger.add_memo(session, reversal.id, memo, author=author, now=now)
    parties = await _parties(session, invoice)
    counted_before = subscriptions.before_change(parties.subscription)
    subscriptions.shorten(
        parties.subscription, parties.plan.duration_days + invoice.bonus_days, now
    )
    await subscriptions.counted(session, counted_before, parties.subscription)
    invoice.status = InvoiceStatus.REFUNDED
    invoice.updated_at = now
    await outbox.enqueue(
        session,
        PaymentRefunded(
            invoice_id=invoice_id,
            plan_id=parties.plan.id,
            plan_title=parties.plan.title,
            amount_stars=invoice.amount_stars,
            amount_sats=invoice.amount_sats if invoice.currency == "SAT" else None,
        ),
        dedupe_key=f"invoice:{invoice_id}:refunded",
        user_id=invoice.user_id,
        now=now,
    )
    await session.flush()
    affiliate_id = parties.buyer.referrer_id
    commission = await _commission_of(session, payment.ledger_entry_id, affiliate_id)
    if affiliate_id is not None and commission:
        # The affiliate was told of the commission; they are told it was taken back too.
        await outbox.enqueue(
            session,
            CommissionReversed(
                invoice_id=invoice_id, commission_sats=commission, transaction_id=reversal.id
            ),
            dedupe_key=f"invoice:{invoice_id}:commission.reversed",
            user_id=affiliate_id,
            now=now,
        )
    await webhook_events.sale_refunded(  # outgoing webhooks (#14), in the refund's transaction
        session,
        invoice=invoice,
        transaction_id=reversal.id,
        reverses_transaction_id=payment.ledger_entry_id,
        affiliate_user_id=affiliate_id,
        commission_sats=commission,
        now=now,
    )
    return reversal.id


async def _commission_of(session: AsyncSession, entry_id: int, affiliate_id: int | None) -> int:
    """What the sale credited the affiliate (the refund takes it back)."""
    if affiliate_id is None:
        return 0
    postings = (await ledger_repo.postings_of(session, [entry_id]))[entry_id]
    account = affiliate_payable(affiliate_id)
    return -sum(amount for code, amount in postings if code == account)
