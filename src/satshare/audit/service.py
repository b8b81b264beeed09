"""Recording an action: one row, in the caller's transaction, so it commits (or not)
together with the change it describes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.audit import repository
from satshare.audit.models import AuditEvent, Channel

#: Longest reason kept (the panel's and the API's fields are bounded far below this).
MAX_REASON = 2000


def _plain(values: Mapping[str, object] | None) -> dict[str, object] | None:
    """JSON-safe copy: datetimes and enums become strings."""
    if values is None:
        return None
    return {key: json.loads(json.dumps(value, default=str)) for key, value in values.items()}


async def record(
    session: AsyncSession,
    *,
    channel: Channel,
    actor: str,
    role: str,
    action: str,
    target: str = "",
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
    reason: str | None = None,
    now: datetime,
) -> AuditEvent:
    return await repository.add(
        session,
        AuditEvent(
            created_at=now,
            channel=channel,
            actor=actor[:128],
            role=role[:16],
            action=action[:64],
            target=target[:128],
            before=_plain(before),
            after=_plain(after),
            reason=(reason or "")[:MAX_REASON],
        ),
    )


CSV_COLUMNS = (
    "id",
    "when",
    "channel",
    "actor",
    "role",
    "action",
    "target",
    "before",
    "after",
    "reason",
)


def _cell(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: quote them."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def as_csv(events: Sequence[AuditEvent]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow(
            [
                event.id,
                event.created_at.isoformat(),
                event.channel.value,
                _cell(event.actor),
                event.role,
                event.action,
                _cell(event.target),
                json.dumps(event.before, sort_keys=True) if event.before is not None else "",
                json.dumps(event.after, sort_keys=True) if event.after is not None else "",
                _cell(event.reason),
            ]
        )
    return buffer.getvalue()
