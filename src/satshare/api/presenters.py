"""Database rows to API schemas."""

from __future__ import annotations

from datetime import datetime

from satshare.api.schemas import SubscriptionOut
from satshare.ledger.flows import EntryView
from satshare.ledger.schemas import PostingOut, TransactionOut
from satshare.payments.flows import PaymentsContext, SubscriptionView
from satshare.payments.models import Invoice
from satshare.payments.schemas import InvoiceOut
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


def subscription_out(
    view: SubscriptionView, payments: PaymentsContext, now: datetime
) -> SubscriptionOut:
    subscription, latest = view.subscription, view.latest_invoice
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


def transaction_out(view: EntryView) -> TransactionOut:
    e, link = view.entry, view.link
    return TransactionOut(
        transaction_id=e.id,
        seq=link.seq if link else None,
        kind=e.kind,
        idempotency_key=e.idempotency_key,
        memo=view.memo,
        created_at=e.created_at,
        created_by=e.created_by,
        invoice_id=e.invoice_id,
        gross_sats=e.gross_sats,
        share_bps=e.share_bps,
        terms=e.terms,
        affiliate_user_id=e.affiliate_user_id,
        reverses_transaction_id=e.reverses_entry_id,
        hash=link.hash if link else None,
        prev_hash=link.prev_hash if link else None,
        postings=[PostingOut(account=c, amount_sats=a) for c, a in view.postings],
    )
