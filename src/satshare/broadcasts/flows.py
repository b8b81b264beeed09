"""Broadcast use cases: each opens its own unit of work, for the API, the CLI and the bot's
sender (``bot/broadcasts.py``), which never open one themselves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.aftercommit import CommitListener, Produced
from satshare.audit.flows import Actor, AuditedWork, audited
from satshare.broadcasts import repository, service
from satshare.broadcasts.compose import Content
from satshare.broadcasts.models import Broadcast, BroadcastStatus
from satshare.broadcasts.repository import Claimed, Progress
from satshare.broadcasts.segments import Segment
from satshare.broadcasts.service import Lease
from satshare.db import Database
from satshare.notifications import service as outbox
from satshare.notifications.messages import BroadcastPreview
from satshare.users import service as users


def _target(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


async def create(
    db: Database,
    content: Content,
    segment: Segment,
    *,
    send_at: datetime | None,
    author: str,
    now: datetime,
    by: Actor | None = None,
) -> Broadcast:
    """A draft with its recipient count. ``by``: the audit row commits with it (the panel;
    the admin API's middleware records its own calls)."""
    async with audited(db, by, "broadcast.create", now=now) as work:
        broadcast = await service.create(
            work.session, content, segment, send_at=send_at, author=author, now=now
        )
        work.target = _target(broadcast.id)
        work.after = {
            "segment": broadcast.segment,
            "recipients": broadcast.recipients,
            "send_at": broadcast.send_at,
            "languages": ["en", "ru"] if broadcast.text_ru else ["en"],
        }
        return broadcast


async def count(db: Database, segment: Segment, now: datetime) -> int:
    """How many users the segment holds now (refused: an unknown plan)."""
    async with db.reading() as session:
        return await service.preview_count(session, segment, now)


async def get(db: Database, broadcast_id: int) -> Broadcast | None:
    async with db.reading() as session:
        return await repository.get(session, broadcast_id)


async def progress(db: Database, broadcast_id: int) -> Progress:
    async with db.reading() as session:
        return await service.progress(session, broadcast_id)


async def show(db: Database, broadcast_id: int) -> tuple[Broadcast, Progress]:
    """The broadcast (404 when there is none) and its progress."""
    async with db.reading() as session:
        broadcast = await service.require(session, broadcast_id)
        return broadcast, await service.progress(session, broadcast_id)


async def listing(
    db: Database, *, limit: int, before_id: int | None = None
) -> list[tuple[Broadcast, Progress]]:
    """Broadcasts newest first, each with its progress."""
    async with db.reading() as session:
        rows = await repository.list_broadcasts(session, limit=limit, before_id=before_id)
        return [(b, await service.progress(session, b.id)) for b in rows]


def _state(work: AuditedWork, before: BroadcastStatus, broadcast: Broadcast, p: Progress) -> None:
    work.before = {"status": before.value}
    work.after = {
        "status": broadcast.status.value,
        "recipients": broadcast.recipients,
        "sent": p.sent,
        "pending": p.open,
    }


async def request_send(
    db: Database,
    broadcast_id: int,
    now: datetime,
    after_commit: CommitListener,
    *,
    by: Actor | None = None,
) -> tuple[Broadcast, Progress]:
    """Send now (the sender is woken after the commit) or at the broadcast's ``send_at``."""
    async with audited(db, by, "broadcast.send", _target(broadcast_id), now=now) as work:
        before = (await service.require(work.session, broadcast_id)).status
        broadcast = await service.request_send(work.session, broadcast_id, now)
        progress = await service.progress(work.session, broadcast_id)
        _state(work, before, broadcast, progress)
    if broadcast.status == BroadcastStatus.SENDING:
        after_commit.committed(Produced(broadcasts=True))
    return broadcast, progress


async def cancel(
    db: Database, broadcast_id: int, now: datetime, *, by: Actor | None = None
) -> tuple[Broadcast, Progress]:
    async with audited(db, by, "broadcast.cancel", _target(broadcast_id), now=now) as work:
        before = (await service.require(work.session, broadcast_id)).status
        broadcast = await service.cancel(work.session, broadcast_id, now)
        progress = await service.progress(work.session, broadcast_id)
        _state(work, before, broadcast, progress)
        return broadcast, progress


async def queue_preview(
    db: Database, broadcast_id: int, now: datetime, *, by: Actor | None = None
) -> list[str]:
    """Queue the preview (one outbox message per language the broadcast has) for the admin
    chats; return those languages. The caller rings the outbox after the commit."""
    async with audited(db, by, "broadcast.preview", _target(broadcast_id), now=now) as work:
        broadcast = await service.require(work.session, broadcast_id)
        languages = ["en", "ru"] if broadcast.text_ru else ["en"]
        for language in languages:
            await outbox.enqueue(
                work.session,
                BroadcastPreview(broadcast_id=broadcast.id, language=language),
                dedupe_key=f"broadcast:{broadcast.id}:preview:{language}:{now.isoformat()}",
                now=now,
            )
        work.after = {"languages": languages}
    return languages


# -- the sender's side -------------------------------------------------------------------


class Verdict(StrEnum):
    """What Telegram said about one recipient."""

    SENT = "sent"
    BLOCKED = "blocked"  # 403: the user is marked unreachable too
    FAILED = "failed"
    LATER = "later"  # not delivered: back to pending, due at ``at``


@dataclass(frozen=True, slots=True)
class Said:
    """One recipient's outcome, recorded with the sender's next claim."""

    recipient: Claimed
    verdict: Verdict
    now: datetime
    reason: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """The next recipients to send to (as many as asked for, or fewer), and, when fewer were
    left to claim now, when one put back for later is due again (None: nobody is left)."""

    recipients: list[Claimed]
    retry_at: datetime | None = None


async def due(db: Database, now: datetime) -> list[int]:
    async with db.reading() as session:
        return await service.due(session, now)


async def acquire(db: Database, broadcast_id: int, sender: str, now: datetime) -> Lease | None:
    async with db.transaction() as session:
        return await service.acquire(session, broadcast_id, sender, now)


async def renew(db: Database, lease: Lease, now: datetime) -> bool:
    async with db.transaction() as session:
        return await service.renew(session, lease, now)


async def close(db: Database, lease: Lease, now: datetime) -> bool:
    """Finish the broadcast when nobody is left (True), else give the lease up."""
    async with db.transaction() as session:
        finished = await service.finish(session, lease, now)
        if not finished:
            await service.release(session, lease)
        return finished


async def _record(session: AsyncSession, outcomes: Sequence[Said]) -> None:
    sent = [said.recipient for said in outcomes if said.verdict is Verdict.SENT]
    if sent:
        await service.sent(session, sent, max(said.now for said in outcomes))
    for said in outcomes:
        recipient, now = said.recipient, said.now
        if said.verdict is Verdict.BLOCKED:
            await users.mark_unreachable(session, recipient.user_id, now)
            await service.blocked(session, recipient, said.reason, now)
        elif said.verdict is Verdict.FAILED:
            await service.failed(session, recipient, said.reason, now)
        elif said.verdict is Verdict.LATER:
            assert said.at is not None
            await service.later(session, recipient, said.at, said.reason, now)


async def step(
    db: Database, lease: Lease, outcomes: Sequence[Said], claim: int, now: datetime
) -> Step:
    """Record what Telegram said about the last recipients and claim up to ``claim`` more,
    in one write transaction: the sender asks for what its idle workers need at once, so
    a slow database carries more messages per transaction, and no more claims are in flight
    than it has workers."""
    async with db.transaction() as session:
        await _record(session, outcomes)
        recipients = await service.claim(session, lease, now, claim) if claim else []
        if len(recipients) == claim:
            return Step(recipients)
        return Step(recipients, await service.next_retry_at(session, lease))
