"""Database rows to API schemas."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.api.schemas import SubscriptionOut
from satshare.ledger import repository as ledger_repo
from satshare.ledger.models import Entry
from satshare.ledger.schemas import PostingOut, TransactionOut
from satshare.payments import repository as payments_repo
from satshare.payments.flows import PaymentsContext
from satshare.payments.models import Invoice
from satshare.payments.schemas import InvoiceOut
from satshare.subscriptions.models import Subscription
from satshare.subscriptions.service import effective_status
from satshare.users.models import User
from satshare.users.schemas import UserOut


def invoice_out(invoice: Invoice, payments: PaymentsContext) -> InvoiceOut:
    return InvoiceOut(
        id=invoice.id,
        provider=invoice.provider,
        provider_invoice_id=invoice.provider_invoice_id,
        amount_sats=invoice.amount_sats,
        status=invoice.status,
        checkout_url=payments.checkout_url(invoice.id),
        provider_checkout_url=invoice.checkout_link,
        payment_request=invoice.payment_request,
        address=invoice.address,
        fiat_amount=invoice.fiat_amount,
        fiat_currency=invoice.fiat_currency,
        rate=invoice.rate,
        rate_source=invoice.rate_source,
        rate_at=invoice.rate_at,
        expires_at=invoice.expires_at,
        created_at=invoice.created_at,
        settled_at=invoice.settled_at,
        original_sats=invoice.original_sats,
        discount_sats=invoice.discount_sats,
        promo_code=invoice.promo_code,
        bonus_days=invoice.bonus_days,
    )


async def subscription_out(
    session: AsyncSession, subscription: Subscription, payments: PaymentsContext, now: datetime
) -> SubscriptionOut:
    latest = await payments_repo.latest_invoice_of(session, subscription.id)
    return SubscriptionOut(
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        subscription_type=subscription.plan_id,
        status=effective_status(subscription, now),
        started_at=subscription.started_at,
        ends_at=subscription.ends_at,
        created_at=subscription.created_at,
        latest_invoice=invoice_out(latest, payments) if latest else None,
    )


def user_out(user: User) -> UserOut:
    return UserOut(
        user_id=user.id,
        username=user.username,
        platform=user.platform,
        external_id=user.external_id,
        language=user.language,
        referral_code=user.referral_code,
        referrer_id=user.referrer_id,
        created_at=user.created_at,
    )


async def transactions_out(session: AsyncSession, entries: Sequence[Entry]) -> list[TransactionOut]:
    ids = [e.id for e in entries]
    postings = await ledger_repo.postings_of(session, ids)
    memos = await ledger_repo.latest_memos(session, ids)
    links = await ledger_repo.links_of(session, ids)
    return [
        TransactionOut(
            transaction_id=e.id,
            seq=links[e.id].seq if e.id in links else None,
            kind=e.kind,
            idempotency_key=e.idempotency_key,
            memo=memos.get(e.id),
            created_at=e.created_at,
            created_by=e.created_by,
            invoice_id=e.invoice_id,
            gross_sats=e.gross_sats,
            share_bps=e.share_bps,
            terms=e.terms,
            affiliate_user_id=e.affiliate_user_id,
            reverses_transaction_id=e.reverses_entry_id,
            hash=links[e.id].hash if e.id in links else None,
            prev_hash=links[e.id].prev_hash if e.id in links else None,
            postings=[PostingOut(account=c, amount_sats=a) for c, a in postings[e.id]],
        )
        for e in entries
    ]
