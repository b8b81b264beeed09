"""The webhook inbox: which processor notifications have been handled, and by whom now.

One row per *(provider, invoice, event type)*: processors give a redelivery a new delivery
id, so only this triple recognises a repeat. The rules, in the order a delivery meets them:

- **Duplicate**: the event's effect is committed (``processed_at`` set): answer 2xx again,
  do nothing. First delivery wins.
- **Busy**: another request holds a live claim (younger than ``CLAIM_TTL``), in this
  process or another: do not acknowledge (the caller answers "retry later"), because the
  holder may still die before committing.
- **Claimed**: nobody has it, or its holder died (claim older than ``CLAIM_TTL``): this
  request takes it. Taking over a live but slow holder's claim is harmless, only wasteful:
  settlement is exactly-once by its row lock and unique keys, not by the claim.
- An event whose handling changed nothing is **released**, not kept as handled (decision for
  "a signed event that arrives before the processor shows the invoice paid"): a later copy of
  it — a redelivery once the processor shows the payment — is looked at afresh, and the
  reconciler settles it anyway if no copy comes.

The SQL is in ``payments.repository``; this module decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.payments import repository
from satshare.payments.models import WebhookDelivery
from satshare.payments.ports import WebhookNotice

#: A claim younger than this belongs to a live request.
CLAIM_TTL = timedelta(seconds=30)


class Verdict(StrEnum):
    FREE = "free"  # nobody handles it: claim it
    CLAIMED = "claimed"  # this request holds it now
    DUPLICATE = "duplicate"  # its effect is committed
    BUSY = "busy"  # another request holds a live claim


@dataclass(frozen=True, slots=True)
class Seen:
    verdict: Verdict
    #: The committed outcome, for a duplicate.
    outcome: str | None = None
    #: The claimed row, for CLAIMED.
    row_id: int | None = None


Key = tuple[str, str, str]


def key_of(provider: str, notice: WebhookNotice) -> Key:
    return (provider, notice.provider_invoice_id, notice.event_type)


@dataclass
class LocalClaims:
    """Events being handled in this process right now: a concurrent copy is answered at once
    instead of queueing for the database (other processes are kept out by the row's claim)."""

    held: set[Key] = field(default_factory=set)

    @contextmanager
    def hold(self, key: Key) -> Iterator[bool]:
        """Yields False when another task of this process holds ``key``."""
        if key in self.held:
            yield False
            return
        self.held.add(key)
        try:
            yield True
        finally:
            self.held.discard(key)


def seen(row: WebhookDelivery | None, now: datetime) -> Seen:
    """What the inbox says, without writing, of an event whose row (None: never delivered)
    was just read (with its invoice, ``repository.invoice_and_delivery``): most repeats end
    here, with no write queued."""
    if row is None:
        return Seen(Verdict.FREE)
    if row.processed_at is not None:
        return Seen(Verdict.DUPLICATE, outcome=row.outcome)
    if row.claimed_at >= now - CLAIM_TTL:
        return Seen(Verdict.BUSY)
    return Seen(Verdict.FREE)


#: Times a claim inserts again when the row it collided with was released before it could
#: be read: each time, another request released its claim at that very moment.
CLAIM_ATTEMPTS = 3


async def claim(
    session: AsyncSession,
    key: Key,
    *,
    delivery_id: str | None,
    payload: str,
    now: datetime,
) -> Seen:
    """Record the delivery and claim it, or say why not (duplicate, busy)."""
    provider, provider_invoice_id, event_type = key
    for _ in range(CLAIM_ATTEMPTS):
        new_row_id = await repository.record_delivery(
            session,
            provider=provider,
            provider_invoice_id=provider_invoice_id,
            event_type=event_type,
            delivery_id=delivery_id,
            payload=payload,
            now=now,
        )
        if new_row_id is not None:  # the usual case: one statement
            return Seen(Verdict.CLAIMED, row_id=new_row_id)
        row = await repository.delivery(session, *key)
        if row is None:
            # Its holder released it (a failed re-fetch, or nothing changed) between our
            # insert and this read, which are separate statements: insert again.
            continue
        if row.processed_at is not None:
            return Seen(Verdict.DUPLICATE, outcome=row.outcome)
        if await repository.reclaim_delivery(
            session, row.id, stale_before=now - CLAIM_TTL, now=now
        ):
            return Seen(Verdict.CLAIMED, row_id=row.id)
        return Seen(Verdict.BUSY)
    # Released under us every time: other requests are busy with it; the processor resends.
    return Seen(Verdict.BUSY)


async def mark_handled(
    session: AsyncSession, row_id: int, outcome: str, *, changed: bool, now: datetime
) -> None:
    """In the transaction that committed the event's effect. An event that ``changed``
    nothing is released instead, so a later copy is handled afresh."""
    if changed:
        await repository.finish_delivery(session, row_id, outcome, now)
    else:
        await repository.release_delivery(session, row_id)


async def release(session: AsyncSession, row_id: int) -> None:
    """Give the claim back (the re-fetch failed): the processor's retry is handled."""
    await repository.release_delivery(session, row_id)
