"""Delivers broadcasts through the bot: one claim per recipient, at the bot's rate.

The pace is the bot's rate limiter (``bot/ratelimiter.py``: ``telegram.max_messages_per_second``
shared with every other message the bot sends, from this process and every other one, so a
broadcast never pushes the bot as a whole over it); ``WORKERS`` sends run at once so the
limiter, not the round trips, sets the rate.

Each recipient is claimed (``sending``, committed) before it is handed to Telegram and
resolved after, so a sender killed in between leaves at most ``WORKERS`` claims, which the
next sender marks failed instead of sending them again: nobody gets a broadcast twice. The
workers' claims and outcomes are written together (``GroupedSteps``): one transaction for
every worker that is waiting for one, so a slow database (a busy machine, SQLite's single
writer) carries more messages per transaction instead of holding the broadcast below the
rate.
What Telegram says decides the rest: a 429 puts the recipient back for after
``retry_after`` and pauses every worker that long; a 403 marks the user unreachable
(``blocked``); a refusal (400) is ``failed``; a time-out is ``failed`` too (the message may
have arrived); a connection that failed outright is retried a few times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from satshare.broadcasts import flows as broadcasts
from satshare.broadcasts.compose import Content
from satshare.broadcasts.flows import Said, Verdict
from satshare.broadcasts.repository import Claimed
from satshare.broadcasts.service import Lease
from satshare.clock import Clock
from satshare.db import Database

log = logging.getLogger(__name__)

#: Sends in flight at once for one broadcast (the rate limiter paces them).
WORKERS = 16
#: Renew the sender's lease this often (it lasts ``broadcasts.service.LEASE``).
RENEW_EVERY = timedelta(seconds=15)
#: A connection that failed outright is tried this many times in all.
MAX_ATTEMPTS = 5
#: Longest nap while only recipients put back for later remain.
IDLE_NAP_SECONDS = 1.0


def markup(content: Content, language: str) -> InlineKeyboardMarkup | None:
    if not content.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label(language), url=b.url)] for b in content.buttons]
    )


async def send_content(bot: Bot, chat_id: int, content: Content, language: str) -> None:
    """The broadcast as this recipient sees it: their language's text, the photo, buttons."""
    text = content.text_for(language)
    keyboard = markup(content, language)
    if content.photo:
        await bot.send_photo(
            chat_id, content.photo, caption=text, parse_mode=ParseMode.HTML, reply_markup=keyboard
        )
    else:
        await bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, reply_markup=keyboard)


def _seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return float(value if isinstance(value, int | float) else value.total_seconds())


@dataclass
class Delivery:
    """What one sender did with one broadcast (this run only)."""

    broadcast_id: int
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    retried: int = 0
    #: 429s Telegram answered that reached this sender (the limiter retries some itself).
    too_many_requests: int = 0
    interrupted: int = 0
    held: bool = True
    finished: bool = False


ProgressCallback = Callable[[Delivery], None]


@dataclass
class _Ask:
    outcome: Said | None
    claim: bool
    answer: asyncio.Future[tuple[Claimed | None, datetime | None]]


