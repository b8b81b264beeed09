"""The events, one function per writer: each is called in the transaction of the change it
announces (so an event is sent if and only if its change committed) and is recorded once
per change (its dedupe key), however often the writer runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.webhooks_out import payloads
from satshare.webhooks_out.models import EventType, WebhookEndpoint
from satshare.webhooks_out.service import enabled_endpoints, record, record_many


async def users_created(
    session: AsyncSession, users: Sequence[payloads.UserRow], now: datetime
) -> None:
    """``user.created`` for each of these new users (one INSERT for all of them)."""
    await record_many(
        session,
        EventType.USER_CREATED,
        [(payloads.user(user), f"user:{user.id}:created") for user in users],
        now=now,
    )


async def subscription_changed(
    session: AsyncSession,
    event: EventType,
    subscription: payloads.SubscriptionRow,
    now: datetime,
    *,
    cause: str,
    status: str | None = None,
    enabled: Sequence[WebhookEndpoint] | None = None,
) -> None:
    """``cause`` tells apart two changes of the same kind (the invoice that renewed it, the
    end date that expired)."""
    await record(
        session,
        event,
        payloads.subscription(subscription, status),
        dedupe_key=f"subscription:{subscription.id}:{event.value}:{cause}",
        now=now,
        enabled=enabled,
    )


async def sale_settled(
    session: AsyncSession,
    *,
    invoice: payloads.InvoiceRow,
    subscription: payloads.SubscriptionRow,
    renewed: bool,
    transaction_id: int,
    received_sats: int,
    paid_late: bool,
    affiliate_user_id: int | None,
    commission_sats: int,
    share_bps: int,
    now: datetime,
    listened: bool = True,
) -> None:
    """A settled sale: payment.settled, subscription.activated or .renewed, and the direct
    referrer's commission.earned (when there is one). ``listened=False``: the caller has
    just read, in this transaction, that no endpoint is enabled, so none is asked for."""
    if not listened:
        return
    enabled = await enabled_endpoints(session)  # read once for the three events
    if not enabled:
        return  # nobody listens: nothing to write
    await record(
        session,
        EventType.PAYMENT_SETTLED,
        payloads.payment(
            invoice,
            received_sats=received_sats,
            paid_late=paid_late,
            transaction_id=transaction_id,
        ),
        dedupe_key=f"invoice:{invoice.id}:payment.settled",
        now=now,
        enabled=enabled,
    )
    event = EventType.SUBSCRIPTION_RENEWED if renewed else EventType.SUBSCRIPTION_ACTIVATED
    await subscription_changed(session, event, subscription, now, cause=invoice.id, enabled=enabled)
    if affiliate_user_id is not None and commission_sats:
        await record(
            session,
            EventType.COMMISSION_EARNED,
            {
                "user_id": affiliate_user_id,
                "buyer_user_id": invoice.user_id,
                "invoice_id": invoice.id,
                "commission_sats": commission_sats,
                "share_bps": share_bps,
                "transaction_id": transaction_id,
            },
            dedupe_key=f"invoice:{invoice.id}:commission.earned",
            now=now,
            enabled=enabled,
        )


async def sale_refunded(
    session: AsyncSession,
    *,
    invoice: payloads.InvoiceRow,
    transaction_id: int,
    reverses_transaction_id: int,
    affiliate_user_id: int | None,
    commission_sats: int,
    now: datetime,
) -> None:
    """A refunded sale: payment.refunded and, when the sale paid a commission,
    commission.clawed_back."""
    await record(
        session,
        EventType.PAYMENT_REFUNDED,
        payloads.payment(
            invoice,
            transaction_id=transaction_id,
            reverses_transaction_id=reverses_transaction_id,
        ),
        dedupe_key=f"invoice:{invoice.id}:payment.refunded",
        now=now,
    )
    if affiliate_user_id is not None and commission_sats:
        await record(
            session,
            EventType.COMMISSION_CLAWED_BACK,
            {
                "user_id": affiliate_user_id,
                "buyer_user_id": invoice.user_id,
                "invoice_id": invoice.id,
                "commission_sats": commission_sats,
                "transaction_id": transaction_id,
                "reverses_transaction_id": reverses_transaction_id,
            },
            dedupe_key=f"invoice:{invoice.id}:commission.clawed_back",
            now=now,
        )


#: Payout states that are announced, and as what.
_PAYOUT_EVENTS = {
    "awaiting_approval": EventType.PAYOUT_REQUESTED,
    "approved": EventType.PAYOUT_REQUESTED,
    "paid": EventType.PAYOUT_PAID,
    "failed": EventType.PAYOUT_FAILED,
}


async def payout_changed(session: AsyncSession, payout: payloads.PayoutRow, now: datetime) -> None:
    """payout.requested (once, whether it waits for approval or not), payout.paid,
    payout.failed."""
    event = _PAYOUT_EVENTS.get(str(payout.status))
    if event is None:
        return
    await record(
        session,
        event,
        payloads.payout(payout),
        dedupe_key=f"payout:{payout.id}:{event.value}",
        now=now,
    )
