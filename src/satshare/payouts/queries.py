"""Payout reads (lists, what is due, totals) and the affiliate's saved destination."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import NotFound
from satshare.payouts import repository
from satshare.payouts.destinations import Destination, DestinationKind, InvalidDestination
from satshare.payouts.models import OPEN_STATUSES, PayoutDestination, PayoutStatus
from satshare.payouts.policy import WATCH_RELEASED
from satshare.payouts.repository import awaiting_manual_payment as awaiting_manual_payment
from satshare.payouts.repository import due_for_sending as due_for_sending
from satshare.payouts.repository import list_payouts as list_payouts
from satshare.users.models import User

# -- reads ------------------------------------------------------------------------------


async def due_for_check(
    session: AsyncSession,
    now: datetime,
    send_grace: timedelta,
    limit: int = 50,
    watch_released: timedelta = WATCH_RELEASED,
) -> Sequence[int]:
    """Payouts whose fate must be asked of the provider (see the repository's query)."""
    return await repository.due_for_check(session, now, send_grace, limit, watch_released)


@dataclass(frozen=True, slots=True)
class PayoutTotals:
    paid_sats: int
    in_flight_sats: int


async def totals(session: AsyncSession, user_id: int) -> PayoutTotals:
    paid = await repository.sum_amounts(session, user_id, (PayoutStatus.PAID,))
    in_flight = await repository.sum_amounts(session, user_id, OPEN_STATUSES)
    return PayoutTotals(paid, in_flight)


# -- saved destinations ------------------------------------------------------------------


async def saved_destination(session: AsyncSession, user_id: int) -> PayoutDestination | None:
    return await session.get(PayoutDestination, user_id)


async def save_destination(
    session: AsyncSession, user_id: int, destination: Destination, now: datetime
) -> PayoutDestination:
    if destination.kind is DestinationKind.BOLT11:
        raise InvalidDestination(
            "a BOLT11 invoice can be paid only once, so it cannot be saved; save a Lightning "
            "Address, LNURL or on-chain address, or give the invoice with the payout",
            field="destination",
        )
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    row = await session.get(PayoutDestination, user_id)
    if row is None:
        row = PayoutDestination(user_id=user_id, kind=destination.kind.value, value="")
        session.add(row)
    row.kind, row.value, row.updated_at = destination.kind.value, destination.value, now
    await session.flush()
    return row


async def forget_destination(session: AsyncSession, user_id: int) -> None:
    row = await session.get(PayoutDestination, user_id)
    if row is not None:
        await session.delete(row)
        await session.flush()
