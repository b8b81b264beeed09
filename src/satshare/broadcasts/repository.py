"""All broadcast SQL: the segments' selections, the recipient rows and their claims."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from satshare.broadcasts.models import (
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    RecipientStatus,
)
from satshare.broadcasts.segments import Segment, SegmentKind
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.users.models import User

PLATFORM = "telegram"
#: Invoices that were paid (a refund does not make a buyer someone who never paid).
PAID = (InvoiceStatus.SETTLED, InvoiceStatus.REFUNDING, InvoiceStatus.REFUNDED)
INSERT_BATCH = 1000


def _current(now: datetime, plan_id: str | None) -> Any:
    """An active subscription of the user (to ``plan_id``, if given) that has not ended."""
    condition = and_(
        Subscription.user_id == User.id,
        Subscription.status == SubscriptionStatus.ACTIVE,
        Subscription.ends_at > now,
    )
    if plan_id is not None:
        condition = and_(condition, Subscription.plan_id == plan_id)
    return condition


def _segment_query(segment: Segment, now: datetime) -> Any:
    """The segment's users as (id, external_id, language)."""
    query: Any = select(User.id, User.external_id, User.language).where(
        User.platform == PLATFORM, User.unreachable_at.is_(None)
    )
    if segment.language is not None:
        query = query.where(User.language == segment.language)
    kind = segment.kind
    if kind == SegmentKind.ACTIVE:
        query = query.where(exists().where(_current(now, segment.plan_id)))
    elif kind == SegmentKind.EXPIRING:
        assert segment.days is not None
        query = query.where(
            exists().where(
                _current(now, segment.plan_id),
                Subscription.ends_at <= now + timedelta(days=segment.days),
            )
        )
    elif kind == SegmentKind.EXPIRED:
        lapsed = and_(
            Subscription.user_id == User.id,
            or_(
                Subscription.status == SubscriptionStatus.EXPIRED,
                and_(
                    Subscription.status == SubscriptionStatus.ACTIVE,
                    Subscription.ends_at <= now,
                ),
            ),
        )
        if segment.plan_id is not None:
            lapsed = and_(lapsed, Subscription.plan_id == segment.plan_id)
        current = aliased(Subscription)
        renewed = and_(
            current.user_id == User.id,
            current.status == SubscriptionStatus.ACTIVE,
            current.ends_at > now,
        )
        if segment.plan_id is not None:
            renewed = and_(renewed, current.plan_id == segment.plan_id)
        query = query.where(exists().where(lapsed), ~exists().where(renewed))
    elif kind == SegmentKind.NEVER_PAID:
        query = query.where(~exists().where(Invoice.user_id == User.id, Invoice.status.in_(PAID)))
    elif kind == SegmentKind.AFFILIATES:
        referral = aliased(User)
        query = query.where(exists().where(referral.referrer_id == User.id))
    # ALL and LANGUAGE: the base query (LANGUAGE's language is applied above).
    return query


def _telegram_chat(external_id: str | None) -> int | None:
    """A Telegram user's chat id is their user id; other ids (set through the API) are not."""
    value = (external_id or "").strip()
    if value.isascii() and value.isdigit() and 0 < int(value) < 2**63:
        return int(value)
    return None


async def count_segment(session: AsyncSession, segment: Segment, now: datetime) -> int:
    rows = await session.execute(_segment_query(segment, now))
    return sum(1 for _, external_id, _ in rows if _telegram_chat(external_id) is not None)


async def add(session: AsyncSession, broadcast: Broadcast) -> Broadcast:
    session.add(broadcast)
    await session.flush()
    return broadcast


