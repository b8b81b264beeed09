"""Database kernel: declarative base, column types and the unit of work.

Services never commit. The boundary (an API request, a job, a CLI command) opens
``Database.transaction()`` (or ``reading()``) and the transaction commits when the block
ends; work made of statements each safe alone (a webhook's inbox look-up and claim) may
use ``each_statement_alone()`` instead, which on PostgreSQL sends no BEGIN or COMMIT.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    String,
    delete,
    event,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Store UTC, always hand back timezone-aware UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # asyncpg's answer is UTC already
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


EnumT = TypeVar("EnumT", bound=StrEnum)
#: What a consistent read returns.
R = TypeVar("R")

#: What the rate limits' database storage names as its backend's errors (limits wraps
#: these when asked to); which of them are an outage is ``database_down``'s question.
DATABASE_ERRORS: tuple[type[Exception], ...] = (OSError, SQLAlchemyError)
#: SQLSTATE classes of a server that is down or refusing: connection exceptions (08),
#: insufficient resources (53: too many connections), operator intervention (57: shutting
#: down, starting up).
_DOWN_SQLSTATE_CLASSES = ("08", "53", "57")
#: SQLite's result codes of a file that cannot be used right now (locked, busy, full, I/O).
_SQLITE_DOWN = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN")


def database_down(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is down, unreachable or refusing for now, rather
    than a bug (a constraint, a bad statement, a lazy load outside a greenlet): a health
    check or a job that falls back logs an outage in one line and keeps a bug's traceback.
    asyncpg raises a refused connection as the OS's error, unwrapped; a connection lost
    mid-query as a DBAPIError SQLAlchemy marks invalidated; a server starting up or out of
    connections by its SQLSTATE."""
    if isinstance(exc, (OSError, sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str) and state:
        return state[:2] in _DOWN_SQLSTATE_CLASSES
    name = getattr(exc.orig, "sqlite_errorname", None)
    if isinstance(name, str) and name:
        return name.startswith(_SQLITE_DOWN)
    # psycopg's failures to connect carry no SQLSTATE (SQLite's errors all carry a name).
    return isinstance(exc, sa_exc.OperationalError)


class StrEnumText(TypeDecorator[EnumT]):
    """A ``StrEnum`` stored as its plain string value (VARCHAR, no database enum, so adding
    a member needs no migration) and read back as the enum member."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[EnumT], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: EnumT | str | None, dialect: Dialect) -> str | None:
        # A string that is not a member fails here, before it reaches the row.
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> EnumT | None:
        return None if value is None else self.enum(value)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs and pick the async drivers."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif driver == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL, absolute; None for an in-memory one or another
    database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file::memory:"):
        return None
    return Path(parsed.database).absolute()


_READONLY = "satshare_readonly"


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE for writers.

    pysqlite's deferred BEGIN lets two writers both read and then deadlock on the lock
    upgrade, which a busy timeout cannot resolve. Writers take the lock up front instead.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


@dataclass(slots=True)
class _Pending:
    stack: AsyncExitStack
    session: AsyncSession


class DeferredCommit:
    """The write transaction of one task whose commit is being held back."""

    def __init__(self, on_commit: Callable[[AsyncSession], Awaitable[None]]) -> None:
        self.owner = asyncio.current_task()
        self.on_commit = on_commit
        self.pending: _Pending | None = None
        #: Whether any write of the task has committed (or is pending).
        self.wrote = False

    async def rollback_pending(self) -> None:
        """Drop the held-back transaction: nothing of it is committed."""
        pending, self.pending = self.pending, None
        if pending is not None:
            abandoned = RuntimeError("the request was abandoned")
            await pending.stack.__aexit__(type(abandoned), abandoned, None)

    async def commit_pending(
        self, last: Callable[[AsyncSession], Awaitable[None]] | None = None
    ) -> bool:
        """Commit the held-back transaction, after on_commit and ``last`` ran in it. False
        when nothing was pending."""
        pending, self.pending = self.pending, None
        if pending is None:
            return False
        try:
            await self.on_commit(pending.session)
            if last is not None:
                await last(pending.session)
        except BaseException:
            await pending.stack.__aexit__(*sys.exc_info())
            raise
        await pending.stack.aclose()  # COMMIT
        self.wrote = True
        return True


_deferred: ContextVar[DeferredCommit | None] = ContextVar("satshare_deferred", default=None)


class Database:
    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = is_sqlite(self.url)
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            # No overflow: opening a PostgreSQL connection (and re-preparing statements on it)
            # under load costs far more than waiting a moment for a pooled one. No pre-ping
            # (a round trip per checkout); connections are recycled hourly instead.
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_timeout=60, pool_recycle=3600)
        self.engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(
            self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False
        )
        # Statements that commit on their own: no BEGIN and COMMIT round trips around them
        # (asyncpg runs a statement outside a transaction when autocommit is on; setting it
        # on a pooled connection and back sends nothing to the server).
        self._alone_sessions = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        # One writer at a time inside this process on SQLite: queueing here is fair and
        # cheap, where SQLite's busy handler would sleep and poll.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, effect: bool = True) -> AsyncIterator[AsyncSession]:
        """A read-write unit of work: commits on success, rolls back on any exception.

        Inside ``deferred_commit`` (same task), the commit of the last such unit is held
        back until the caller finishes, so that it can add its own rows to it. ``effect=False``
        marks bookkeeping that is not what the request is for (an API key's last use): it
        commits at once and does not count as the request's effect."""
        deferred = _deferred.get()
        if deferred is not None and deferred.owner is asyncio.current_task():
            await deferred.commit_pending()
        if deferred is not None and deferred.owner is asyncio.current_task() and effect:
            stack = AsyncExitStack()
            try:
                if self._write_lock is not None:
                    await stack.enter_async_context(self._write_lock)
                session = await stack.enter_async_context(self._sessions())
                await stack.enter_async_context(session.begin())
                yield session
                await session.flush()  # constraint errors surface here, as a commit's would
            except BaseException:
                await stack.__aexit__(*sys.exc_info())
                raise
            deferred.pending = _Pending(stack, session)
            return
        if self._write_lock is not None:
            async with self._write_lock, self._sessions() as session, session.begin():
                yield session
        else:
            async with self._sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (never takes SQLite's write lock). Inside
        ``deferred_commit``, after a write, it reads through that write's transaction, so
        it sees what was written."""
        deferred = _deferred.get()
        if (
            deferred is not None
            and deferred.pending is not None
            and deferred.owner is asyncio.current_task()
        ):
            yield deferred.pending.session
            return
        async with self._read_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def each_statement_alone(
        self, *, write: bool, effect: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """A unit of work whose statements each commit on their own, with no BEGIN and
        COMMIT around them: two round trips fewer, for work that is one statement, or
        statements each safe alone (a conditional UPDATE that checks what it changes).
        Every webhook's inbox look-up and claim is such work, and on a settlement's path
        those four round trips were a quarter of the database's (#15).

        On PostgreSQL only. On SQLite, and inside ``deferred_commit`` (whose writes must
        commit together), it is the usual ``transaction(effect=effect)`` (``write``) or
        ``reading()``."""
        deferred = _deferred.get()
        if self.is_sqlite or (deferred is not None and deferred.owner is asyncio.current_task()):
            async with self.transaction(effect=effect) if write else self.reading() as session:
                yield session
            return
        async with self._alone_sessions() as session:
            yield session
            await session.commit()  # flushes what the ORM holds; nothing to send the server

    @asynccontextmanager
    async def deferred_commit(
        self, on_commit: Callable[[AsyncSession], Awaitable[None]]
    ) -> AsyncIterator[DeferredCommit]:
        """Run a request whose last write must commit together with rows of the caller's
        (the Idempotency-Key record and its stored answer: see ``api/idempotency.py``).

        Every write transaction the current task opens inside this block is flushed but not
        committed when its block ends; it commits when the next one begins (``on_commit``
        runs in it first), or in ``finish``. Leaving the block without ``finish`` commits
        whatever is pending (with ``on_commit``), so nothing written is lost."""
        deferred = DeferredCommit(on_commit)
        token = _deferred.set(deferred)
        try:
            yield deferred
        finally:
            _deferred.reset(token)
            await deferred.commit_pending()

    async def ping(self) -> None:
        """One round trip to the database (the health check); raises when it is unreachable."""
        async with self._read_sessions() as session, session.begin():
            await session.execute(text("SELECT 1"))

    def pool_status(self) -> dict[str, int]:
        """Connections of this process's pool (for /metrics); empty for a pool that does
        not count them (an in-memory SQLite database's)."""
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return {}
        return {
            "size": pool.size(),
            "checked_out": pool.checkedout(),
            "idle": pool.checkedin(),
            "overflow": max(0, pool.overflow()),
        }

    async def dispose(self) -> None:
        await self.engine.dispose()


async def driver_rows(session: AsyncSession, query: Any) -> Sequence[Sequence[Any]]:
    """A column query's rows, on PostgreSQL as asyncpg hands them over: without SQLAlchemy's
    result layer, which built a row object per row (a tenth of ``ledger verify``'s CPU at a
    million payments, #15). The columns' result processing is skipped with it, so only for
    columns the driver already answers as wanted (integers, text, UTC timestamps: asyncpg
    gives timestamps with time zone in UTC), and its parameters must be plain values."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return (await connection.execute(query)).all()
    compiled = query.compile(dialect=connection.dialect)
    params = compiled.construct_params()
    values = [params[name] for name in compiled.positiontup or ()]
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    rows: Sequence[Sequence[Any]] = await driver.fetch(compiled.string, *values)
    return rows


async def read_between_commits(
    session: AsyncSession,
    read: Callable[[], Awaitable[R]],
    *,
    version: Callable[[], Awaitable[object]],
    hold: Callable[[], Awaitable[object]],
    tries: int,
) -> R:
    """``read`` (several statements) as of one state of data a writer commits under a version
    counter: read again while the version moved during the read, up to ``tries`` times,
    then once more with the writer held off by ``hold`` (a share lock on the version row).

    The share lock is taken inside a savepoint rolled back right after the read, so it is
    released at once: held to the end of the caller's transaction (a settlement asks its
    affiliate's level), it made the writer (the sealer) wait for that transaction, and
    every later share lock queued behind the waiting writer (#15). Objects loaded inside
    are not expired by the rollback (only changed ones are, and a read changes none)."""
    for _ in range(tries):
        before = await version()
        result = await read()
        if await version() == before:
            return result
    savepoint = await session.begin_nested()  # flushes pending changes first
    try:
        await hold()
        return await read()
    finally:
        await savepoint.rollback()


async def insert_ignore(
    session: AsyncSession, model: type[Base], values: dict[str, Any], conflict: list[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on both backends; True when a row was inserted.
    Through the statement built once per table, as ``insert_ignore_id``."""
    return await insert_ignore_id(session, model, values, conflict) is not None


async def insert_ignore_rows(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]], conflict: list[str]
) -> list[Any]:
    """Several rows (every one with the same keys) in one INSERT ... ON CONFLICT DO NOTHING
    (on ``conflict``'s unique index): the primary keys of the rows inserted, in no
    particular order; a row that met a conflict is left out.

    Executed as SQLAlchemy's "insertmanyvalues" (one multi-row statement, compiled once per
    table and cached): a multi-row ``values([...])`` would be compiled again on every call,
    and this runs on every sale (its outbox rows) and every burst of bot updates."""
    if not rows:
        return []
    statement = _insert_ignoring(model, tuple(conflict), session.get_bind().dialect.name)
    return list((await session.execute(statement, list(rows))).scalars())


async def insert_ignore_id(
    session: AsyncSession, model: type[Base], values: dict[str, Any], conflict: list[str]
) -> Any:
    """One row by INSERT ... ON CONFLICT DO NOTHING RETURNING its key, from the statement
    built once per table: the new row's primary key, or None when it met a conflict."""
    statement = _insert_ignoring(model, tuple(conflict), session.get_bind().dialect.name)
    return (await session.execute(statement, values)).scalar()


@functools.cache
def _insert_ignoring(model: type[Base], conflict: tuple[str, ...], dialect: str) -> Any:
    """Built once per table (a settlement's outbox rows take this path on every sale)."""
    table: Any = model.__table__
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    return (
        dialect_insert(table)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(*table.primary_key.columns)
    )


async def delete_first(
    session: AsyncSession, model: type[Base], *conditions: Any, limit: int
) -> int:
    """Delete up to ``limit`` rows of ``model`` (keyed by ``id``) meeting ``conditions``, in
    one statement without loading them; how many (the purges' step)."""
    table: Any = model
    first = select(table.id).where(*conditions).limit(limit).scalar_subquery()
    result = await session.execute(
        delete(table).where(table.id.in_(first)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_in_batches(
    db: Database, step: Callable[[AsyncSession, int], Awaitable[int]], batch: int
) -> int:
    """Run ``step`` (deleting at most ``batch`` rows, saying how many) in a transaction of
    its own until it deletes fewer: short locks and bounded work each; how many in all."""
    purged = 0
    while True:
        async with db.transaction() as session:
            deleted = await step(session, batch)
        purged += deleted
        if deleted < batch:
            return purged
