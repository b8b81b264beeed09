"""All SQL of the ledger's figures."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from satshare.db import insert_ignore
from satshare.ledger.accounts import affiliate_payable
from satshare.ledger.figures.fold import EntryFacts, Original
from satshare.ledger.figures.models import (
    FiguresBuyer,
    FiguresBuyerDay,
    FiguresDay,
    FiguresState,
    FiguresUser,
    FiguresUserDay,
    FiguresUserMonth,
    SaleBuyer,
)
from satshare.ledger.models import (
    GENESIS_HASH,
    SALE_KINDS,
    Account,
    ChainHead,
    Entry,
    Posting,
    SealQueue,
)
from satshare.users.models import User

STATE_ID = 1


def _dialect_insert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


async def lock_chain_head(session: AsyncSession) -> None:
    """Wait for the entries chain's head and hold it: no sealer runs until this transaction
    ends (the rebuild's guard; a sealer itself skips a held head)."""
    await insert_ignore(session, ChainHead, {"id": 1, "seq": 0, "hash": GENESIS_HASH}, ["id"])
    await session.execute(select(ChainHead.id).where(ChainHead.id == 1).with_for_update())


# -- the state row ---------------------------------------------------------------------------


async def state(session: AsyncSession, *, lock: bool = False, share: bool = False) -> FiguresState:
    """Row 1 (created on first use). ``lock``: FOR UPDATE (the sealer's); ``share``: FOR
    SHARE, which holds the sealer off until this transaction ends."""
    await session.execute(
        _dialect_insert(session.get_bind().dialect.name)(FiguresState)
        .values(id=STATE_ID, version=0, rolled_day=None)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    query = select(FiguresState).where(FiguresState.id == STATE_ID)
    if lock or share:
        query = query.with_for_update(read=share)
    query = query.execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one()


async def version(session: AsyncSession) -> tuple[int, date | None]:
    row = (await session.execute(_version_query())).first()
    return (int(row[0]), row[1]) if row else (0, None)


# The reads a referred sale makes when an affiliate level has thresholds, and the sealer at
# every fold, as statements built once (ids: an expanding parameter): building them per call
# showed in py-spy beside running them (#15).


@functools.cache
def _version_query() -> Any:
    return select(FiguresState.version, FiguresState.rolled_day).where(FiguresState.id == STATE_ID)


@functools.cache
def _buyers_query() -> Any:
    return select(FiguresBuyer).where(
        FiguresBuyer.buyer_user_id.in_(bindparam("ids", expanding=True))
    )


@functools.cache
def _buyer_days_query() -> Any:
    return select(
        FiguresBuyerDay.buyer_user_id, FiguresBuyerDay.day, FiguresBuyerDay.payments
    ).where(FiguresBuyerDay.buyer_user_id.in_(bindparam("ids", expanding=True)))


@functools.cache
def _users_query() -> Any:
    return select(FiguresUser).where(FiguresUser.user_id.in_(bindparam("ids", expanding=True)))


async def set_state(session: AsyncSession, version: int, rolled_day: date | None) -> None:
    await session.execute(
        update(FiguresState)
        .where(FiguresState.id == STATE_ID)
        .values(version=version, rolled_day=rolled_day)
    )


# -- what entries are, for the fold ----------------------------------------------------------


async def facts(
    session: AsyncSession, entry_ids: Sequence[int] | None = None, *, referrer: int | None = None
) -> list[EntryFacts]:
    """The entries (by id; None: those waiting for the sealer), oldest first. ``referrer``:
    only the sales of buyers they referred, and the refunds of those."""
    if entry_ids is not None and not entry_ids:
        return []
    query = _facts_query(by_ids=entry_ids is not None, of_referrer=referrer is not None)
    params: dict[str, Any] = {}
    if referrer is not None:
        params["referrer"] = referrer
    if entry_ids is not None:
        params["ids"] = list(entry_ids)
    rows = (await session.execute(query, params)).all()
    if not rows:
        return []
    postings: dict[int, list[tuple[str, int]]] = defaultdict(list)
    posted = await session.execute(_postings_query(), {"ids": [row[0] for row in rows]})
    for entry_id, code, amount in posted.all():
        postings[entry_id].append((code, int(amount)))
    return [
        EntryFacts(
            entry_id=row[0],
            kind=row[1],
            created_at=row[2],
            gross_sats=row[3],
            affiliate_user_id=row[4],
            buyer_user_id=row[5],
            referrer_user_id=row[6],
            renewal=bool(row[7]),
            buyer_registered_at=row[8],
            postings=postings[row[0]],
            original=None
            if row[9] is None
            else Original(
                kind=row[9],
                gross_sats=row[10],
                created_at=row[11],
                buyer_user_id=row[12],
                referrer_user_id=row[13],
            ),
        )
        for row in rows
    ]


@functools.cache
def _facts_query(*, by_ids: bool, of_referrer: bool) -> Any:
    """``facts``'s query, built once per variant (``ids``, ``referrer``: parameters). Every
    referred sale asks for its referrer's queued entries when a level has thresholds, and
    building this select of aliased entities cost about ten times running it (py-spy on
    ``bench.settle_tx --level``, #15)."""
    original = aliased(Entry)
    buyer, original_buyer = aliased(SaleBuyer), aliased(SaleBuyer)
    query = (
        select(
            Entry.id,
            Entry.kind,
            Entry.created_at,
            Entry.gross_sats,
            Entry.affiliate_user_id,
            buyer.buyer_user_id,
            buyer.referrer_user_id,
            buyer.renewal,
            User.created_at,
            original.kind,
            original.gross_sats,
            original.created_at,
            original_buyer.buyer_user_id,
            original_buyer.referrer_user_id,
        )
        .outerjoin(buyer, buyer.entry_id == Entry.id)
        .outerjoin(User, User.id == buyer.buyer_user_id)
        .outerjoin(original, original.id == Entry.reverses_entry_id)
        .outerjoin(original_buyer, original_buyer.entry_id == original.id)
        .order_by(Entry.id)
    )
    if of_referrer:
        referrer: BindParameter[int] = bindparam("referrer")
        query = query.where(
            or_(buyer.referrer_user_id == referrer, original_buyer.referrer_user_id == referrer)
        )
    if by_ids:
        return query.where(Entry.id.in_(bindparam("ids", expanding=True)))
    return query.join(SealQueue, SealQueue.entry_id == Entry.id)


@functools.cache
def _postings_query() -> Any:
    return (
        select(Posting.entry_id, Account.code, Posting.amount_sats)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.entry_id.in_(bindparam("ids", expanding=True)))
        .order_by(Posting.id)
    )


async def unsealed_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(SealQueue.entry_id)))).scalar_one())


