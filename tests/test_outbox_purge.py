"""The outbox keeps what is still to do and forgets what was sent long ago (#15): three rows
a sale used to stay for ever (2.5M rows, 820 MB at a million payments)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import event, select

from satshare.clock import FrozenClock
from satshare.config import NotificationSettings
from satshare.db import Database
from satshare.jobs import catalogue
from satshare.notifications import flows as outbox
from satshare.notifications import service
from satshare.notifications.messages import WebhookFailing
from satshare.notifications.models import OutboxMessage
from satshare.subscriptions import reminders
from tests.conftest import BTCPaySim, Stack, close_stack, open_stack
from tests.helpers import buy, create_user

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def queue(db: Database, key: str, status: str, sent_at: datetime | None) -> None:
    """One row as a sender would have left it."""
    message = WebhookFailing(endpoint_id=1, url="https://example.com/hook", since=NOW)
    async with db.transaction() as session:
        assert await service.enqueue(session, message, dedupe_key=key, now=NOW - timedelta(days=90))
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        assert row is not None
        row.status, row.sent_at = status, sent_at


async def keys(db: Database) -> set[str]:
    async with db.reading() as session:
        return set((await session.scalars(select(OutboxMessage.dedupe_key))).all())


async def test_only_rows_done_before_the_cutoff_are_deleted_in_batches(db: Database) -> None:
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=2)
    for n in range(5):  # more than one batch of 2
        await queue(db, f"sent-old-{n}", "sent", old)
    await queue(db, "skipped-old", "skipped", old)
    await queue(db, "sent-recent", "sent", recent)
    await queue(db, "pending", "pending", None)
    await queue(db, "sending", "sending", None)
    await queue(db, "failed-old", "failed", None)  # an operator looks at these: kept

    purged = await outbox.purge_delivered(db, NOW - timedelta(days=30), batch=2)

    assert purged == 6
    assert await keys(db) == {"sent-recent", "pending", "sending", "failed-old"}
    assert await outbox.purge_delivered(db, NOW - timedelta(days=30), batch=2) == 0


def test_retention_outlives_the_longest_reminder() -> None:
    """A reminder's dedupe key must outlive the days in which it could be queued again, or
    a purge would let the same reminder go out twice."""
    assert NotificationSettings().outbox_retention == timedelta(days=30)
    assert NotificationSettings(keep_sent_days=1).outbox_retention == timedelta(days=8)
    long = NotificationSettings(keep_sent_days=10, reminder_days=[60, 1])
    assert long.outbox_retention == timedelta(days=61)
    with pytest.raises(ValidationError, match="keep_sent_days"):
        NotificationSettings(keep_sent_days=0)


@pytest.fixture
async def clocked(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[tuple[Stack, FrozenClock]]:
    clock = FrozenClock(NOW)
    running = await open_stack(
        database_url, btcpay, clock=clock, notifications={"keep_sent_days": 10}
    )
    yield running, clock
    await close_stack(running)


async def test_housekeeping_purges_after_the_configured_days(
    clocked: tuple[Stack, FrozenClock],
) -> None:
    stack, clock = clocked
    await queue(stack.db, "sent-11-days-ago", "sent", NOW - timedelta(days=11))
    await queue(stack.db, "sent-9-days-ago", "sent", NOW - timedelta(days=9))
    [housekeeping] = [
        job for job in catalogue(stack.container, None) if job.name == "satshare.housekeeping"
    ]

    await housekeeping.run()
    assert await keys(stack.db) >= {"sent-9-days-ago"}
    assert "sent-11-days-ago" not in await keys(stack.db)

    clock.advance(timedelta(days=2))
    await housekeeping.run()
    assert not {"sent-9-days-ago", "sent-11-days-ago"} & await keys(stack.db)


async def test_reminders_due_at_once_are_one_statement_and_queued_once(
    clocked: tuple[Stack, FrozenClock],
) -> None:
    """A first start on a big database has thousands of reminders due: one INSERT for them
    all (it was one each), and a second run queues none again."""
    stack, clock = clocked
    for n in range(3):
        buyer = await create_user(stack.client, f"buyer{n}")
        order = await buy(stack.client, buyer["user_id"])
        await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    await stack.btcpay.emulator.wait_idle()
    clock.advance(timedelta(days=28))  # 30-day plans: two days left, the 3-day reminder
    inserts: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX"):
            inserts.append(statement)

    engine = stack.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with stack.db.transaction() as session:
            queued = await reminders.queue_reminders(session, clock.now(), [7, 3, 1])
        async with stack.db.transaction() as session:
            again = await reminders.queue_reminders(session, clock.now(), [7, 3, 1])
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert (queued, again) == (3, 0)
    assert len(inserts) == 2  # one per run, whatever the number of reminders
    reminder_keys = {k for k in await keys(stack.db) if ":reminder:3:" in k}
    assert len(reminder_keys) == 3