async def get(session: AsyncSession, broadcast_id: int, *, lock: bool = False) -> Broadcast | None:
    query = select(Broadcast).where(Broadcast.id == broadcast_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_broadcasts(
    session: AsyncSession, *, limit: int, before_id: int | None = None
) -> Sequence[Broadcast]:
    query = select(Broadcast)
    if before_id is not None:
        query = query.where(Broadcast.id < before_id)
    result = await session.execute(query.order_by(Broadcast.id.desc()).limit(limit))
    return result.scalars().all()


async def materialise(session: AsyncSession, broadcast: Broadcast, now: datetime) -> int:
    """One recipient row per member of the segment, as it is now. Returns how many."""
    segment = Segment.from_json(broadcast.segment)
    rows = await session.execute(_segment_query(segment, now).order_by(User.id))
    values = [
        {
            "broadcast_id": broadcast.id,
            "user_id": user_id,
            "chat_id": chat_id,
            "language": language,
            "status": RecipientStatus.PENDING,
            "attempts": 0,
        }
        for user_id, external_id, language in rows
        if (chat_id := _telegram_chat(external_id)) is not None
    ]
    table: Any = BroadcastRecipient.__table__
    for start in range(0, len(values), INSERT_BATCH):
        await session.execute(table.insert(), values[start : start + INSERT_BATCH])
    return len(values)


@dataclass(frozen=True, slots=True)
class Progress:
    pending: int = 0
    sending: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0

    @property
    def open(self) -> int:
        return self.pending + self.sending


async def progress(session: AsyncSession, broadcast_id: int) -> Progress:
    result = await session.execute(
        select(BroadcastRecipient.status, func.count())
        .where(BroadcastRecipient.broadcast_id == broadcast_id)
        .group_by(BroadcastRecipient.status)
    )
    counts = {str(status): count for status, count in result.all()}
    return Progress(**{status.value: counts.get(status.value, 0) for status in RecipientStatus})


async def due(session: AsyncSession, now: datetime) -> Sequence[int]:
    """Broadcasts a sender should take: scheduled ones whose time has come, and sending ones
    nobody holds (a sender died, or the service restarted)."""
    result = await session.execute(
        select(Broadcast.id)
        .where(
            or_(
                (Broadcast.status == BroadcastStatus.SCHEDULED) & (Broadcast.send_at <= now),
                (Broadcast.status == BroadcastStatus.SENDING)
                & or_(Broadcast.lease_until.is_(None), Broadcast.lease_until < now),
            )
        )
        .order_by(Broadcast.id)
    )
    return result.scalars().all()


async def fail_interrupted(session: AsyncSession, broadcast_id: int, now: datetime) -> int:
    """A previous sender's claims it never resolved: they may have reached Telegram, so
    they are not sent again."""
    result = await session.execute(
        update(BroadcastRecipient)
        .where(
            BroadcastRecipient.broadcast_id == broadcast_id,
            BroadcastRecipient.status == RecipientStatus.SENDING,
        )
        .values(
            status=RecipientStatus.FAILED,
            error="interrupted while sending; not sent again so nobody gets it twice",
            sent_at=now,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    user_id: int
    chat_id: int
    language: str
    attempts: int


async def claim(
    session: AsyncSession, broadcast_id: int, sender: str, now: datetime, limit: int
) -> list[Claimed]:
    """Take up to ``limit`` recipients due for sending, in order, while ``sender`` holds the
    broadcast and it is still being sent (a cancel stops the next claim). One statement: the
    rows are chosen and marked ``sending`` in the same ``UPDATE … RETURNING`` (senders skip
    each other's rows: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer at a
    time)."""
    holding = exists().where(
        Broadcast.id == broadcast_id,
        Broadcast.status == BroadcastStatus.SENDING,
        Broadcast.sender == sender,
    )
    row = BroadcastRecipient
    chosen = (
        select(row.id)
        .where(
            holding,
            row.broadcast_id == broadcast_id,
            row.status == RecipientStatus.PENDING,
            or_(row.next_attempt_at.is_(None), row.next_attempt_at <= now),
        )
        .order_by(row.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(row)
        .where(row.id.in_(chosen.scalar_subquery()))
        .values(status=RecipientStatus.SENDING, attempts=row.attempts + 1)
        .returning(row.id, row.user_id, row.chat_id, row.language, row.attempts)
        .execution_options(synchronize_session=False)
    )
    return sorted((Claimed(*claimed) for claimed in result.all()), key=lambda c: c.id)


async def next_retry_at(session: AsyncSession, broadcast_id: int) -> datetime | None:
    """When the earliest recipient put back for later (a 429, a network error) is due."""
    result = await session.execute(
        select(func.min(BroadcastRecipient.next_attempt_at)).where(
            BroadcastRecipient.broadcast_id == broadcast_id,
            BroadcastRecipient.status == RecipientStatus.PENDING,
        )
    )
    value: datetime | None = result.scalar_one()
    return value


async def mark_sent(session: AsyncSession, recipient_ids: Sequence[int], now: datetime) -> None:
    """Telegram accepted the message to each of these recipients (one statement for all)."""
    await session.execute(
        update(BroadcastRecipient)
        .where(BroadcastRecipient.id.in_(recipient_ids))
        .values(status=RecipientStatus.SENT, error=None, sent_at=now)
    )


async def resolve(
    session: AsyncSession,
    recipient_id: int,
    status: RecipientStatus,
    now: datetime,
    *,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "error": error[:500] if error else None}
    if status == RecipientStatus.PENDING:
        values["next_attempt_at"] = next_attempt_at
    else:
        values["sent_at"] = now
    await session.execute(
        update(BroadcastRecipient).where(BroadcastRecipient.id == recipient_id).values(**values)
    )
