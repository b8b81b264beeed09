"""All payments SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import insert_ignore
from satshare.payments.models import OPEN_STATUSES, Invoice, Payment, WebhookDelivery


async def get_invoice(
    session: AsyncSession, invoice_id: str, *, lock: bool = False
) -> Invoice | None:
    query = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def invoice_by_provider_id(
    session: AsyncSession, provider: str, provider_invoice_id: str
) -> Invoice | None:
    result = await session.execute(
        select(Invoice).where(
            Invoice.provider == provider, Invoice.provider_invoice_id == provider_invoice_id
        )
    )
    return result.scalar_one_or_none()


async def latest_invoice_of(session: AsyncSession, subscription_id: int) -> Invoice | None:
    result = await session.execute(
        select(Invoice)
        .where(Invoice.subscription_id == subscription_id)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def invoices_to_reconcile(
    session: AsyncSession, *, late_after: datetime, limit: int
) -> Sequence[Invoice]:
    """Open invoices, and expired ones still inside the late-payment window."""
    result = await session.execute(
        select(Invoice)
        .where(
            or_(
                Invoice.status.in_(OPEN_STATUSES),
                (Invoice.status == "expired") & (Invoice.expires_at > late_after),
            )
        )
        .order_by(Invoice.created_at)
        .limit(limit)
    )
    return result.scalars().all()


async def payment_of_invoice(session: AsyncSession, invoice_id: str) -> Payment | None:
    result = await session.execute(select(Payment).where(Payment.invoice_id == invoice_id))
    return result.scalar_one_or_none()


async def record_delivery(
    session: AsyncSession,
    *,
    provider: str,
    provider_invoice_id: str,
    event_type: str,
    delivery_id: str | None,
    payload: str,
    now: datetime,
) -> bool:
    return await insert_ignore(
        session,
        WebhookDelivery,
        {
            "provider": provider,
            "provider_invoice_id": provider_invoice_id,
            "event_type": event_type,
            "delivery_id": delivery_id,
            "payload": payload,
            "received_at": now,
            "claimed_at": now,
        },
        ["provider", "provider_invoice_id", "event_type"],
    )


async def delivery(
    session: AsyncSession, provider: str, provider_invoice_id: str, event_type: str
) -> WebhookDelivery | None:
    result = await session.execute(
        select(WebhookDelivery).where(
            WebhookDelivery.provider == provider,
            WebhookDelivery.provider_invoice_id == provider_invoice_id,
            WebhookDelivery.event_type == event_type,
        )
    )
    return result.scalar_one_or_none()


async def reclaim_delivery(
    session: AsyncSession, delivery_id: int, *, stale_before: datetime, now: datetime
) -> bool:
    """Take over an unprocessed delivery whose claim went stale (its worker died)."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.processed_at.is_(None),
            WebhookDelivery.claimed_at < stale_before,
        )
        .values(claimed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_delivery(session: AsyncSession, delivery_id: int) -> None:
    """Forget a delivery we could not act on, so the processor's retry is processed."""
    await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.processed_at.is_(None)
        )
    )


async def finish_delivery(
    session: AsyncSession, delivery_id: int, outcome: str, now: datetime
) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(processed_at=now, outcome=outcome)
    )
