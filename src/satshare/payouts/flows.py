"""Payout flows that talk to the outside: checking a destination, sending, and asking a
provider what became of a payment.

The order is what makes a payout safe: the payout row and its ledger hold are committed
before the provider is called; a Lightning invoice fetched for an LNURL is committed
before it is paid; a timeout leaves the payout ``unknown`` and only the reconciler, by
asking the provider about that exact payment, decides paid or failed. Nothing is ever
re-sent blindly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from satshare import faultpoints
from satshare.affiliates import service as affiliates
from satshare.aftercommit import ENTRIES_AND_MESSAGES, CommitListener, NoListener, Produced
from satshare.clock import Clock
from satshare.db import Database
from satshare.payouts import repository, service
from satshare.payouts.destinations import (
    NETWORK_BOLT11,
    Destination,
    DestinationKind,
    InvalidDestination,
    lightning_address_url,
    parse,
)
from satshare.payouts.models import Payout, PayoutDestination, PayoutStatus
from satshare.payouts.ports import (
    LnurlError,
    LnurlResolver,
    LnurlUnreachable,
    PayoutOrder,
    PayoutProvider,
    SendResult,
    SendState,
)
from satshare.users import service as users

log = logging.getLogger(__name__)


@dataclass
class PayoutsContext:
    db: Database
    clock: Clock
    policy: service.PayoutPolicy
    program: affiliates.Program
    #: None when payouts are made by hand (payouts.provider: manual).
    provider: PayoutProvider | None
    lnurl: LnurlResolver
    #: Told after each commit what it produced (entries, messages, a payout to send).
    after_commit: CommitListener = field(default_factory=NoListener)
    #: A send in flight longer than this is asked about (a crash mid-call leaves it so). It
    #: must outlast the provider call itself: asking while the call may still be running
    #: would find nothing yet.
    send_grace: timedelta = timedelta(minutes=2)
    #: When to ask again about a payout whose fate is unknown.
    recheck: service.Recheck = field(default_factory=service.Recheck)
    #: Admins are alerted about a payout unknown this long.
    alert_after: timedelta = timedelta(hours=1)


def lnurl_of(destination: Destination) -> str:
    if destination.kind is DestinationKind.LIGHTNING_ADDRESS:
        return lightning_address_url(destination.value)
    return destination.value


async def check_destination(
    ctx: PayoutsContext, text: str, send_sats: int | None = None
) -> Destination:
    """Parse a destination and, for LNURL and Lightning Addresses, ask the service whether it
    exists and takes this amount. Raises InvalidDestination; writes nothing."""
    destination = parse(text, ctx.policy.network, now=ctx.clock.now())
    if destination.kind in (DestinationKind.LIGHTNING_ADDRESS, DestinationKind.LNURL):
        try:
            params = await ctx.lnurl.params(lnurl_of(destination))
        except LnurlUnreachable:
            # The same words whatever went wrong: no address, port or error to map a network by.
            lightning_address = destination.kind is DestinationKind.LIGHTNING_ADDRESS
            what = "Lightning Address" if lightning_address else "LNURL"
            raise InvalidDestination(
                f"could not reach that {what}, so it cannot receive payments; check it for "
                "typos or try again later",
                field="destination",
            ) from None
        except LnurlError as exc:
            raise InvalidDestination(
                f"{destination.masked} cannot receive payments: {exc}", field="destination"
            ) from None
        if send_sats is not None and not (
            params.min_sendable_msat <= send_sats * 1000 <= params.max_sendable_msat
        ):
            raise InvalidDestination(
                f"{destination.masked} accepts {params.min_sendable_msat // 1000} to "
                f"{params.max_sendable_msat // 1000} sats; this payout sends {send_sats} sats",
                field="destination",
            )
    return destination


async def save_destination(ctx: PayoutsContext, user_id: int, text: str) -> Destination:
    """Check a destination (it must exist and be payable here), then save it for the user."""
    checked = await check_destination(ctx, text)
    ctx.policy.require_supported(checked.kind)
    async with ctx.db.transaction() as session:
        await service.save_destination(session, user_id, checked, ctx.clock.now())
    return checked


async def request_payout(
    ctx: PayoutsContext,
    *,
    user_id: int,
    amount_sats: int,
    destination: str | None,
    requested_by: str,
) -> Payout:
    """Validate, then create the payout and its hold in one transaction."""
    if destination is None:
        async with ctx.db.reading() as session:
            saved = await service.saved_destination(session, user_id)
        if saved is None:
            raise InvalidDestination(
                f"user {user_id} has no saved payout destination; give one with the request",
                field="destination",
            )
        destination = saved.value
    kind = parse(destination, ctx.policy.network, now=ctx.clock.now()).kind
    checked = await check_destination(
        ctx, destination, service.quote(ctx.policy, amount_sats, kind).send_sats
    )
    async with ctx.db.transaction() as session:
        payout = await service.request(
            session,
            ctx.policy,
            ctx.program,
            user_id=user_id,
            amount_sats=amount_sats,
            destination=checked,
            requested_by=requested_by,
            now=ctx.clock.now(),
        )
    faultpoints.reached("payout.after_hold")
    _written(ctx, payout)
    return payout


def _written(ctx: PayoutsContext, payout: Payout) -> None:
    approved = payout.status == PayoutStatus.APPROVED
    ctx.after_commit.committed(Produced(ledger=True, outbox=True, payouts=approved))


async def approve(ctx: PayoutsContext, payout_id: int, author: str) -> Payout:
    async with ctx.db.transaction() as session:
        payout = await service.approve(session, payout_id, author=author, now=ctx.clock.now())
    _written(ctx, payout)
    return payout


async def cancel(ctx: PayoutsContext, payout_id: int, author: str, reason: str | None) -> Payout:
    async with ctx.db.transaction() as session:
        payout = await service.cancel(
            session, payout_id, author=author, reason=reason, now=ctx.clock.now()
        )
    ctx.after_commit.committed(ENTRIES_AND_MESSAGES)
    return payout


async def mark_paid(
    ctx: PayoutsContext, payout_id: int, proof: str, network_fee_sats: int | None, author: str
) -> Payout:
    async with ctx.db.transaction() as session:
        payout = await service.mark_paid(
            session,
            payout_id,
            proof=proof,
            network_fee_sats=network_fee_sats,
            author=author,
            now=ctx.clock.now(),
        )
    ctx.after_commit.committed(ENTRIES_AND_MESSAGES)
    return payout


async def run_once(ctx: PayoutsContext) -> int:
    """Send what is approved, then ask about what is unknown."""
    return await send_due(ctx) + await reconcile(ctx)


async def send_due(ctx: PayoutsContext, limit: int = 50) -> int:
    """Send every approved payout (providers only; manual payouts wait for mark-paid)."""
    if ctx.provider is None:
        return 0
    async with ctx.db.reading() as session:
        due = await service.due_for_sending(session, limit)
    sent = 0
    for payout_id in due:
        if await send_one(ctx, payout_id):
            sent += 1
    return sent


async def send_one(ctx: PayoutsContext, payout_id: int) -> bool:
    provider = ctx.provider
    assert provider is not None
    async with ctx.db.transaction() as session:
        if not await service.claim(session, payout_id, ctx.clock.now()):
            return False  # another worker has it, or it was canceled meanwhile
        order = service.order_of(await service.require(session, payout_id))
    faultpoints.reached("payout.after_claim")
    if provider.needs_invoice and order.payment_request is None:
        try:
            bolt, payment_hash = await _fetch_invoice(ctx, order.destination_kind, order)
        except LnurlError as exc:
            await _record(ctx, payout_id, SendResult(SendState.FAILED, reason=str(exc)))
            return True
        async with ctx.db.transaction() as session:
            await service.attach_invoice(session, payout_id, bolt, payment_hash, ctx.clock.now())
            order = service.order_of(await service.require(session, payout_id))
    faultpoints.reached("payout.during_call")  # the bench arms it with a delay
    try:
        result = await provider.send(order)
    except Exception as exc:
        log.exception("payout %s: the provider call failed", payout_id)
        result = SendResult(SendState.UNKNOWN, reason=f"provider error: {exc}")
    faultpoints.reached("payout.after_send")
    await _record(ctx, payout_id, result)
    return True


async def _fetch_invoice(
    ctx: PayoutsContext, kind: DestinationKind, order: PayoutOrder
) -> tuple[str, str]:
    destination = Destination(kind, order.destination)
    params = await ctx.lnurl.params(lnurl_of(destination))
    amount_msat = order.send_sats * 1000
    bolt = await ctx.lnurl.invoice(params, amount_msat)
    import bolt11  # here, not at the top: most processes never fetch an invoice (#15)

    try:
        decoded = bolt11.decode(bolt)
    except Exception:
        raise LnurlError("the service returned an invoice that cannot be decoded") from None
    if decoded.currency != NETWORK_BOLT11[ctx.policy.network]:
        raise LnurlError("the service returned an invoice for another network")
    if datetime.fromtimestamp(decoded.date + (decoded.expiry or 3600), UTC) <= ctx.clock.now():
        raise LnurlError("the service returned an expired invoice")
    return bolt, decoded.payment_hash


async def _record(ctx: PayoutsContext, payout_id: int, result: SendResult) -> None:
    async with ctx.db.transaction() as session:
        await service.record(session, payout_id, result, ctx.clock.now(), ctx.recheck)
        faultpoints.reached("payout.before_record")
    ctx.after_commit.committed(ENTRIES_AND_MESSAGES)


async def release_unknown(ctx: PayoutsContext, payout_id: int, reason: str, author: str) -> Payout:
    """An admin declares an unknown payout not paid, after checking the provider."""
    async with ctx.db.transaction() as session:
        payout = await service.release_unknown(
            session,
            payout_id,
            reason=reason,
            author=author,
            now=ctx.clock.now(),
            recheck=ctx.recheck,
        )
    ctx.after_commit.committed(ENTRIES_AND_MESSAGES)
    return payout


async def reconcile(ctx: PayoutsContext, limit: int = 50) -> int:
    """Ask the provider about payouts whose fate is unknown. Returns how many were decided."""
    if ctx.provider is None:
        return 0
    async with ctx.db.reading() as session:
        due = await service.due_for_check(session, ctx.clock.now(), ctx.send_grace, limit)
    decided = 0
    for payout_id in due:
        async with ctx.db.reading() as session:
            order = service.order_of(await service.require(session, payout_id))
        try:
            result = await ctx.provider.check(order)
        except Exception as exc:
            log.exception("payout %s: checking with the provider failed", payout_id)
            result = SendResult(SendState.UNKNOWN, reason=f"checking failed: {exc}")
        if result.state in (SendState.PAID, SendState.FAILED):
            decided += 1
        await _record(ctx, payout_id, result)
    async with ctx.db.transaction() as session:
        escalated = await service.escalate_unknown(session, ctx.clock.now(), ctx.alert_after)
    if escalated:
        log.warning("%d payout(s) unknown for over %s: admins alerted", escalated, ctx.alert_after)
        ctx.after_commit.committed(ENTRIES_AND_MESSAGES)
    return decided


# -- reads for the adapters (each in its own unit of work) --------------------------------


async def saved_destination(ctx: PayoutsContext, user_id: int) -> PayoutDestination | None:
    async with ctx.db.reading() as session:
        return await service.saved_destination(session, user_id)


async def list_payouts(
    ctx: PayoutsContext,
    *,
    limit: int,
    before_id: int | None = None,
    user_id: int | None = None,
    status: PayoutStatus | None = None,
    platform: str | None = None,
) -> Sequence[Payout]:
    async with ctx.db.reading() as session:
        return await service.list_payouts(
            session,
            limit=limit,
            before_id=before_id,
            user_id=user_id,
            status=status,
            platform=platform,
        )


async def save_destination_of_user(
    ctx: PayoutsContext, user_id: int, text: str
) -> PayoutDestination:
    """``save_destination`` for a user who may not exist (NotFound); the saved row."""
    async with ctx.db.reading() as session:
        await users.require(session, user_id)
    await save_destination(ctx, user_id, text)
    saved = await saved_destination(ctx, user_id)
    assert saved is not None
    return saved


async def forget_destination(ctx: PayoutsContext, user_id: int) -> None:
    async with ctx.db.transaction() as session:
        await users.require(session, user_id)
        await service.forget_destination(session, user_id)


async def awaiting_manual_payment(ctx: PayoutsContext) -> Sequence[Payout]:
    async with ctx.db.reading() as session:
        return await service.awaiting_manual_payment(session)


async def get_payout(ctx: PayoutsContext, payout_id: int) -> Payout:
    """The payout; NotFound when there is none."""
    async with ctx.db.reading() as session:
        return await service.require(session, payout_id)


async def totals_by_state(db: Database) -> dict[PayoutStatus, repository.StateTotal]:
    """How many payouts are in each state and their sums, every state present (/metrics)."""
    async with db.reading() as session:
        return await repository.totals_by_state(session)
