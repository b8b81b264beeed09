"""All payments SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import (
    ColumnElement,
    Insert,
    Update,
    bindparam,
    delete,
    distinct,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState, aliased
from sqlalchemy.orm.exc import StaleDataError

from satshare.db import insert_ignore_id
from satshare.ledger.models import Entry
from satshare.payments.models import (
    OPEN_STATUSES,
    Invoice,
    InvoiceStatus,
    Payment,
    WebhookDelivery,
)
from satshare.plans.models import Plan
from satshare.subscriptions.models import Subscription
from satshare.users.models import User
from satshare.webhooks_out.models import WebhookEndpoint


async def get_invoice(
    session: AsyncSession, invoice_id: str, *, lock: bool = False
) -> Invoice | None:
    query = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


class SaleRows(NamedTuple):
    """What a settlement reads first, in one round trip."""

    invoice: Invoice
    subscription: Subscription
    buyer: User
    plan: Plan
    #: Whether any outgoing-webhook endpoint is enabled: when none is, the sale's events
    #: are not recorded, and asking here spares every such sale a statement of its own
    #: (#15: one of the ten round trips of a settlement, about 7% of its CPU). It is read
    #: as the statement starts, before it may wait for the locks: an endpoint enabled
    #: during that wait misses this one sale, as it would if enabled a moment later.
    webhooks_listened: bool


#: Built once, run with the invoice's id: on every settlement's path, where building and
#: keying a new statement object each time is a measurable share of the CPU (#15).
_LOCK_FOR_SETTLEMENT = (
    select(
        Invoice,
        Subscription,
        User,
        Plan,
        exists().where(WebhookEndpoint.enabled.is_(True)).label("webhooks_listened"),
    )
    .join(Subscription, Subscription.id == Invoice.subscription_id)
    .join(User, User.id == Invoice.user_id)
    .join(Plan, Plan.id == Invoice.plan_id)
    .where(Invoice.id == bindparam("invoice_id"))
    .with_for_update(of=[Invoice, Subscription])
)


async def lock_invoice_for_settlement(session: AsyncSession, invoice_id: str) -> SaleRows | None:
    """The invoice and its subscription, both locked (in that order, as every writer of
    both takes them), with its buyer, its plan and whether anyone listens for the sale's
    webhooks: one round trip where a settlement needs all of it."""
    result = await session.execute(_LOCK_FOR_SETTLEMENT, {"invoice_id": invoice_id})
    row = result.one_or_none()
    return None if row is None else SaleRows(row[0], row[1], row[2], row[3], bool(row[4]))


#: What a settled sale changes on its invoice and its subscription: ``record_sale`` writes
#: exactly these columns, and refuses an object with a change to any other (it would be lost).
SALE_INVOICE_COLUMNS = (
    "status",
    "settled_at",
    "updated_at",
    "paid_sats",
    "provider_status",
    "provider_additional_status",
)
SALE_SUBSCRIPTION_COLUMNS = (
    "status",
    "started_at",
    "ends_at",
    "updated_at",
    "payments",
    "last_paid_sats",
)


class SalePayment(TypedDict):
    """The payment row of a settled sale."""

    invoice_id: str
    user_id: int
    provider: str
    amount_sats: int
    received_sats: int
    overpaid_sats: int
    paid_late: bool
    proof: str | None
    ledger_entry_id: int
    settled_at: datetime


PAYMENT_COLUMNS = tuple(SalePayment.__annotations__)


def _bound(table: Any, prefix: str, names: Sequence[str]) -> dict[str, Any]:
    """``{column: bound parameter}`` typed as the column (a UTC timestamp, an enum)."""
    return {name: bindparam(f"{prefix}_{name}", type_=table.c[name].type) for name in names}


def _sale_statements() -> tuple[Update, Update, Insert, Insert]:
    """The sale's three writes one by one (SQLite), and as one statement (PostgreSQL)."""
    invoices: Any = Invoice.__table__
    subscriptions: Any = Subscription.__table__
    payments: Any = Payment.__table__
    sell = (
        update(invoices)
        .where(invoices.c.id == bindparam("i_id"))
        .values(_bound(invoices, "i", SALE_INVOICE_COLUMNS))
    )
    extend = (
        update(subscriptions)
        .where(subscriptions.c.id == bindparam("s_id"))
        .values(_bound(subscriptions, "s", SALE_SUBSCRIPTION_COLUMNS))
    )
    pay = _bound(payments, "p", PAYMENT_COLUMNS)
    sold = sell.returning(invoices.c.id).cte("sold_invoice")
    extended = extend.returning(subscriptions.c.id).cte("extended_subscription")
    # The payment is inserted once per row of both updates: none unless both found their
    # row, which RETURNING then shows (the check the ORM's flush made on its UPDATEs).
    in_one = (
        insert(payments)
        .from_select(
            list(pay),
            select(*pay.values()).select_from(sold).join(extended, true()),
        )
        .returning(payments.c.id)
    )
    return sell, extend, insert(payments).values(pay), in_one


