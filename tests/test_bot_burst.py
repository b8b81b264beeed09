"""Handlers asking the same question at once share one answer (``bot/burst.py``), and the
answers are exactly what each would have got alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from satshare.bot.burst import Burst, Bursts
from satshare.bot.models import ProcessedUpdate
from satshare.db import Database
from satshare.users import service as users
from satshare.users.models import User
from satshare.webhooks_out import service as webhooks
from satshare.webhooks_out.models import WebhookMessage
from tests.botkit import BotStack, close_bot_stack, open_bot_stack, text_of
from tests.conftest import BTCPaySim

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Recorder:
    """A batch function that records its batches and fails as told."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.bad: set[int] = set()  # items whose own answer is an error
        self.poison: set[int] = set()  # items that make the whole batch fail

    async def __call__(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(items)
        await asyncio.sleep(0.01)  # a round trip: callers arriving now wait for the next
        if self.poison.intersection(items):
            raise RuntimeError("the batch failed")
        return [ValueError(f"bad {i}") if i in self.bad else i * 10 for i in items]


async def test_concurrent_calls_share_one_run_and_each_gets_its_answer() -> None:
    recorder = Recorder()
    burst: Burst[int, int] = Burst(recorder)
    answers = await asyncio.gather(*(burst(i) for i in range(20)))
    assert answers == [i * 10 for i in range(20)]
    assert recorder.batches == [list(range(20))]
    # Alone, a call runs at once, in a batch of its own.
    assert await burst(7) == 70
    assert recorder.batches[-1] == [7]


async def test_calls_during_a_run_gather_for_the_next_one() -> None:
    recorder = Recorder()
    started, gate = asyncio.Event(), asyncio.Event()

    async def held(items: list[int]) -> list[int | Exception]:
        started.set()
        await gate.wait()  # the first batch stays in flight until the later calls are in
        return await recorder(items)

    burst: Burst[int, int] = Burst(held, max_size=4)
    first = asyncio.gather(*(burst(i) for i in range(6)))
    await started.wait()
    later = asyncio.gather(*(burst(i) for i in range(6, 9)))
    await asyncio.sleep(0)
    gate.set()
    assert await first == [0, 10, 20, 30, 40, 50]
    assert await later == [60, 70, 80]
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


async def test_an_items_own_error_reaches_that_caller_only() -> None:
    recorder = Recorder()
    recorder.bad = {3}
    burst: Burst[int, int] = Burst(recorder)
    answers = await asyncio.gather(*(burst(i) for i in range(5)), return_exceptions=True)
    assert answers[:3] == [0, 10, 20] and answers[4] == 40
    assert isinstance(answers[3], ValueError) and str(answers[3]) == "bad 3"
    assert len(recorder.batches) == 1


async def test_a_failed_batch_is_answered_item_by_item() -> None:
    """One item breaks the shared run: the others still get their answers, and the error
    reaches the one caller it belongs to."""
    recorder = Recorder()
    recorder.poison = {2}
    burst: Burst[int, int] = Burst(recorder)
    answers = await asyncio.gather(*(burst(i) for i in range(4)), return_exceptions=True)
    assert [a for i, a in enumerate(answers) if i != 2] == [0, 10, 30]
    assert isinstance(answers[2], RuntimeError)
    assert recorder.batches == [[0, 1, 2, 3], [0], [1], [2], [3]]


async def test_an_error_for_everyone_reaches_every_caller() -> None:
    async def broken(items: list[int]) -> list[int | Exception]:
        raise ConnectionError("database gone")

    burst: Burst[int, int] = Burst(broken)
    answers = await asyncio.gather(*(burst(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(a, ConnectionError) for a in answers)


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    recorder = Recorder()
    burst: Burst[int, int] = Burst(recorder)
    tasks = [asyncio.create_task(burst(i)) for i in range(5)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [done[i] for i in (0, 2, 3, 4)] == [0, 20, 30, 40]


# -- on the database ------------------------------------------------------------------------


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_duplicate_update_ids_are_fresh_once(db: Database) -> None:
    bursts = Bursts(db, lambda: NOW)
    # The same id twice in one burst (a redelivery racing its original), and again later.
    ids = [1, 2, 3, 2, 4, 1, 5]
    fresh = await asyncio.gather(*(bursts.first_sight(i) for i in ids))
    assert fresh == [True, True, True, False, True, False, True]
    assert list(await asyncio.gather(bursts.first_sight(3), bursts.first_sight(6))) == [
        False,
        True,
    ]
    async with db.reading() as session:
        stored = (await session.execute(select(ProcessedUpdate.update_id))).scalars().all()
    assert sorted(stored) == [1, 2, 3, 4, 5, 6]


async def test_concurrent_first_contacts_register_each_user_once(db: Database) -> None:
    async with db.transaction() as session:
        endpoint = webhooks.EndpointSpec(url="http://127.0.0.1:9/hook", events=["user.created"])
        await webhooks.create_endpoint(session, endpoint, NOW, allow_insecure=True)
    bursts = Bursts(db, lambda: NOW)

    def registration(telegram_id: int) -> users.Registration:
        return users.Registration(
            platform="telegram", external_id=str(telegram_id), username=f"u{telegram_id}"
        )

    # 30 users, each sending two updates at once, in one burst.
    contacts = await asyncio.gather(
        *(bursts.first_contact(registration(1000 + n % 30)) for n in range(60))
    )
    by_account: dict[str, list[bool]] = {}
    for contact in contacts:
        by_account.setdefault(contact.user.external_id or "", []).append(contact.created)
    assert {k: sorted(v) for k, v in by_account.items()} == {
        str(1000 + n): [False, True] for n in range(30)
    }
    # A second burst finds them all.
    again = await asyncio.gather(*(bursts.first_contact(registration(1000 + n)) for n in range(30)))
    assert not any(contact.created for contact in again)
    async with db.reading() as session:
        accounts = (await session.execute(select(User.external_id))).scalars().all()
        events = (
            await session.execute(
                select(WebhookMessage.dedupe_key).where(WebhookMessage.event_type == "user.created")
            )
        ).scalars()
        codes = await session.scalar(select(func.count(func.distinct(User.referral_code))))
    assert sorted(a or "" for a in accounts) == [str(1000 + n) for n in range(30)]
    user_ids = {contact.user.id for contact in contacts}
    assert sorted(events) == sorted(f"user:{user_id}:created" for user_id in user_ids)
    assert codes == 30


# -- through Telegram -----------------------------------------------------------------------


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(database_url, btcpay)
    yield stack
    await close_bot_stack(stack)


async def test_a_start_storm_answers_each_update_once(bot: BotStack) -> None:
    """Many new users at once, every /start delivered twice: one registration and one
    welcome each."""
    people = [bot.new_user(f"storm{n}") for n in range(40)]
    for person in people:
        update_id = bot.telegram.user_sends(person, "/start")
        bot.telegram.redeliver(update_id)
    for person in people:
        await bot.wait_messages(person, 1)
    for person in people:  # a later update each, to know the copies have passed
        bot.telegram.user_sends(person, "/help")
    for person in people:
        replies = await bot.wait_messages(person, 2)
        assert len(replies) == 2, [text_of(m) for m in replies]
        assert "Welcome" in text_of(replies[0])
    async with bot.container.db.reading() as session:
        accounts = (
            await session.execute(select(User.external_id).where(User.platform == "telegram"))
        ).scalars()
    assert sorted(a or "" for a in accounts) == sorted(str(p) for p in people)
