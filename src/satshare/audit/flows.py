"""The audit log's use cases: ``audited``, the unit of work in which a change and its audit
row commit together (the domains' flows for the panel and ``satshare admin`` use it); record
an action that happened in another transaction (the admin API's writes, a CLI command);
search the log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.audit import repository, service
from satshare.audit.models import AuditEvent, Channel
from satshare.clock import Clock
from satshare.db import Database


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, as the audit log names them: where from, their name and their role (an admin
    role for the panel; empty for the command line)."""

    channel: Channel
    name: str
    role: str = ""


@dataclass(slots=True)
class AuditedWork:
    """A change under way inside ``audited``: the session and time to make it with, and what
    its audit row will say. The flow fills in ``before``/``after`` (and ``target`` when only
    the change tells it) as it learns them."""

    session: AsyncSession
    now: datetime
    target: str
    before: Mapping[str, object] | None = None
    after: Mapping[str, object] | None = None
    reason: str = ""


@asynccontextmanager
async def audited(
    db: Database,
    by: Actor | None,
    action: str,
    target: str = "",
    *,
    now: datetime,
    reason: str = "",
) -> AsyncIterator[AuditedWork]:
    """One unit of work for a change and its audit row: both commit, or (on any error)
    neither. ``by=None`` writes no row: for callers whose own channel records the action
    once it has succeeded (the admin API's middleware, the CLI's ``audited`` decorator)."""
    async with db.transaction() as session:
        work = AuditedWork(session, now, target, reason=reason)
        yield work
        if by is not None:
            await service.record(
                session,
                channel=by.channel,
                actor=by.name,
                role=by.role,
                action=action,
                target=work.target,
                before=work.before,
                after=work.after,
                reason=work.reason,
                now=now,
            )


async def record(
    db: Database,
    clock: Clock,
    *,
    channel: Channel,
    actor: str,
    role: str,
    action: str,
    target: str = "",
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
    reason: str | None = None,
) -> None:
    """One row in its own transaction, after the change it describes has committed."""
    async with db.transaction(effect=False) as session:
        await service.record(
            session,
            channel=channel,
            actor=actor,
            role=role,
            action=action,
            target=target,
            before=before,
            after=after,
            reason=reason,
            now=clock.now(),
        )


async def search(
    db: Database,
    *,
    text: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> Sequence[AuditEvent]:
    async with db.reading() as session:
        return await repository.search(
            session,
            text=text,
            action=action,
            since=since,
            until=until,
            limit=limit,
            before_id=before_id,
        )
