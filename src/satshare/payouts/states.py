"""The payout state machine and its ledger entries. Never commits: the caller's unit of work does.

A payout's money is held (moved out of the affiliate's balance into ``payable:payouts``) in
the same transaction that creates it, before any provider is called. From there it is either
paid (the hold leaves the owner's wallet) or released back to the affiliate (failed or
canceled). Every change notifies the affiliate through the outbox.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.affiliates import service as affiliates
from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.ledger import accounts
from satshare.ledger import service as ledger
from satshare.ledger.models import EntryKind
from satshare.notifications import service as outbox
from satshare.notifications.messages import (
    PayoutApproval,
    PayoutChanged,
    PayoutContradiction,
    PayoutFacts,
    PayoutUnknown,
)
from satshare.payouts import repository
from satshare.payouts.destinations import Destination, DestinationKind, InvalidDestination
from satshare.payouts.models import Payout, PayoutStatus
from satshare.payouts.policy import (
    BelowMinimum,
    InsufficientBalance,
    PayoutPolicy,
    Recheck,
    TermsNotAccepted,
    quote,
)
from satshare.payouts.ports import PayoutOrder, SendResult, SendState
from satshare.payouts.queries import saved_destination
from satshare.tallies import service as tallies
from satshare.tallies.models import PAYOUTS
from satshare.users.models import User
from satshare.webhooks_out import events as webhook_events

_TXID = re.compile(r"^[0-9a-f]{64}$")


def order_of(payout: Payout) -> PayoutOrder:
    return PayoutOrder(
        payout_id=payout.id,
        idempotency_key=f"satshare-payout-{payout.id}",
        send_sats=payout.send_sats,
        destination_kind=DestinationKind(payout.destination_kind),
        destination=payout.destination,
        payment_request=payout.payment_request,
        payment_hash=payout.payment_hash,
        provider_ref=payout.provider_ref,
    )


async def _move(session: AsyncSession, payout: Payout, status: PayoutStatus) -> None:
    """Every change of a payout's state: the row, and the dashboard's tally of payouts per
    state in the same transaction."""
    before = payout.status
    payout.status = status
    await tallies.moved(session, PAYOUTS, before.value, status.value, payout.amount_sats)


async def _lock_user(session: AsyncSession, user_id: int) -> User:
    # The affiliate's row is the lock that serialises their payout requests (PostgreSQL);
    # SQLite serialises all writers anyway.
    user = await repository.lock_user(session, user_id)
    if user is None:  # a reference in the request's body: 422, as every such reference
        raise InvalidRequest(f"user_id {user_id} does not exist", field="user_id")
    return user


async def request(
    session: AsyncSession,
    policy: PayoutPolicy,
    program: affiliates.Program,
    *,
    user_id: int,
    amount_sats: int,
    destination: Destination,
    requested_by: str,
    now: datetime,
    instant: bool = False,
) -> Payout:
    """Create a payout and hold its amount, or refuse with nothing written."""
    await _lock_user(session, user_id)
    policy.require_supported(destination.kind)
    terms_version = program.terms_version
    if not await affiliates.accepted(session, user_id, terms_version):
        raise TermsNotAccepted(
            f"user {user_id} has not accepted the affiliate terms (version {terms_version}); "
            "they must accept them before their first payout",
            terms_version=terms_version,
        )
    if not instant and amount_sats < policy.min_sats:
        raise BelowMinimum(
            f"the minimum payout is {policy.min_sats} sats; {amount_sats} was asked",
            min_sats=policy.min_sats,
        )
    priced = quote(policy, amount_sats, destination.kind)
    if priced.send_sats <= 0:
        raise BelowMinimum(
            f"the payout fee is {priced.fee_sats} sats, so {amount_sats} sats would leave "
            "nothing to send",
            min_sats=priced.fee_sats + 1,
        )
    if destination.kind is DestinationKind.BOLT11 and destination.amount_msat != (
        priced.send_sats * 1000
    ):
        asked = (destination.amount_msat or 0) // 1000
        raise InvalidDestination(
            f"the invoice asks for {asked} sats but this payout sends {priced.send_sats} sats "
            f"({amount_sats} minus a {priced.fee_sats} sat fee); create an invoice for exactly "
            f"{priced.send_sats} sats",
            field="destination",
        )
    balance = await affiliates.balance(session, user_id, program.hold_days, now)
    if amount_sats > balance.available_sats:
        held = (
            f" ({balance.pending_sats} sats are still in the hold period)"
            if (balance.pending_sats)
            else ""
        )
        raise InsufficientBalance(
            f"the available balance is {balance.available_sats} sats{held}; "
            f"{amount_sats} sats were asked",
            available_sats=balance.available_sats,
        )
    approved = instant or amount_sats <= policy.auto_approve_max_sats
    payout = Payout(
        user_id=user_id,
        amount_sats=amount_sats,
        fee_sats=priced.fee_sats,
        send_sats=priced.send_sats,
        destination_kind=destination.kind.value,
        destination=destination.value,
        payment_request=destination.value if destination.kind is DestinationKind.BOLT11 else None,
        payment_hash=destination.payment_hash,
        status=PayoutStatus.APPROVED if approved else PayoutStatus.AWAITING_APPROVAL,
        provider=policy.provider,
        instant=instant,
        requested_by=requested_by,
        approved_by="auto" if approved else None,
        created_at=now,
        updated_at=now,
    )
    session.add(payout)
    await session.flush()
    await tallies.moved(session, PAYOUTS, None, payout.status.value, payout.amount_sats)
    await _hold(session, payout, "hold", f"payout {payout.id} requested", requested_by, now)
    await _notify(session, payout, now)
    if payout.status == PayoutStatus.AWAITING_APPROVAL:
        await outbox.enqueue(
            session,
            PayoutApproval(_facts(payout)),
            dedupe_key=f"payout:{payout.id}:admin.approval",
            now=now,
        )
    return payout


async def instant_split(
    session: AsyncSession,
    policy: PayoutPolicy,
    program: affiliates.Program,
    *,
    affiliate_id: int,
    commission_sats: int,
    invoice_id: str,
    now: datetime,
) -> Payout | None:
    """payouts.instant_lightning: send a fresh commission straight to the affiliate's saved
    Lightning Address or LNURL, in the settlement's own transaction. When that is not
    possible (no such destination, terms not accepted, commissions on hold, the fee eats it)
    the commission simply stays in the balance."""
    if not policy.instant_lightning or policy.provider == "manual" or program.hold_days:
        return None
    saved = await saved_destination(session, affiliate_id)
    if saved is None or saved.kind not in (
        DestinationKind.LIGHTNING_ADDRESS.value,
        DestinationKind.LNURL.value,
    ):
        return None
    # A balance below zero (a clawback) is offset by this commission first.
    available = (await affiliates.balance(session, affiliate_id, 0, now)).available_sats
    amount = min(commission_sats, available)
    if amount <= 0:
        return None
    try:
        # Every refusal happens before request() writes anything, so the sale is unharmed.
        return await request(
            session,
            policy,
            program,
            user_id=affiliate_id,
            amount_sats=amount,
            destination=Destination(DestinationKind(saved.kind), saved.value),
            requested_by=f"instant:{invoice_id}",
            now=now,
            instant=True,
        )
    except (InvalidRequest, NotFound):
        return None


async def require(session: AsyncSession, payout_id: int, *, lock: bool = False) -> Payout:
    payout = await repository.get(session, payout_id, lock=lock)
    if payout is None:
        raise NotFound(f"payout {payout_id} does not exist")
    return payout


async def approve(session: AsyncSession, payout_id: int, *, author: str, now: datetime) -> Payout:
    payout = await require(session, payout_id, lock=True)
    if payout.status != PayoutStatus.AWAITING_APPROVAL:
        raise Conflict(
            f"payout {payout_id} is {payout.status}; only payouts awaiting approval can be "
            "approved",
            payout_status=payout.status,
        )
    await _move(session, payout, PayoutStatus.APPROVED)
    payout.approved_by, payout.updated_at = author, now
    await session.flush()
    await _notify(session, payout, now)
    return payout


async def cancel(
    session: AsyncSession, payout_id: int, *, author: str, reason: str | None, now: datetime
) -> Payout:
    payout = await require(session, payout_id, lock=True)
    if payout.status not in (PayoutStatus.AWAITING_APPROVAL, PayoutStatus.APPROVED):
        explain = (
            "it may already be on its way; the reconciler will settle it"
            if payout.status in (PayoutStatus.SENDING, PayoutStatus.UNKNOWN)
            else "it is final"
        )
        raise Conflict(
            f"payout {payout_id} is {payout.status} and cannot be canceled: {explain}",
            payout_status=payout.status,
        )
    await _move(session, payout, PayoutStatus.CANCELED)
    payout.failure = (reason or "").strip() or f"canceled by {author}"
    payout.completed_at = payout.updated_at = now
    await session.flush()
    await _release(session, payout, author, now)
    await _notify(session, payout, now)
    return payout


async def claim(session: AsyncSession, payout_id: int, now: datetime) -> bool:
    """Mark an approved payout as being sent. Only one claimant can win (a conditional update),
    so two workers never send the same payout."""
    if not await repository.claim_approved(session, payout_id, now):
        return False
    payout = await require(session, payout_id)
    await session.refresh(payout)
    await tallies.moved(
        session,
        PAYOUTS,
        PayoutStatus.APPROVED.value,
        PayoutStatus.SENDING.value,
        payout.amount_sats,
    )
    if not payout.instant:  # an instant split's "approved" notice already says "sending now"
        await _notify(session, payout, now)
    return True


async def attach_invoice(
    session: AsyncSession, payout_id: int, payment_request: str, payment_hash: str, now: datetime
) -> None:
    """Store the BOLT11 fetched for an LNURL or Lightning Address before paying it, so the
    provider can be asked about that exact payment after a timeout."""
    payout = await require(session, payout_id, lock=True)
    payout.payment_request, payout.payment_hash, payout.updated_at = (
        payment_request,
        payment_hash,
        now,
    )
    await session.flush()


async def record(
    session: AsyncSession,
    payout_id: int,
    result: SendResult,
    now: datetime,
    recheck: Recheck | None = None,
) -> Payout:
    """Apply what the provider said about a payout being sent (or checked afterwards).

    Absence of evidence is not evidence of absence: only a provider's positive answer
    (``PAID``, or ``FAILED``: it certainly was not and never will be paid) decides. Anything
    else leaves the payout ``unknown`` and schedules another question, with backoff. A
    ``PAID`` is recorded whatever state the payout is in, and admins are alerted when it
    contradicts an earlier decision."""
    recheck = recheck or Recheck()
    payout = await require(session, payout_id, lock=True)
    if result.provider_ref and not payout.provider_ref:
        payout.provider_ref = result.provider_ref
    if payout.status == PayoutStatus.PAID:
        if result.state is SendState.FAILED:
            await _alert_contradiction(session, payout, result, now)
        payout.next_check_at = None
        await session.flush()
        return payout
    if payout.status in (PayoutStatus.FAILED, PayoutStatus.CANCELED):
        if result.state is SendState.PAID:
            await _paid_after_release(session, payout, result, now)
        elif result.state is SendState.FAILED or payout.next_check_at is None:
            payout.next_check_at = None
        else:
            payout.checks += 1
            payout.next_check_at = recheck.after(payout.checks, now)
        await session.flush()
        return payout
    if payout.status not in (PayoutStatus.SENDING, PayoutStatus.UNKNOWN):
        return payout  # not sent yet (awaiting approval, approved): nothing to learn
    payout.updated_at = now
    if result.state is SendState.PAID:
        payout.next_check_at = None
        await _mark_paid(session, payout, result.proof, result.network_fee_sats, "system", now)
    elif result.state is SendState.FAILED:
        await _move(session, payout, PayoutStatus.FAILED)
        payout.failure = result.reason or "the provider refused the payment"
        payout.completed_at = now
        payout.next_check_at = None
        await session.flush()
        await _release(session, payout, "system", now)
        await _notify(session, payout, now)
    else:
        # UNKNOWN, or WAITING (the provider accepted it and has not finished): ask again.
        payout.checks += 1
        payout.next_check_at = recheck.after(payout.checks, now)
        if result.state is SendState.UNKNOWN:
            payout.failure = result.reason
            if payout.status != PayoutStatus.UNKNOWN:
                await _move(session, payout, PayoutStatus.UNKNOWN)
                await session.flush()
                await _notify(session, payout, now)
        await session.flush()
    return payout


async def _hold(
    session: AsyncSession, payout: Payout, step: str, memo: str, author: str, now: datetime
) -> None:
    """Move the payout's amount out of the affiliate's balance into payouts in flight."""
    await ledger.post_entry(
        session,
        ledger.NewEntry(
            idempotency_key=f"payout:{payout.id}:{step}",
            kind=EntryKind.PAYOUT_HOLD,
            legs=[
                ledger.Leg(accounts.affiliate_payable(payout.user_id), payout.amount_sats),
                ledger.Leg(accounts.PAYOUTS_IN_FLIGHT, -payout.amount_sats),
            ],
            memo=memo,
            created_by=author,
            affiliate_user_id=payout.user_id,
        ),
        now,
    )


async def _paid_after_release(
    session: AsyncSession, payout: Payout, result: SendResult, now: datetime
) -> None:
    """The provider paid a payout we had already given back to the affiliate (an admin
    released it, or a provider reversed its own answer). The money left the wallet, so the
    hold is taken again from the affiliate's balance (it may go below zero, and later
    commissions offset it) and the payout is recorded paid; admins are told."""
    previous = payout.status
    memo = f"payout {payout.id} was {previous} but the provider paid it: held again"
    await _hold(session, payout, "rehold", memo, "system", now)
    payout.next_check_at = None
    await _mark_paid(session, payout, result.proof, result.network_fee_sats, "system", now)
    await _alert_contradiction(session, payout, result, now, previous=previous)


async def _alert_contradiction(
    session: AsyncSession,
    payout: Payout,
    result: SendResult,
    now: datetime,
    previous: PayoutStatus | None = None,
) -> None:
    said = result.state.value
    await outbox.enqueue(
        session,
        PayoutContradiction(
            _facts(payout), previous_status=previous or payout.status, provider_says=said
        ),
        dedupe_key=f"payout:{payout.id}:contradiction:{said}",
        now=now,
    )


async def escalate_unknown(session: AsyncSession, now: datetime, older_than: timedelta) -> int:
    """Alert admins once about each payout that has stayed unknown longer than older_than:
    it is never released on silence, so a person must look at the provider."""
    stuck = await repository.unknown_unescalated(session, now - older_than)
    for payout in stuck:
        payout.escalated_at = now
        await outbox.enqueue(
            session,
            PayoutUnknown(_facts(payout)),
            dedupe_key=f"payout:{payout.id}:admin.unknown",
            now=now,
        )
    await session.flush()
    return len(stuck)


async def release_unknown(
    session: AsyncSession,
    payout_id: int,
    *,
    reason: str,
    author: str,
    now: datetime,
    recheck: Recheck | None = None,
) -> Payout:
    """An admin, having checked the provider, declares an unknown payout not paid: its
    amount goes back to the affiliate. The provider is still watched for a while, and a
    late "paid" is recorded (the amount is taken back) and alerted."""
    recheck = recheck or Recheck()
    payout = await require(session, payout_id, lock=True)
    if payout.status != PayoutStatus.UNKNOWN:
        raise Conflict(
            f"payout {payout_id} is {payout.status}; only an unknown payout can be marked "
            "failed by hand",
            payout_status=payout.status,
        )
    reason = reason.strip()
    if not reason:
        raise InvalidRequest(
            "say why (e.g. what the provider shows for this payout)", field="reason"
        )
    await _move(session, payout, PayoutStatus.FAILED)
    payout.failure = f"marked failed by {author}: {reason}"
    payout.completed_at = payout.updated_at = now
    payout.next_check_at = recheck.after(0, now)
    await session.flush()
    await _release(session, payout, author, now)
    await _notify(session, payout, now)
    return payout


async def mark_paid(
    session: AsyncSession,
    payout_id: int,
    *,
    proof: str,
    network_fee_sats: int | None,
    author: str,
    now: datetime,
) -> Payout:
    """Record a payout the owner paid by hand (payouts.provider: manual)."""
    payout = await require(session, payout_id, lock=True)
    if payout.status == PayoutStatus.PAID:
        raise Conflict(f"payout {payout_id} is already paid (proof {payout.proof})")
    if payout.status not in (PayoutStatus.APPROVED, PayoutStatus.UNKNOWN):
        raise Conflict(
            f"payout {payout_id} is {payout.status}; only approved payouts can be marked paid",
            payout_status=payout.status,
        )
    proof = proof.strip().lower()
    if not _TXID.match(proof):
        kind = "txid" if payout.destination_kind == "onchain" else "preimage or txid"
        raise InvalidRequest(f"the {kind} must be 64 hex characters", field="proof")
    if network_fee_sats is not None and network_fee_sats < 0:
        raise InvalidRequest("the network fee cannot be negative", field="network_fee_sats")
    await _mark_paid(session, payout, proof, network_fee_sats, author, now)
    return payout


async def _mark_paid(
    session: AsyncSession,
    payout: Payout,
    proof: str | None,
    network_fee_sats: int | None,
    author: str,
    now: datetime,
) -> None:
    network_fee = max(0, network_fee_sats or 0)
    await _move(session, payout, PayoutStatus.PAID)
    payout.proof = proof
    payout.network_fee_sats = network_fee
    payout.failure = None
    payout.completed_at = payout.updated_at = now
    await session.flush()
    legs = [
        ledger.Leg(accounts.PAYOUTS_IN_FLIGHT, payout.amount_sats),
        ledger.Leg(accounts.payout_source(payout.provider), -(payout.send_sats + network_fee)),
    ]
    if network_fee:
        legs.append(ledger.Leg(accounts.PAYOUT_FEES, network_fee))
    if payout.fee_sats:
        legs.append(ledger.Leg(accounts.PAYOUT_FEES_CHARGED, -payout.fee_sats))
    await ledger.post_entry(
        session,
        ledger.NewEntry(
            idempotency_key=f"payout:{payout.id}:paid",
            kind=EntryKind.PAYOUT,
            legs=legs,
            memo=f"payout {payout.id} paid" + (f" (proof {proof})" if proof else ""),
            created_by=author,
            affiliate_user_id=payout.user_id,
        ),
        now,
    )
    await _notify(session, payout, now)


async def _release(session: AsyncSession, payout: Payout, author: str, now: datetime) -> None:
    await ledger.post_entry(
        session,
        ledger.NewEntry(
            idempotency_key=f"payout:{payout.id}:release",
            kind=EntryKind.PAYOUT_RELEASE,
            legs=[
                ledger.Leg(accounts.PAYOUTS_IN_FLIGHT, payout.amount_sats),
                ledger.Leg(accounts.affiliate_payable(payout.user_id), -payout.amount_sats),
            ],
            memo=f"payout {payout.id} {payout.status}: back to the balance",
            created_by=author,
            affiliate_user_id=payout.user_id,
        ),
        now,
    )


def _facts(payout: Payout) -> PayoutFacts:
    return PayoutFacts(
        payout_id=payout.id,
        user_id=payout.user_id,
        status=payout.status,
        amount_sats=payout.amount_sats,
        fee_sats=payout.fee_sats,
        send_sats=payout.send_sats,
        destination_kind=payout.destination_kind,
        destination=payout.destination,
        instant=payout.instant,
        failure=payout.failure,
        proof=payout.proof,
    )


async def _notify(session: AsyncSession, payout: Payout, now: datetime) -> None:
    """Tell the affiliate the payout's new state (``payout.<status>``), once per state."""
    await outbox.enqueue(
        session,
        PayoutChanged(_facts(payout)),
        dedupe_key=f"payout:{payout.id}:{payout.status}",
        user_id=payout.user_id,
        now=now,
    )
    await webhook_events.payout_changed(session, payout, now)  # outgoing webhooks (#14)
