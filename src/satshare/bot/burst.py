"""Handlers that ask the database the same kind of question at the same moment share one
answer: a burst of updates (PTB runs up to 64 at once) costs a few statements, not a few
per update.

``Burst`` collects the calls made while the event loop is busy with other handlers and
answers them with one run of a batch function; while a run is in flight, the next calls
gather for the one after it, so batches grow with the load and a lone update waits for
nothing. Written here because no library we use micro-batches awaits (aiodataloader does,
for reads only, keyed, and without the fall-back below).

A batch function answers each item in order, with its result or the exception that item
alone raised. When the whole run fails (one transaction for all: a constraint, a lost
connection), each item is tried again alone, so every caller gets what it would have got
one by one: its own result, or its own exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from satshare.bot import repository as bot_repository
from satshare.db import Database
from satshare.users import flows as user_flows
from satshare.users import service as users

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Answers each item, in order: its result, or the exception it alone raised.
BatchRun = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]


class Burst(Generic[T, R]):
    """``await burst(item)`` → that item's answer from a shared run of ``run``."""

    def __init__(self, run: BatchRun[T, R], *, max_size: int = 64) -> None:
        self._run = run
        self._max_size = max_size
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flight: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flight is None:
            # Started as a task, so it first runs after every handler already scheduled in
            # this loop iteration has reached its own call: they all join this batch.
            self._flight = self._spawn(self._fly())
        return await future

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        # Its own context: not the log context (the user) of the update that started it.
        task = asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _fly(self) -> None:
        """Run batches until nobody is waiting (one in flight at a time)."""
        try:
            await asyncio.sleep(0)  # let the handlers woken with the first caller join it
            while self._waiting:
                batch = self._waiting[: self._max_size]
                del self._waiting[: self._max_size]
                await self._answer(batch)
        finally:
            self._flight = None

    async def _answer(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        live = [(item, future) for item, future in batch if not future.done()]  # not cancelled
        if not live:
            return
        try:
            outcomes = await self._run([item for item, _ in live])
        except Exception as exc:
            if len(live) > 1:
                log.info("a batch of %d failed (%s); answering each alone", len(live), exc)
                for pair in live:
                    await self._answer([pair])
                return
            outcomes = [exc]
        except BaseException as exc:  # cancelled while running: nobody may wait forever
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            raise
        assert len(outcomes) == len(live), "a batch function answers every item"
        for (_, future), outcome in zip(live, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def aclose(self) -> None:
        """Wait for the batch in flight (the bot is stopping)."""
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task


@dataclass
class Bursts:
    """The bot's shared questions: "is this update new?" and "who sent it?"."""

    db: Database
    now: Callable[[], datetime]
    #: Update id → True the first time it is seen (the duplicate-update guard).
    first_sight: Burst[int, bool] = field(init=False)
    #: A Telegram user → their SatShare user, registered on first contact.
    first_contact: Burst[users.Registration, user_flows.Contact] = field(init=False)

    def __post_init__(self) -> None:
        self.first_sight = Burst(self._first_sights)
        self.first_contact = Burst(self._first_contacts)

    async def _first_sights(self, update_ids: list[int]) -> list[bool | Exception]:
        fresh = await bot_repository.first_sights(self.db, update_ids, self.now())
        # An id twice in one batch (a redelivery racing its original) is fresh once.
        answers: list[bool | Exception] = []
        for update_id in update_ids:
            answers.append(update_id in fresh)
            fresh.discard(update_id)
        return answers

    async def _first_contacts(
        self, registrations: list[users.Registration]
    ) -> Sequence[user_flows.Contact | Exception]:
        return await user_flows.first_contacts(self.db, registrations, self.now())

    async def aclose(self) -> None:
        await self.first_sight.aclose()
        await self.first_contact.aclose()