#: Built once (a statement built and keyed per call is CPU on every sale).
_SALE_INVOICE, _SALE_SUBSCRIPTION, _SALE_PAYMENT, _SALE_IN_ONE = _sale_statements()


async def record_sale(
    session: AsyncSession, invoice: Invoice, subscription: Subscription, payment: SalePayment
) -> None:
    """Write a settled sale's invoice and subscription, as the settlement set them on the
    locked objects (every column of ``SALE_INVOICE_COLUMNS`` and
    ``SALE_SUBSCRIPTION_COLUMNS``, changed or not), and its payment row.

    Built-once Core statements instead of the ORM's unit of work, whose flush of these three
    rows was a sixth of the settlement's CPU (#15); on PostgreSQL they are one statement.
    Refused, with nothing written: an object with a change to a column this does not write
    (it would be lost). Raised after writing, so the transaction fails: an invoice or
    subscription the statement did not find (as the ORM's flush raised). The objects stay in
    the session, marked as stored: a later change to them is flushed as usual."""
    params: dict[str, Any] = {"i_id": invoice.id, "s_id": subscription.id}
    rows: tuple[tuple[str, Invoice | Subscription, tuple[str, ...]], ...] = (
        ("i", invoice, SALE_INVOICE_COLUMNS),
        ("s", subscription, SALE_SUBSCRIPTION_COLUMNS),
    )
    states: list[InstanceState[Any]] = []
    for prefix, row, columns in rows:
        state: InstanceState[Any] = inspect(row)
        # Assigned but maybe to the same value (``unmodified`` counts any assignment):
        # only a real change elsewhere would be lost.
        maybe = set(state.attrs.keys()) - state.unmodified - set(columns)
        changed = sorted(key for key in maybe if state.attrs[key].history.has_changes())
        if changed:
            raise ValueError(
                f"record_sale does not write {changed} of {type(row).__name__} {row.id}"
            )
        states.append(state)
        params.update({f"{prefix}_{name}": getattr(row, name) for name in columns})
    params.update({f"p_{name}": value for name, value in payment.items()})
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        found = len((await conn.execute(_SALE_IN_ONE, params)).all()) == 1
    else:
        found = (await conn.execute(_SALE_INVOICE, params)).rowcount == 1
        found = found and (await conn.execute(_SALE_SUBSCRIPTION, params)).rowcount == 1
        if found:
            await conn.execute(_SALE_PAYMENT, params)
    if not found:
        raise StaleDataError(
            f"invoice {invoice.id} or subscription {subscription.id} was not there to update"
        )
    identity_map = session.sync_session.identity_map
    for state in states:
        # What the unit of work does after its own UPDATE: the values are stored, so the
        # next flush has nothing to write for them. SQLAlchemy has no public call for it
        # (set_committed_value leaves the object flagged as modified, and every later
        # statement's autoflush would walk it); tests/test_purchase_flow.py checks that a
        # change after this is still written and one before it not written twice.
        state._commit_all(state.dict, identity_map)


#: Built once (every webhook looks its invoice up; see ``_LOCK_FOR_SETTLEMENT``).
_INVOICE_BY_PROVIDER_ID = select(Invoice).where(
    Invoice.provider == bindparam("provider"),
    Invoice.provider_invoice_id == bindparam("provider_invoice_id"),
)


async def invoice_by_provider_id(
    session: AsyncSession, provider: str, provider_invoice_id: str
) -> Invoice | None:
    result = await session.execute(
        _INVOICE_BY_PROVIDER_ID,
        {"provider": provider, "provider_invoice_id": provider_invoice_id},
    )
    return result.scalar_one_or_none()