class GroupedSteps:
    """The workers' steps (record what Telegram said, claim the next recipient), as many
    in one transaction as are waiting: while a transaction runs, the workers that finish a
    send queue up, and the next one records all their outcomes and claims a recipient for
    each (a group commit). Still one claim in flight per worker at most."""

    def __init__(self, db: Database, clock: Clock, lease: Lease) -> None:
        self.db = db
        self.clock = clock
        self.lease = lease
        self._asks: list[_Ask] = []
        self._writer: asyncio.Task[None] | None = None

    async def step(
        self, outcome: Said | None, *, claim: bool = True
    ) -> tuple[Claimed | None, datetime | None]:
        """Record ``outcome``; the next recipient (or None, and when one is due again: None
        when nobody is left)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[Claimed | None, datetime | None]] = loop.create_future()
        self._asks.append(_Ask(outcome, claim, answer))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        return await answer

    async def aclose(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write(self) -> None:
        while self._asks:
            asks, self._asks = self._asks, []
            outcomes = [ask.outcome for ask in asks if ask.outcome is not None]
            wanted = sum(ask.claim for ask in asks)
            try:
                step = await broadcasts.step(
                    self.db, self.lease, outcomes, wanted, self.clock.now()
                )
            except Exception as exc:
                for ask in asks:
                    if not ask.answer.done():
                        ask.answer.set_exception(exc)
                continue
            recipients = iter(step.recipients)
            for ask in asks:
                recipient = next(recipients, None) if ask.claim else None
                if not ask.answer.done():
                    ask.answer.set_result((recipient, step.retry_at))


class BroadcastSender:
    """Sends due broadcasts; several senders (processes) never send the same one at once."""

    def __init__(self, db: Database, clock: Clock, bot: Bot, *, workers: int = WORKERS) -> None:
        self.db = db
        self.clock = clock
        self.bot = bot
        self.workers = workers
        #: Who holds a lease: unique per sender object, so a restarted process is another.
        self.name = f"sender-{uuid.uuid4().hex[:16]}"
        self._pause_until = 0.0

    async def run_due(self) -> list[Delivery]:
        due = await broadcasts.due(self.db, self.clock.now())
        return [await self.deliver(broadcast_id) for broadcast_id in due]

    async def deliver(
        self, broadcast_id: int, on_progress: ProgressCallback | None = None
    ) -> Delivery:
        """Send the broadcast to everyone still pending; return when nobody is left, it was
        canceled, or another sender holds it."""
        report = Delivery(broadcast_id)
        lease = await broadcasts.acquire(self.db, broadcast_id, self.name, self.clock.now())
        if lease is None:
            report.held = False
            return report
        report.interrupted = lease.interrupted
        if lease.interrupted:
            log.warning(
                "broadcast %d: %d recipients were being sent when the last sender stopped; "
                "marked failed rather than sent twice",
                broadcast_id,
                lease.interrupted,
            )
        stop = asyncio.Event()
        renewer = asyncio.create_task(self._renew(lease, stop))
        steps = GroupedSteps(self.db, self.clock, lease)
        try:
            await asyncio.gather(
                *(self._work(lease, steps, report, stop, on_progress) for _ in range(self.workers))
            )
        finally:
            stop.set()
            await renewer
            await steps.aclose()
        report.finished = await broadcasts.close(self.db, lease, self.clock.now())
        return report

    async def _renew(self, lease: Lease, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), RENEW_EVERY.total_seconds())
                return
            except TimeoutError:
                pass
            if not await broadcasts.renew(self.db, lease, self.clock.now()):
                stop.set()

    async def _nap(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.01, seconds))

    async def _work(
        self,
        lease: Lease,
        steps: GroupedSteps,
        report: Delivery,
        stop: asyncio.Event,
        on_progress: ProgressCallback | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        # What Telegram said about the last recipient is written in the same transaction
        # as the next claim: one write per message at most, and one claim in flight.
        outcome: Said | None = None
        while not stop.is_set():
            pause = self._pause_until - loop.time()
            if pause > 0:
                await self._nap(stop, pause)
                continue
            recipient, retry_at = await steps.step(outcome)
            outcome = None
            if on_progress is not None:
                on_progress(report)
            if recipient is None:
                if retry_at is None:
                    return  # nobody left (or canceled, or taken over)
                wait = (retry_at - self.clock.now()).total_seconds()
                await self._nap(stop, min(IDLE_NAP_SECONDS, wait))
                continue
            outcome = await self._send_one(lease, recipient, report)
        if outcome is not None:
            await steps.step(outcome, claim=False)
            if on_progress is not None:
                on_progress(report)

    async def _send_one(self, lease: Lease, recipient: Claimed, report: Delivery) -> Said:
        """Hand the message to Telegram; return what it said, to record."""
        now = self.clock.now()
        try:
            await send_content(self.bot, recipient.chat_id, lease.content, recipient.language)
        except RetryAfter as exc:
            # Not delivered: Telegram says when to come back, for the whole bot.
            seconds = _seconds(exc)
            report.too_many_requests += 1
            report.retried += 1
            loop = asyncio.get_running_loop()
            self._pause_until = max(self._pause_until, loop.time() + seconds)
            at = now + timedelta(seconds=seconds)
            return Said(recipient, Verdict.LATER, now, str(exc), at)
        except Forbidden as exc:
            report.blocked += 1
            return Said(recipient, Verdict.BLOCKED, now, f"unreachable: {exc}")
        except TimedOut as exc:
            reason = f"timed out, may have been delivered, not sent again: {exc}"
        except BadRequest as exc:
            reason = f"refused: {exc}"
        except NetworkError as exc:
            if recipient.attempts < MAX_ATTEMPTS:
                report.retried += 1
                at = now + timedelta(seconds=min(60, 2**recipient.attempts))
                return Said(recipient, Verdict.LATER, now, str(exc), at)
            reason = f"network: {exc}"
        else:
            report.sent += 1
            return Said(recipient, Verdict.SENT, now)
        report.failed += 1
        return Said(recipient, Verdict.FAILED, now, reason)
