"""Broadcasts (#13): each segment's recipients, delivery through the Telegram emulator at the
bot's rate (429 honoured, 403 marks the user unreachable), once per recipient across a
killed sender, cancel and schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from satshare.bot.broadcasts import BroadcastSender, GroupedSteps
from satshare.broadcasts import flows, service
from satshare.broadcasts.compose import Button, Content
from satshare.broadcasts.models import BroadcastRecipient, BroadcastStatus, RecipientStatus
from satshare.broadcasts.segments import Segment, SegmentKind
from satshare.errors import Conflict, InvalidRequest
from satshare.subscriptions.models import SubscriptionStatus
from satshare.users import repository as users_repo
from tests.broadcastkit import Rig, close_rig, open_rig

ACTIVE, EXPIRED = SubscriptionStatus.ACTIVE, SubscriptionStatus.EXPIRED
DAY = timedelta(days=1)


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    running = await open_rig(database_url)
    yield running
    await close_rig(running)


async def _population(rig: Rig) -> None:
    """Who is who (Telegram ids):
    1 active monthly, ends in 20 days; 2 active yearly, ends in 2 days (ru);
    3 expired monthly, not renewed; 4 expired monthly, renewed on yearly (ends in 100 days);
    5 registered, never paid, referred by 1 (so 1 is an affiliate); 6 never paid, ru,
    blocked the bot; 7 a website user (not on Telegram); 8 an invoice that expired unpaid.
    """
    await rig.user(1)
    await rig.user(2, language="ru")
    await rig.user(3)
    await rig.user(4)
    await rig.user(5, referrer=1)
    await rig.user(6, language="ru")
    await rig.user(7, platform="website")
    await rig.user(8)
    await rig.subscription(1, "monthly", ACTIVE, 20 * DAY)
    await rig.subscription(2, "yearly", ACTIVE, 2 * DAY)
    await rig.subscription(3, "monthly", EXPIRED, -5 * DAY)
    await rig.subscription(4, "monthly", EXPIRED, -5 * DAY)
    await rig.subscription(4, "yearly", ACTIVE, 100 * DAY)
    await rig.subscription(8, "monthly", SubscriptionStatus.PENDING, None, paid=False)
    async with rig.db.transaction() as session:
        from satshare.users import service as users

        await users.mark_unreachable(session, rig.users[6], rig.clock.now())


SEGMENTS = [
    (Segment(SegmentKind.ALL), {1, 2, 3, 4, 5, 8}),
    (Segment(SegmentKind.ALL, language="ru"), {2}),
    (Segment(SegmentKind.ACTIVE), {1, 2, 4}),
    (Segment(SegmentKind.ACTIVE, plan_id="yearly"), {2, 4}),
    (Segment(SegmentKind.EXPIRING, days=3), {2}),
    (Segment(SegmentKind.EXPIRING, days=30), {1, 2}),
    (Segment(SegmentKind.EXPIRING, days=30, plan_id="monthly"), {1}),
    (Segment(SegmentKind.EXPIRED), {3}),
    (Segment(SegmentKind.EXPIRED, plan_id="monthly"), {3, 4}),
    (Segment(SegmentKind.NEVER_PAID), {5, 8}),
    (Segment(SegmentKind.LANGUAGE, language="en"), {1, 3, 4, 5, 8}),
    (Segment(SegmentKind.AFFILIATES), {1}),
]


async def _recipients(rig: Rig, broadcast_id: int) -> dict[int, BroadcastRecipient]:
    async with rig.db.reading() as session:
        rows = (
            await session.execute(
                select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id)
            )
        ).scalars()
        return {row.chat_id: row for row in rows}


async def _compose(
    rig: Rig, segment: Segment, content: Content | None = None, **kwargs: object
) -> int:
    async with rig.db.transaction() as session:
        broadcast = await service.create(
            session,
            content or Content("Hello <b>all</b>", text_ru="Привет <b>всем</b>"),
            segment,
            send_at=kwargs.get("send_at"),  # type: ignore[arg-type]
            author="test",
            now=rig.clock.now(),
        )
    return broadcast.id


async def _send(rig: Rig, broadcast_id: int) -> None:
    async with rig.db.transaction() as session:
        await service.request_send(session, broadcast_id, rig.clock.now())


async def test_each_segment_counts_and_chooses_exactly_its_members(rig: Rig) -> None:
    await _population(rig)
    for segment, expected in SEGMENTS:
        broadcast_id = await _compose(rig, segment)
        async with rig.db.reading() as session:
            counted = (await service.require(session, broadcast_id)).recipients
        await _send(rig, broadcast_id)
        chosen = set(await _recipients(rig, broadcast_id))
        assert chosen == expected, segment
        assert counted == len(expected), segment


async def test_segment_rules_refuse_what_they_do_not_take(rig: Rig) -> None:
    with pytest.raises(InvalidRequest, match="needs days"):
        Segment(SegmentKind.EXPIRING)
    with pytest.raises(InvalidRequest, match="does not take plan_id"):
        Segment(SegmentKind.NEVER_PAID, plan_id="monthly")
    with pytest.raises(InvalidRequest, match="needs language"):
        Segment(SegmentKind.LANGUAGE)
    with pytest.raises(InvalidRequest, match="unknown plan 'nope'"):
        await _compose(rig, Segment(SegmentKind.ACTIVE, plan_id="nope"))


async def test_delivery_once_each_in_their_language_403_marks_unreachable(rig: Rig) -> None:
    await _population(rig)
    rig.telegram.users[3].blocked_bot = True
    content = Content(
        "Hello <b>all</b>",
        text_ru="Привет <b>всем</b>",
        buttons=(Button("Open", "https://example.com/x", text_ru="Открыть"),),
    )
    broadcast_id = await _compose(rig, Segment(SegmentKind.ALL), content)
    await _send(rig, broadcast_id)
    sender = BroadcastSender(rig.db, rig.clock, rig.bot)
    delivery = await sender.deliver(broadcast_id)
    assert delivery.finished and (delivery.sent, delivery.blocked, delivery.failed) == (5, 1, 0)
    for telegram_id in (1, 4, 5, 8):
        [message] = rig.received(telegram_id)
        assert message.text == "Hello <b>all</b>" and message.parse_mode == "HTML"
        assert message.buttons() == [{"text": "Open", "url": "https://example.com/x"}]
    [russian] = rig.received(2)
    assert russian.text == "Привет <b>всем</b>"
    assert russian.buttons()[0]["text"] == "Открыть"
    assert rig.received(3) == [] and rig.received(6) == [] and rig.received(7) == []
    rows = await _recipients(rig, broadcast_id)
    assert rows[3].status == RecipientStatus.BLOCKED
    async with rig.db.reading() as session:
        blocked = await users_repo.get(session, rig.users[3])
        assert blocked is not None and blocked.unreachable_at is not None
        broadcast = await service.require(session, broadcast_id)
        progress = await service.progress(session, broadcast_id)
    assert broadcast.status == BroadcastStatus.DONE
    assert (progress.sent, progress.blocked, progress.failed, progress.open) == (5, 1, 0, 0)
    # Asked again, nothing more goes out.
    again = await BroadcastSender(rig.db, rig.clock, rig.bot).deliver(broadcast_id)
    assert not again.held and len(rig.received(1)) == 1
    assert rig.telegram.limits.refused == 0


async def test_a_photo_goes_with_the_text_as_its_caption(rig: Rig) -> None:
    await rig.user(1)
    content = Content("<i>Look</i>", photo="https://example.com/p.jpg")
    broadcast_id = await _compose(rig, Segment(SegmentKind.ALL), content)
    await _send(rig, broadcast_id)
    await BroadcastSender(rig.db, rig.clock, rig.bot).deliver(broadcast_id)
    [message] = rig.received(1)
    assert message.photo and message.caption == "<i>Look</i>"


async def test_429_is_honoured_and_everyone_gets_it_once(database_url: str) -> None:
    # The emulator allows 4 messages a second, the bot is paced at 25: Telegram refuses.
    rig = await open_rig(database_url, global_rate=4)
    try:
        for telegram_id in range(1, 13):
            await rig.user(telegram_id)
        broadcast_id = await _compose(rig, Segment(SegmentKind.ALL))
        await _send(rig, broadcast_id)
        delivery = await BroadcastSender(rig.db, rig.clock, rig.bot).deliver(broadcast_id)
        assert rig.telegram.limits.refused > 0
        assert delivery.finished and delivery.sent == 12 and delivery.failed == 0
        assert all(len(rig.received(t)) == 1 for t in range(1, 13))
    finally:
        await close_rig(rig)


async def test_a_killed_sender_is_resumed_without_sending_twice(rig: Rig) -> None:
    for telegram_id in range(1, 31):
        await rig.user(telegram_id)
    broadcast_id = await _compose(rig, Segment(SegmentKind.ALL))
    await _send(rig, broadcast_id)
    first = BroadcastSender(rig.db, rig.clock, rig.bot, workers=4)
    running: asyncio.Task[object] | None = None

    def kill_after_ten(delivery: object) -> None:
        if getattr(delivery, "sent", 0) >= 10 and running is not None:
            running.cancel()

    running = asyncio.create_task(first.deliver(broadcast_id, on_progress=kill_after_ten))
    with pytest.raises(asyncio.CancelledError):
        await running
    counts = {t: len(rig.received(t)) for t in range(1, 31)}
    assert 10 <= sum(counts.values()) < 30
    # The dead sender's lease holds the broadcast until it runs out; then another resumes.
    second = BroadcastSender(rig.db, rig.clock, rig.bot)
    assert not (await second.deliver(broadcast_id)).held
    rig.clock.advance(service.LEASE + timedelta(seconds=1))
    resumed = await second.deliver(broadcast_id)
    assert resumed.finished
    rows = await _recipients(rig, broadcast_id)
    for telegram_id in range(1, 31):
        got = len(rig.received(telegram_id))
        assert got <= 1, f"user {telegram_id} got the broadcast {got} times"
        status = rows[telegram_id].status
        # Sent, or failed because it was mid-send when the sender died (never resent).
        assert (status, got) in {
            (RecipientStatus.SENT, 1),
            (RecipientStatus.FAILED, 0),
            (RecipientStatus.FAILED, 1),
        }
    assert resumed.interrupted == sum(
        1 for r in rows.values() if r.status == RecipientStatus.FAILED
    )
    assert resumed.interrupted <= 4  # at most one claim per worker was in flight


async def test_cancel_stops_the_rest(rig: Rig) -> None:
    for telegram_id in range(1, 21):
        await rig.user(telegram_id)
    broadcast_id = await _compose(rig, Segment(SegmentKind.ALL))
    await _send(rig, broadcast_id)
    canceled = asyncio.Event()

    async def cancel() -> None:
        async with rig.db.transaction() as session:
            await service.cancel(session, broadcast_id, rig.clock.now())
        canceled.set()

    tasks: list[asyncio.Task[None]] = []

    def cancel_after_five(delivery: object) -> None:
        if getattr(delivery, "sent", 0) >= 5 and not tasks:
            tasks.append(asyncio.create_task(cancel()))

    sender = BroadcastSender(rig.db, rig.clock, rig.bot, workers=2)
    delivery = await sender.deliver(broadcast_id, on_progress=cancel_after_five)
    assert canceled.is_set()
    delivered = sum(len(rig.received(t)) for t in range(1, 21))
    assert 5 <= delivered < 20 and delivery.sent == delivered
    async with rig.db.reading() as session:
        broadcast = await service.require(session, broadcast_id)
        progress = await service.progress(session, broadcast_id)
    assert broadcast.status == BroadcastStatus.CANCELED
    assert progress.sent == delivered and progress.pending == 20 - delivered
    assert not (await BroadcastSender(rig.db, rig.clock, rig.bot).deliver(broadcast_id)).held
    with pytest.raises(Conflict):
        async with rig.db.transaction() as session:
            await service.request_send(session, broadcast_id, rig.clock.now())


async def test_a_scheduled_broadcast_waits_for_its_time_and_takes_the_segment_then(
    rig: Rig,
) -> None:
    await rig.user(1)
    broadcast_id = await _compose(
        rig, Segment(SegmentKind.ALL), send_at=rig.clock.now() + timedelta(hours=2)
    )
    await _send(rig, broadcast_id)
    sender = BroadcastSender(rig.db, rig.clock, rig.bot)
    assert await sender.run_due() == []
    await rig.user(2)  # joins before the time comes: gets it too
    rig.clock.advance(timedelta(hours=2))
    [delivery] = await sender.run_due()
    assert delivery.finished and delivery.sent == 2
    assert len(rig.received(1)) == 1 and len(rig.received(2)) == 1


async def test_waiting_workers_share_one_transaction(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: the steps of every worker waiting are one transaction, which records
    their outcomes and claims a recipient for each."""
    for telegram_id in range(1, 6):
        await rig.user(telegram_id)
    broadcast_id = await _compose(rig, Segment(SegmentKind.ALL))
    await _send(rig, broadcast_id)
    lease = await flows.acquire(rig.db, broadcast_id, "sender-test", rig.clock.now())
    assert lease is not None
    claimed_per_transaction: list[int] = []
    step = flows.step

    async def counted(*args: Any) -> flows.Step:
        claimed_per_transaction.append(args[3])
        return await step(*args)

    monkeypatch.setattr(flows, "step", counted)
    steps = GroupedSteps(rig.db, rig.clock, lease)
    first = await asyncio.gather(*(steps.step(None) for _ in range(5)))
    assert claimed_per_transaction == [5]
    assert sorted(r.chat_id for r, _ in first if r is not None) == [1, 2, 3, 4, 5]
    # Their outcomes, and no recipient left: one more transaction, nothing to retry.
    outcomes = [
        flows.Said(r, flows.Verdict.SENT, rig.clock.now()) for r, _ in first if r is not None
    ]
    last = await asyncio.gather(*(steps.step(said) for said in outcomes))
    assert claimed_per_transaction == [5, 5] and last == [(None, None)] * 5
    rows = await _recipients(rig, broadcast_id)
    assert {row.status for row in rows.values()} == {RecipientStatus.SENT}