async def latest_invoice_of(session: AsyncSession, subscription_id: int) -> Invoice | None:
    result = await session.execute(
        select(Invoice)
        .where(Invoice.subscription_id == subscription_id)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def invoices_to_reconcile(
    session: AsyncSession,
    *,
    providers: Sequence[str],
    now: datetime,
    late_after: datetime,
    limit: int,
) -> list[tuple[str, bool]]:
    """Invoices due for a re-fetch, as (id, still payable): open ones, and expired ones
    still inside the late-payment window. Each run takes the ones waiting longest (by
    ``next_check_at``; new invoices first), half the batch reserved for invoices that can
    still be paid, so a backlog of expired ones never starves a fresh paid one and every
    invoice is reached within a bounded number of runs."""
    due = or_(Invoice.next_check_at.is_(None), Invoice.next_check_at <= now)
    # Never-checked invoices first, newest first (a buyer may be waiting on it); then the
    # ones whose last check is oldest, so every invoice is reached in turn.
    newest = (Invoice.next_check_at.asc().nulls_first(), Invoice.created_at.desc(), Invoice.id)
    longest_waiting = (Invoice.next_check_at.asc().nulls_first(), Invoice.created_at, Invoice.id)
    live = (Invoice.status.in_(OPEN_STATUSES)) & (Invoice.expires_at > now)
    fresh = (
        (
            await session.execute(
                select(Invoice.id)
                .where(Invoice.provider.in_(providers), live, due)
                .order_by(*newest)
                .limit(max(1, limit // 2))
            )
        )
        .scalars()
        .all()
    )
    rest = (
        await session.execute(
            select(Invoice.id, live)
            .where(
                Invoice.provider.in_(providers),
                or_(
                    Invoice.status.in_(OPEN_STATUSES),
                    (Invoice.status == InvoiceStatus.EXPIRED) & (Invoice.expires_at > late_after),
                ),
                due,
                Invoice.id.not_in(fresh) if fresh else true(),
            )
            .order_by(*longest_waiting)
            .limit(limit - len(fresh))
        )
    ).all()
    return [(invoice_id, True) for invoice_id in fresh] + [
        (invoice_id, bool(payable)) for invoice_id, payable in rest
    ]


async def schedule_checks(
    session: AsyncSession, invoice_ids: Sequence[str], next_check_at: datetime
) -> None:
    if invoice_ids:
        await session.execute(
            update(Invoice).where(Invoice.id.in_(invoice_ids)).values(next_check_at=next_check_at)
        )


async def payment_of_invoice(session: AsyncSession, invoice_id: str) -> Payment | None:
    result = await session.execute(select(Payment).where(Payment.invoice_id == invoice_id))
    return result.scalar_one_or_none()


async def record_delivery(
    session: AsyncSession,
    *,
    provider: str,
    provider_invoice_id: str,
    event_type: str,
    delivery_id: str | None,
    payload: str,
    now: datetime,
) -> int | None:
    """The new delivery row's id, or None when one with this key is already there."""
    found: int | None = await insert_ignore_id(
        session,
        WebhookDelivery,
        {
            "provider": provider,
            "provider_invoice_id": provider_invoice_id,
            "event_type": event_type,
            "delivery_id": delivery_id,
            "payload": payload,
            "received_at": now,
            "claimed_at": now,
        },
        ["provider", "provider_invoice_id", "event_type"],
    )
    return found


#: Built once: a webhook's invoice (its id) and its inbox row, if any, in one round trip
#: where every webhook needs both before deciding anything (#15).
_INVOICE_AND_DELIVERY = (
    select(Invoice.id, WebhookDelivery)
    .outerjoin(
        WebhookDelivery,
        (WebhookDelivery.provider == Invoice.provider)
        & (WebhookDelivery.provider_invoice_id == Invoice.provider_invoice_id)
        & (WebhookDelivery.event_type == bindparam("event_type")),
    )
    .where(
        Invoice.provider == bindparam("provider"),
        Invoice.provider_invoice_id == bindparam("provider_invoice_id"),
    )
)


async def invoice_and_delivery(
    session: AsyncSession, provider: str, provider_invoice_id: str, event_type: str
) -> tuple[str, WebhookDelivery | None] | None:
    """Our invoice's id for the processor's invoice, and the inbox row of this event about
    it (None before its first delivery); None when the invoice is not ours."""
    result = await session.execute(
        _INVOICE_AND_DELIVERY,
        {
            "provider": provider,
            "provider_invoice_id": provider_invoice_id,
            "event_type": event_type,
        },
    )
    row = result.one_or_none()
    return None if row is None else (row[0], row[1])


#: Built once (every webhook asks the inbox first).
_DELIVERY = select(WebhookDelivery).where(
    WebhookDelivery.provider == bindparam("provider"),
    WebhookDelivery.provider_invoice_id == bindparam("provider_invoice_id"),
    WebhookDelivery.event_type == bindparam("event_type"),
)


async def delivery(
    session: AsyncSession, provider: str, provider_invoice_id: str, event_type: str
) -> WebhookDelivery | None:
    result = await session.execute(
        _DELIVERY,
        {
            "provider": provider,
            "provider_invoice_id": provider_invoice_id,
            "event_type": event_type,
        },
    )
    return result.scalar_one_or_none()


async def reclaim_delivery(
    session: AsyncSession, delivery_id: int, *, stale_before: datetime, now: datetime
) -> bool:
    """Take over an unprocessed delivery whose claim went stale (its worker died)."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.processed_at.is_(None),
            WebhookDelivery.claimed_at < stale_before,
        )
        .values(claimed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_delivery(session: AsyncSession, delivery_id: int) -> None:
    """Forget a delivery we could not act on, so the processor's retry is processed."""
    await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.processed_at.is_(None)
        )
    )


_DELIVERIES: Any = WebhookDelivery.__table__
#: On the table, not the mapped class, and run on the connection: the settlement's
#: transaction holds no delivery row as an object, and the ORM's bulk-update path (its
#: compile state, its search of the identity map for rows to synchronize) cost about as much
#: as the statement itself, on every webhook that changed something (#15).
_FINISH_DELIVERY = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("row_id"))
    .values(processed_at=bindparam("now"), outcome=bindparam("handled_as"))
)