async def sealed_ids_after(session: AsyncSession, after_id: int, limit: int) -> list[int]:
    """Ids of entries the sealer has chained (not queued), in order (for the rebuild)."""
    queued = select(SealQueue.entry_id)
    rows = await session.execute(
        select(Entry.id)
        .where(Entry.id > after_id, Entry.id.not_in(queued))
        .order_by(Entry.id)
        .limit(limit)
    )
    return [int(entry_id) for entry_id in rows.scalars().all()]


# -- writing ---------------------------------------------------------------------------------

#: The counter columns of each table (everything but the key).
DAY_COLUMNS = tuple(c.name for c in FiguresDay.__table__.columns if c.name != "day")
USER_DAY_COLUMNS = tuple(
    c.name for c in FiguresUserDay.__table__.columns if c.name not in ("user_id", "day")
)
USER_COLUMNS = tuple(c.name for c in FiguresUser.__table__.columns if c.name != "user_id")
MONTH_COLUMNS = tuple(
    c.name for c in FiguresUserMonth.__table__.columns if c.name not in ("user_id", "month")
)


async def add(
    session: AsyncSession,
    model: type[FiguresDay]
    | type[FiguresUserDay]
    | type[FiguresUserMonth]
    | type[FiguresUser]
    | type[FiguresBuyerDay],
    keys: Sequence[str],
    rows: Iterable[tuple[tuple[Any, ...], Mapping[str, int]]],
) -> None:
    """Add each delta to the row with its key, creating missing rows (one upsert per
    chunk of rows)."""
    table: Any = model.__table__
    columns = [c.name for c in table.columns if c.name not in keys]
    values = [
        {**dict(zip(keys, key, strict=True)), **{c: int(delta.get(c, 0)) for c in columns}}
        for key, delta in rows
    ]
    if values:
        statement = _adding(table, tuple(keys), session.get_bind().dialect.name)
        await session.execute(statement, values)


