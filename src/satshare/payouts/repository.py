"""Payouts' queries."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.payouts.models import Payout, PayoutStatus
from satshare.users.models import User


async def lock_user(session: AsyncSession, user_id: int) -> User | None:
    """The user's row, locked for the rest of the transaction (PostgreSQL)."""
    result = await session.execute(select(User).where(User.id == user_id).with_for_update())
    return result.scalar_one_or_none()


async def get(session: AsyncSession, payout_id: int, *, lock: bool = False) -> Payout | None:
    query = select(Payout).where(Payout.id == payout_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def claim_approved(session: AsyncSession, payout_id: int, now: datetime) -> bool:
    """approved → sending, only if it is still approved (a conditional update)."""
    result = await session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.status == PayoutStatus.APPROVED)
        .values(status=PayoutStatus.SENDING, sent_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def unknown_unescalated(
    session: AsyncSession, sent_before: datetime, limit: int = 100
) -> Sequence[Payout]:
    """Payouts unknown since before ``sent_before`` that admins were not alerted about, locked."""
    result = await session.execute(
        select(Payout)
        .where(
            Payout.status == PayoutStatus.UNKNOWN,
            Payout.escalated_at.is_(None),
            Payout.sent_at <= sent_before,
        )
        .order_by(Payout.id)
        .limit(limit)
        .with_for_update()
    )
    return result.scalars().all()


async def list_payouts(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    user_id: int | None = None,
    status: PayoutStatus | None = None,
) -> Sequence[Payout]:
    query = select(Payout).order_by(Payout.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Payout.id < before_id)
    if user_id is not None:
        query = query.where(Payout.user_id == user_id)
    if status is not None:
        query = query.where(Payout.status == status)
    return (await session.execute(query)).scalars().all()


async def awaiting_manual_payment(session: AsyncSession) -> Sequence[Payout]:
    """Approved payouts the owner is to pay by hand, oldest first."""
    result = await session.execute(
        select(Payout)
        .where(Payout.status == PayoutStatus.APPROVED, Payout.provider == "manual")
        .order_by(Payout.id)
    )
    return result.scalars().all()


async def due_for_sending(session: AsyncSession, limit: int = 50) -> Sequence[int]:
    result = await session.execute(
        select(Payout.id)
        .where(Payout.status == PayoutStatus.APPROVED)
        .order_by(Payout.id)
        .limit(limit)
    )
    return result.scalars().all()


async def due_for_check(
    session: AsyncSession,
    now: datetime,
    send_grace: timedelta,
    limit: int,
    watch_released: timedelta,
) -> Sequence[int]:
    """Payouts whose fate must be asked of the provider, longest-waiting first: unknown ones
    when their re-check is due; sends in flight longer than the provider call can take (a
    crash mid-call); released ones still watched for a late payment."""
    due = or_(Payout.next_check_at.is_(None), Payout.next_check_at <= now)
    result = await session.execute(
        select(Payout.id)
        .where(
            or_(
                (Payout.status == PayoutStatus.UNKNOWN) & due,
                (Payout.status == PayoutStatus.SENDING)
                & (Payout.sent_at <= now - send_grace)
                & due,
                (Payout.status == PayoutStatus.FAILED)
                & (Payout.next_check_at <= now)
                & (Payout.completed_at > now - watch_released),
            )
        )
        .order_by(Payout.next_check_at.asc().nulls_first(), Payout.id)
        .limit(limit)
    )
    return result.scalars().all()


async def sum_amounts(
    session: AsyncSession, user_id: int, statuses: Collection[PayoutStatus]
) -> int:
    """The sum of the user's payouts in these states."""
    result = await session.execute(
        select(func.coalesce(func.sum(Payout.amount_sats), 0)).where(
            Payout.user_id == user_id, Payout.status.in_(statuses)
        )
    )
    return int(result.scalar_one())
