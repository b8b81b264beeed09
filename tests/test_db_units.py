"""The database's units of work beside ``transaction()`` and ``reading()`` (#15)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.db import Database
from satshare.payments import repository
from tests.conftest import Stack

KEY = ("btcpay", "inv-alone", "InvoiceSettled")


class _Failed(Exception):
    pass


async def _record(session: AsyncSession) -> None:
    provider, provider_invoice_id, event_type = KEY
    row_id = await repository.record_delivery(
        session,
        provider=provider,
        provider_invoice_id=provider_invoice_id,
        event_type=event_type,
        delivery_id=None,
        payload="{}",
        now=datetime.now(UTC),
    )
    assert row_id is not None


async def test_each_statement_alone_commits_each_statement_on_postgresql(stack: Stack) -> None:
    """On PostgreSQL a statement commits by itself: another connection sees its row before
    the block ends, and a failure after it takes nothing back. On SQLite it is the usual
    transaction, rolled back with the failure."""
    db = stack.db
    seen_inside = None
    with pytest.raises(_Failed):
        async with db.each_statement_alone(write=True) as session:
            await _record(session)
            if not db.is_sqlite:
                async with db.reading() as other:
                    seen_inside = await repository.delivery(other, *KEY)
            raise _Failed
    async with db.reading() as session:
        kept = await repository.delivery(session, *KEY)
    if db.is_sqlite:
        assert kept is None
    else:
        assert seen_inside is not None and kept is not None


async def test_each_statement_alone_joins_a_deferred_commit(stack: Stack) -> None:
    """Inside ``deferred_commit`` (an Idempotency-Key request) a write must commit with the
    caller's rows, so it is the request's held-back transaction, not a statement alone."""
    db = stack.db
    committed_with: list[bool] = []

    async def on_commit(session: AsyncSession) -> None:
        committed_with.append(await repository.delivery(session, *KEY) is not None)

    async with db.deferred_commit(on_commit):
        async with db.each_statement_alone(write=True) as session:
            await _record(session)
        assert committed_with == []  # held back until the block ends
    assert committed_with == [True]
    async with db.reading() as session:
        assert await repository.delivery(session, *KEY) is not None


async def test_a_connection_back_from_each_statement_alone_runs_transactions_again(
    database_url: str,
) -> None:
    """Autocommit is set on a pooled connection for the block and undone when it goes back:
    with a pool of one, the next ``transaction()`` on that same connection rolls back."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.each_statement_alone(write=False) as session:
            alone_pid = await session.scalar(_BACKEND_ID[db.dialect])
        with pytest.raises(_Failed):
            async with db.transaction() as session:
                assert await session.scalar(_BACKEND_ID[db.dialect]) == alone_pid  # the same
                await _record(session)
                raise _Failed
        async with db.reading() as session:
            assert await repository.delivery(session, *KEY) is None
    finally:
        await db.engine.dispose()


#: What identifies the connection: PostgreSQL's backend; SQLite has one file connection.
_BACKEND_ID = {"postgresql": text("SELECT pg_backend_pid()"), "sqlite": text("SELECT 1")}


async def test_bookkeeping_alone_in_a_deferred_commit_is_not_the_requests_effect(
    stack: Stack,
) -> None:
    """``effect=False`` (a rate-limit counter) inside an Idempotency-Key request commits at
    once and is not held back as the request's write."""
    db = stack.db
    calls: list[bool] = []

    async def on_commit(session: AsyncSession) -> None:
        calls.append(True)

    async with db.deferred_commit(on_commit) as deferred:
        async with db.each_statement_alone(write=True, effect=False) as session:
            await _record(session)
        async with db.each_statement_alone(write=False) as session:
            assert await repository.delivery(session, *KEY) is not None
        assert deferred.pending is None and not deferred.wrote
    assert calls == []