@functools.cache
def _adding(table: Any, keys: tuple[str, ...], dialect: str) -> Any:
    """The upsert adding each delta to its row, built once per table and executed with the
    rows as parameters: a multi-row ``values([...])`` was compiled anew at every fold, and
    the sealer folds after every batch of sales (#15)."""
    statement = _dialect_insert(dialect)(table)
    columns = [c.name for c in table.columns if c.name not in keys]
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: table.c[c] + statement.excluded[c] for c in columns},
    )


async def buyers(session: AsyncSession, ids: Sequence[int]) -> dict[int, FiguresBuyer]:
    found: dict[int, FiguresBuyer] = {}
    for start in range(0, len(ids), 1000):
        rows = await session.execute(_buyers_query(), {"ids": list(ids[start : start + 1000])})
        found.update({row.buyer_user_id: row for row in rows.scalars().all()})
    return found


async def buyer_days(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[date, int]]:
    found: dict[int, dict[date, int]] = defaultdict(dict)
    for start in range(0, len(ids), 1000):
        rows = await session.execute(_buyer_days_query(), {"ids": list(ids[start : start + 1000])})
        for buyer_id, day, payments in rows.all():
            found[buyer_id][day] = int(payments)
    return found


async def put_buyers(
    session: AsyncSession, rows: Sequence[tuple[int, int | None, int, int, date | None]]
) -> None:
    """(buyer, referrer, sales, payments, last day): set, creating missing rows."""
    values = [
        {"buyer_user_id": b, "referrer_user_id": r, "sales": s, "payments": p, "last_day": d}
        for b, r, s, p, d in rows
    ]
    if values:
        await session.execute(_putting_buyers(session.get_bind().dialect.name), values)


@functools.cache
def _putting_buyers(dialect: str) -> Any:
    """Built once (see ``_adding``)."""
    statement = _dialect_insert(dialect)(FiguresBuyer.__table__)
    return statement.on_conflict_do_update(
        index_elements=["buyer_user_id"],
        set_={
            "sales": statement.excluded.sales,
            "payments": statement.excluded.payments,
            "last_day": statement.excluded.last_day,
        },
    )


async def shift_windows(
    session: AsyncSession, column: str, source: str, days_after: date, days_until: date, sign: int
) -> None:
    """Add ``sign`` times each user's ``source`` summed over the days in (after, until] to their
    window counter ``column`` (a window moving: -1 for days leaving it, 1 for coming back)."""
    per_user = (
        select(func.sum(getattr(FiguresUserDay, source)))
        .where(
            FiguresUserDay.user_id == FiguresUser.user_id,
            FiguresUserDay.day > days_after,
            FiguresUserDay.day <= days_until,
        )
        .scalar_subquery()
    )
    moved = select(FiguresUserDay.user_id).where(
        FiguresUserDay.day > days_after, FiguresUserDay.day <= days_until
    )
    target = getattr(FiguresUser, column)
    await session.execute(
        update(FiguresUser)
        .where(FiguresUser.user_id.in_(moved))
        .values({column: target + sign * func.coalesce(per_user, 0)})
        .execution_options(synchronize_session=False)
    )


async def shift_buyer_windows(
    session: AsyncSession, column: str, days_after: date, days_until: date, sign: int
) -> None:
    """The same for a count of buyers whose last payment fell in (after, until]."""
    leaving = (
        select(func.count())
        .select_from(FiguresBuyer)
        .where(
            FiguresBuyer.referrer_user_id == FiguresUser.user_id,
            FiguresBuyer.payments > 0,
            FiguresBuyer.last_day > days_after,
            FiguresBuyer.last_day <= days_until,
        )
        .scalar_subquery()
    )
    referrers = select(FiguresBuyer.referrer_user_id).where(
        FiguresBuyer.payments > 0,
        FiguresBuyer.last_day > days_after,
        FiguresBuyer.last_day <= days_until,
    )
    target = getattr(FiguresUser, column)
    await session.execute(
        update(FiguresUser)
        .where(FiguresUser.user_id.in_(referrers))
        .values({column: target + sign * leaving})
        .execution_options(synchronize_session=False)
    )