async def finish_delivery(
    session: AsyncSession, delivery_id: int, outcome: str, now: datetime
) -> None:
    await (await session.connection()).execute(
        _FINISH_DELIVERY, {"row_id": delivery_id, "now": now, "handled_as": outcome}
    )


async def search_invoices(
    session: AsyncSession,
    *,
    status: InvoiceStatus | None = None,
    provider: str | None = None,
    plan_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> Sequence[Invoice]:
    """Invoices by status, rail, plan and creation date, newest first."""
    query = select(Invoice).order_by(Invoice.created_at.desc(), Invoice.id).limit(limit)
    if status is not None:
        query = query.where(Invoice.status == status)
    if provider is not None:
        query = query.where(Invoice.provider == provider)
    if plan_id is not None:
        query = query.where(Invoice.plan_id == plan_id)
    if since is not None:
        query = query.where(Invoice.created_at >= since)
    if until is not None:
        query = query.where(Invoice.created_at < until)
    return (await session.execute(query)).scalars().all()


# -- referral figures over settled payments: what ``satshare figures check`` compares the
# -- ledger's figures with, and the leaderboard's way on a day the sealer has not reached --


def not_refunded() -> ColumnElement[bool]:
    """Payments whose sale was not reversed (refunded)."""
    reversal = aliased(Entry)
    return ~exists().where(reversal.reverses_entry_id == Payment.ledger_entry_id)


async def referrer_ranking(
    session: AsyncSession, by: str, since: datetime | None, limit: int
) -> list[tuple[int, int]]:
    """(referrer id, value) of the top referrers: by paying referrals (distinct buyers,
    ``by="referrals"``) or by referred sales in sats; refunded sales excluded."""
    buyer = aliased(User)
    value = (
        func.count(distinct(Payment.user_id))
        if by == "referrals"
        else func.coalesce(func.sum(Entry.gross_sats), 0)
    )
    query = (
        select(buyer.referrer_id, value.label("value"))
        .select_from(Payment)
        .join(buyer, buyer.id == Payment.user_id)
        .join(Entry, Entry.id == Payment.ledger_entry_id)
        .where(buyer.referrer_id.is_not(None), not_refunded())
        .group_by(buyer.referrer_id)
        .order_by(value.desc(), buyer.referrer_id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(Payment.settled_at >= since)
    return [(int(uid), int(v)) for uid, v in (await session.execute(query)).all() if uid and v]


async def referred_counts(session: AsyncSession, user_id: int) -> tuple[int, int, int]:
    """The affiliate's direct referrals: (registered, paying, what they paid in sats)."""
    registered = await session.scalar(
        select(func.count(User.id)).where(User.referrer_id == user_id)
    )
    paying, sales = (
        await session.execute(
            select(
                func.count(distinct(Payment.user_id)),
                func.coalesce(func.sum(Payment.amount_sats), 0),
            )
            .join(User, User.id == Payment.user_id)
            .where(User.referrer_id == user_id, not_refunded())
        )
    ).one()
    return int(registered or 0), int(paying), int(sales)


#: Invoices that were paid (a refund does not make a buyer someone who never paid).
PAID_STATUSES = (InvoiceStatus.SETTLED, InvoiceStatus.REFUNDING, InvoiceStatus.REFUNDED)


async def has_paid(session: AsyncSession, user_id: int) -> bool:
    """Whether the user ever paid an invoice (a first purchase is one made before that)."""
    result = await session.execute(
        select(Invoice.id)
        .where(Invoice.user_id == user_id, Invoice.status.in_(PAID_STATUSES))
        .limit(1)
    )
    return result.first() is not None
