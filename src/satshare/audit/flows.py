"""The audit log's use cases for the adapters, each in its own unit of work: record an
action that happened in another transaction (the admin API's writes, a CLI command, a
login), and search the log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from satshare.audit import repository, service
from satshare.audit.models import AuditEvent, Channel
from satshare.clock import Clock
from satshare.db import Database


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