async def clear(session: AsyncSession) -> None:
    """Empty every figures table (the rebuild refills them)."""
    for model in (
        FiguresDay,
        FiguresUserDay,
        FiguresUserMonth,
        FiguresUser,
        FiguresBuyerDay,
        FiguresBuyer,
    ):
        await session.execute(delete(model))


# -- reading ---------------------------------------------------------------------------------


async def days(
    session: AsyncSession, start: date | None = None, end: date | None = None
) -> dict[date, dict[str, int]]:
    """The figures of the days in [start, end) (None: unbounded)."""
    query = select(FiguresDay)
    if start is not None:
        query = query.where(FiguresDay.day >= start)
    if end is not None:
        query = query.where(FiguresDay.day < end)
    rows = (await session.execute(query)).scalars().all()
    return {row.day: {c: int(getattr(row, c)) for c in DAY_COLUMNS} for row in rows}


async def owed_before(session: AsyncSession, day: date) -> int:
    """What the affiliates' debt changed by on the days before ``day`` (their debt then)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(FiguresDay.owed_delta_sats), 0)).where(FiguresDay.day < day)
    )
    return int(total or 0)


async def sealed_entries(session: AsyncSession) -> int:
    total = await session.scalar(select(func.coalesce(func.sum(FiguresDay.entries), 0)))
    return int(total or 0)


async def users(session: AsyncSession, ids: Iterable[int]) -> dict[int, dict[str, int]]:
    wanted = sorted(set(ids))
    found: dict[int, dict[str, int]] = {}
    for start in range(0, len(wanted), 1000):
        rows = await session.execute(_users_query(), {"ids": wanted[start : start + 1000]})
        for row in rows.scalars().all():
            found[row.user_id] = {c: int(getattr(row, c)) for c in USER_COLUMNS}
    return found


async def top_users(
    session: AsyncSession, column: str, limit: int, *, nonzero: Sequence[str] = ()
) -> list[tuple[int, dict[str, int]]]:
    """The first ``limit`` users by ``column`` (highest first, then by id), leaving out rows
    where every column of ``nonzero`` (default: ``column``) is 0."""
    ordered = getattr(FiguresUser, column)
    conditions: list[ColumnElement[bool]] = [
        getattr(FiguresUser, c) != 0 for c in (nonzero or (column,))
    ]
    rows = await session.execute(
        select(FiguresUser)
        .where(or_(*conditions))
        .order_by(ordered.desc(), FiguresUser.user_id)
        .limit(limit)
    )
    return [
        (row.user_id, {c: int(getattr(row, c)) for c in USER_COLUMNS})
        for row in rows.scalars().all()
    ]


async def user_days(
    session: AsyncSession, user_id: int, start: date | None = None, end: date | None = None
) -> dict[date, dict[str, int]]:
    query = select(FiguresUserDay).where(FiguresUserDay.user_id == user_id)
    if start is not None:
        query = query.where(FiguresUserDay.day >= start)
    if end is not None:
        query = query.where(FiguresUserDay.day < end)
    rows = (await session.execute(query)).scalars().all()
    return {row.day: {c: int(getattr(row, c)) for c in USER_DAY_COLUMNS} for row in rows}


async def users_in_days(session: AsyncSession, start: date, end: date) -> dict[int, dict[str, int]]:
    """Every user's figures summed over the days in [start, end)."""
    columns = [func.sum(getattr(FiguresUserDay, c)) for c in USER_DAY_COLUMNS]
    rows = await session.execute(
        select(FiguresUserDay.user_id, *columns)
        .where(FiguresUserDay.day >= start, FiguresUserDay.day < end)
        .group_by(FiguresUserDay.user_id)
    )
    return {
        int(row[0]): {c: int(v or 0) for c, v in zip(USER_DAY_COLUMNS, row[1:], strict=True)}
        for row in rows.all()
    }


