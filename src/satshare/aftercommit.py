"""What happens after a commit: the one place that learns what a transaction produced.

Writers (use cases, the idempotency middleware, jobs) say what their committed transaction
produced — ledger entries for the sealer, outbox rows for the sender, payouts ready to send,
a broadcast to send, outgoing webhook deliveries (said by a session hook on any commit that
recorded an event, ``webhooks_out.flows.kick_after_commit``) — and ``AfterCommit`` wakes
whoever works on each.
It is built once, by the composition root, with every collaborator it wakes; nothing is
attached to it later. The outbox's sender lives in the bot (another adapter, started after
the container), so the outbox is a ``Doorbell`` the sender listens to, not a callback
registered afterwards; so is the broadcasts' sender, a job of the in-process runner on
SQLite (``jobs/inline.py``).

In ``jobs.mode: workers`` (PostgreSQL) the container builds it with wake-ups that queue the
matching procrastinate jobs instead (``jobqueue.QueueWaker``): after commit only, coalesced
by each job's queueing lock; a crash between commit and queueing is healed by the job's
periodic sweep.

Shared layer: imports only the standard library.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Produced:
    """What one committed transaction left for background work."""

    #: Ledger entries queued for the sealer to chain.
    ledger: bool = False
    #: Outbox rows (notifications) to send.
    outbox: bool = False
    #: A payout became approved: the sender may send it now.
    payouts: bool = False
    #: Outgoing webhook deliveries (#14) to send.
    webhooks: bool = False
    #: A broadcast started sending: its sender may start now rather than at its sweep.
    broadcasts: bool = False


#: A settlement, a refund, a payout's record: entries and the messages about them.
ENTRIES_AND_MESSAGES = Produced(ledger=True, outbox=True)


class CommitListener(Protocol):
    """The port use cases are given: told after each commit what it produced."""

    def committed(self, produced: Produced) -> None: ...


class NoListener:
    """For contexts built without background work (tests of a use case on its own)."""

    def committed(self, produced: Produced) -> None:
        return None


class Doorbell:
    """A wake-up that coalesces: rung any number of times, one waiter wakes once.

    Lets a consumer started later (the bot's outbox sender) listen without being registered
    on an object built before it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    @property
    def rung(self) -> bool:
        """Rung since the last wait: the next wait returns at once."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Return once the bell has rung since the last wait (at once if it already has)."""
        await self._event.wait()
        self._event.clear()


class AfterCommit:
    """Wakes the sealer, the payout sender, the outbox's listener, the webhook delivery and
    the broadcasts' sender after a commit."""

    def __init__(
        self,
        *,
        seal: Callable[[], None],
        send_payouts: Callable[[], None],
        outbox: Doorbell,
        entries_may_queue_payouts: bool,
        send_outbox: Callable[[], None] | None = None,
        deliver_webhooks: Callable[[], None] | None = None,
        send_broadcasts: Callable[[], None] | None = None,
    ) -> None:
        #: Wake-ups, public so a test can hold one back for a moment (then put it back).
        self.seal = seal
        self.send_payouts = send_payouts
        self.outbox = outbox
        #: Where the outbox's sender runs in another process (a worker): queue its job.
        self.send_outbox = send_outbox or outbox.ring
        #: The outgoing webhooks' delivery (#14); nothing where none is wired.
        self.deliver_webhooks = deliver_webhooks or _nothing
        #: Rung for the in-process broadcasts' sender (SQLite's job runner listens).
        self.broadcasts = Doorbell()
        #: Where the broadcasts' sender is a queued job (PostgreSQL): queue it.
        self.send_broadcasts = send_broadcasts or self.broadcasts.ring
        # Instant splits: a settlement's commission becomes a payout in the same transaction.
        self._entries_queue_payouts = entries_may_queue_payouts

    def committed(self, produced: Produced) -> None:
        if produced.ledger:
            self.seal()
        if produced.outbox:
            self.send_outbox()
        if produced.payouts or (produced.ledger and self._entries_queue_payouts):
            self.send_payouts()
        if produced.webhooks:
            self.deliver_webhooks()
        if produced.broadcasts:
            self.send_broadcasts()


def _nothing() -> None:
    return None
