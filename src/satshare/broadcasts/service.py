"""Broadcast rules: compose (with the recipient count), send now or at ``send_at``, cancel,
and the sender's side — one sender per broadcast at a time (a lease), one claim per recipient.
Never commits: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.broadcasts import repository
from satshare.broadcasts.compose import Content
from satshare.broadcasts.models import Broadcast, BroadcastStatus, RecipientStatus
from satshare.broadcasts.repository import Claimed, Progress
from satshare.broadcasts.segments import Segment
from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.plans import service as plans

#: How long a sender holds a broadcast without renewing; another takes over after that.
LEASE = timedelta(seconds=120)


async def _check_plan(session: AsyncSession, segment: Segment) -> None:
    if segment.plan_id is not None and await plans.get(session, segment.plan_id) is None:
        raise InvalidRequest(f"unknown plan {segment.plan_id!r}", field="segment.plan_id")


async def preview_count(session: AsyncSession, segment: Segment, now: datetime) -> int:
    await _check_plan(session, segment)
    return await repository.count_segment(session, segment, now)


async def create(
    session: AsyncSession,
    content: Content,
    segment: Segment,
    *,
    send_at: datetime | None,
    author: str,
    now: datetime,
) -> Broadcast:
    """A draft, with the number of users the segment holds now."""
    count = await preview_count(session, segment, now)
    broadcast = Broadcast(
        text=content.text,
        text_ru=content.text_ru,
        photo=content.photo,
        buttons=content.buttons_json(),
        segment=segment.as_json(),
        status=BroadcastStatus.DRAFT,
        send_at=send_at,
        recipients=count,
        created_by=author,
        created_at=now,
    )
    return await repository.add(session, broadcast)


async def require(session: AsyncSession, broadcast_id: int, *, lock: bool = False) -> Broadcast:
    broadcast = await repository.get(session, broadcast_id, lock=lock)
    if broadcast is None:
        raise NotFound(f"broadcast {broadcast_id} does not exist")
    return broadcast


def content_of(broadcast: Broadcast) -> Content:
    return Content.stored(broadcast.text, broadcast.text_ru, broadcast.photo, broadcast.buttons)


async def _start(session: AsyncSession, broadcast: Broadcast, now: datetime) -> None:
    """Choose the recipients (the segment as it is at this moment) and open delivery."""
    broadcast.recipients = await repository.materialise(session, broadcast, now)
    broadcast.status = BroadcastStatus.SENDING
    broadcast.started_at = now
    if broadcast.recipients == 0:
        broadcast.status = BroadcastStatus.DONE
        broadcast.finished_at = now
    await session.flush()


async def request_send(session: AsyncSession, broadcast_id: int, now: datetime) -> Broadcast:
    """Send a draft now, or at its ``send_at``. Asking again changes nothing."""
    broadcast = await require(session, broadcast_id, lock=True)
    if broadcast.status != BroadcastStatus.DRAFT:
        if broadcast.status == BroadcastStatus.CANCELED:
            raise Conflict(f"broadcast {broadcast_id} was canceled; compose a new one")
        return broadcast  # already scheduled, sending or done
    if broadcast.send_at is not None and broadcast.send_at > now:
        broadcast.status = BroadcastStatus.SCHEDULED
        await session.flush()
    else:
        await _start(session, broadcast, now)
    return broadcast


async def cancel(session: AsyncSession, broadcast_id: int, now: datetime) -> Broadcast:
    """Stop: nobody still pending gets it (a message already handed to Telegram is sent)."""
    broadcast = await require(session, broadcast_id, lock=True)
    if broadcast.status == BroadcastStatus.DONE:
        raise Conflict(f"broadcast {broadcast_id} has already been sent to everyone")
    if broadcast.status != BroadcastStatus.CANCELED:
        broadcast.status = BroadcastStatus.CANCELED
        broadcast.finished_at = now
        await session.flush()
    return broadcast


async def progress(session: AsyncSession, broadcast_id: int) -> Progress:
    return await repository.progress(session, broadcast_id)


# -- the sender's side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lease:
    broadcast_id: int
    sender: str
    content: Content
    #: Claims left by an earlier sender and marked failed on taking over.
    interrupted: int = 0


async def due(session: AsyncSession, now: datetime) -> list[int]:
    return list(await repository.due(session, now))


async def acquire(
    session: AsyncSession, broadcast_id: int, sender: str, now: datetime
) -> Lease | None:
    """Hold the broadcast for ``sender`` (starting it if its time has come), or None when it
    is not to be sent now or another sender holds it."""
    broadcast = await require(session, broadcast_id, lock=True)
    if broadcast.status == BroadcastStatus.SCHEDULED:
        if broadcast.send_at is not None and broadcast.send_at > now:
            return None
        await _start(session, broadcast, now)
    if broadcast.status != BroadcastStatus.SENDING:
        return None
    held_by_other = (
        broadcast.sender not in (None, sender)
        and broadcast.lease_until is not None
        and broadcast.lease_until >= now
    )
    if held_by_other:
        return None
    interrupted = 0
    if broadcast.sender != sender:
        # Whoever held it before is gone: its unresolved claims are not retried.
        interrupted = await repository.fail_interrupted(session, broadcast_id, now)
    broadcast.sender = sender
    broadcast.lease_until = now + LEASE
    await session.flush()
    return Lease(broadcast_id, sender, content_of(broadcast), interrupted)


async def renew(session: AsyncSession, lease: Lease, now: datetime) -> bool:
    """Extend the lease; False when the broadcast was canceled or taken over."""
    broadcast = await require(session, lease.broadcast_id, lock=True)
    if broadcast.status != BroadcastStatus.SENDING or broadcast.sender != lease.sender:
        return False
    broadcast.lease_until = now + LEASE
    return True


async def claim(session: AsyncSession, lease: Lease, now: datetime, limit: int) -> list[Claimed]:
    return await repository.claim(session, lease.broadcast_id, lease.sender, now, limit)


async def next_retry_at(session: AsyncSession, lease: Lease) -> datetime | None:
    return await repository.next_retry_at(session, lease.broadcast_id)


async def sent(session: AsyncSession, recipients: Sequence[Claimed], now: datetime) -> None:
    if recipients:
        await repository.mark_sent(session, [r.id for r in recipients], now)


async def blocked(session: AsyncSession, recipient: Claimed, reason: str, now: datetime) -> None:
    await repository.resolve(session, recipient.id, RecipientStatus.BLOCKED, now, error=reason)


async def failed(session: AsyncSession, recipient: Claimed, reason: str, now: datetime) -> None:
    await repository.resolve(session, recipient.id, RecipientStatus.FAILED, now, error=reason)


async def later(
    session: AsyncSession, recipient: Claimed, at: datetime, reason: str, now: datetime
) -> None:
    """Not delivered (Telegram said so): back to pending, due at ``at``."""
    await repository.resolve(
        session, recipient.id, RecipientStatus.PENDING, now, error=reason, next_attempt_at=at
    )


async def finish(session: AsyncSession, lease: Lease, now: datetime) -> bool:
    """Close the broadcast when no recipient is left; True if it is done."""
    broadcast = await require(session, lease.broadcast_id, lock=True)
    if broadcast.status != BroadcastStatus.SENDING or broadcast.sender != lease.sender:
        return broadcast.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELED)
    if (await repository.progress(session, lease.broadcast_id)).open:
        return False
    broadcast.status = BroadcastStatus.DONE
    broadcast.finished_at = now
    broadcast.sender = None
    broadcast.lease_until = None
    return True


async def release(session: AsyncSession, lease: Lease) -> None:
    """Give the broadcast up (the sender stops): another sender may take it at once."""
    broadcast = await require(session, lease.broadcast_id, lock=True)
    if broadcast.sender == lease.sender:
        broadcast.sender = None
        broadcast.lease_until = None