async def owed_per_user(
    session: AsyncSession, end: date | None, user_ids: Sequence[int] | None = None
) -> dict[int, int]:
    """What each affiliate (or each of ``user_ids``) was owed at the start of day ``end``
    (None: now), those owed nothing left out: today's debt less the changes from that day
    on."""
    later: dict[int, int] = {}
    if end is not None:
        query = select(FiguresUserDay.user_id, func.sum(FiguresUserDay.owed_delta_sats)).where(
            FiguresUserDay.day >= end
        )
        if user_ids is not None:
            query = query.where(FiguresUserDay.user_id.in_(list(user_ids)))
        rows = await session.execute(query.group_by(FiguresUserDay.user_id))
        later = {int(uid): int(total or 0) for uid, total in rows.all()}
    if user_ids is not None:
        owed = await session.execute(
            select(FiguresUser.user_id, FiguresUser.owed_sats).where(
                FiguresUser.user_id.in_(list(user_ids))
            )
        )
    else:
        owed = await session.execute(
            select(FiguresUser.user_id, FiguresUser.owed_sats).where(
                or_(FiguresUser.owed_sats != 0, FiguresUser.user_id.in_(list(later)))
                if later
                else FiguresUser.owed_sats != 0
            )
        )
    found = {int(uid): int(total) - later.get(int(uid), 0) for uid, total in owed.all()}
    return {uid: total for uid, total in found.items() if total}


async def top_of_month(
    session: AsyncSession, month: date, limit: int, after: tuple[int, int] | None
) -> list[tuple[int, dict[str, int]]]:
    """The month's first ``limit`` earners (earned > 0; most earned first, then by id),
    after the line ``after`` (its earned sats, its user id) if given."""
    query = select(FiguresUserMonth).where(
        FiguresUserMonth.month == month, FiguresUserMonth.earned_sats > 0
    )
    if after is not None:
        earned, user_id = after
        query = query.where(
            or_(
                FiguresUserMonth.earned_sats < earned,
                (FiguresUserMonth.earned_sats == earned) & (FiguresUserMonth.user_id > user_id),
            )
        )
    rows = await session.execute(
        query.order_by(FiguresUserMonth.earned_sats.desc(), FiguresUserMonth.user_id).limit(limit)
    )
    return [
        (row.user_id, {c: int(getattr(row, c)) for c in MONTH_COLUMNS})
        for row in rows.scalars().all()
    ]


async def user_months(
    session: AsyncSession, month: date, user_ids: Iterable[int]
) -> dict[int, dict[str, int]]:
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(FiguresUserMonth).where(
            FiguresUserMonth.month == month, FiguresUserMonth.user_id.in_(wanted)
        )
    )
    return {
        row.user_id: {c: int(getattr(row, c)) for c in MONTH_COLUMNS}
        for row in rows.scalars().all()
    }


async def all_user_months(session: AsyncSession) -> dict[tuple[int, date], dict[str, int]]:
    """Every row (the check's)."""
    rows = await session.execute(select(FiguresUserMonth))
    return {
        (row.user_id, row.month): {c: int(getattr(row, c)) for c in MONTH_COLUMNS}
        for row in rows.scalars().all()
    }


async def unrefunded_commissions_on(
    session: AsyncSession, user_id: int, after: datetime, before: datetime
) -> int:
    """Commissions (as a positive sum) credited to the affiliate by sales made in
    (after, before) that were not refunded: the part of a day the per-day sums cannot cut."""
    reversal = aliased(Entry)
    total = await session.scalar(
        select(func.coalesce(func.sum(Posting.amount_sats), 0))
        .join(Entry, Entry.id == Posting.entry_id)
        .join(Account, Account.id == Posting.account_id)
        .where(
            Entry.affiliate_user_id == user_id,
            Entry.created_at > after,
            Entry.created_at < before,
            Entry.kind.in_(SALE_KINDS),
            Account.code == affiliate_payable(user_id),
            Posting.amount_sats < 0,
            ~select(reversal.id).where(reversal.reverses_entry_id == Entry.id).exists(),
        )
    )
    return -int(total or 0)


async def user_ids(session: AsyncSession) -> list[int]:
    """Every user with a row of figures (for the check)."""
    rows = await session.execute(select(FiguresUser.user_id).order_by(FiguresUser.user_id))
    return [int(uid) for uid in rows.scalars().all()]
