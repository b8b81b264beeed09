"""The ledger's figures (#15): the sums the reads use (transparency, reports, dashboard,
balances, referral counts, leaderboard) equal their recomputation from the ledger, on a
history over weeks with renewals, refunds (of an invoice, and as a plain reversal),
clawbacks after a payout, a paid and a canceled payout, adjustments and link clicks, while
the rolling windows move; a read counts the entries the sealer has not reached, and reads
again when the sealer commits under it; the migration's backfill, ``satshare figures
rebuild`` and the sealer's fold build the same tables."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from satshare import migrate
from satshare.cli import app as cli_app
from satshare.clock import FrozenClock
from satshare.ledger import service as ledger
from satshare.ledger.figures import repository as figures_repo
from satshare.ledger.figures import service as figures
from satshare.ledger.figures.models import (
    FiguresBuyer,
    FiguresBuyerDay,
    FiguresDay,
    FiguresUser,
    FiguresUserDay,
    FiguresUserMonth,
)
from satshare.ledger.models import EntryKind
from satshare.money import split
from satshare.notifications.models import OutboxMessage
from satshare.payments import refunds
from satshare.reports import flows as report_flows
from satshare.reports.recompute import check
from satshare.tallies import flows as tally_flows
from satshare.tallies.models import VERSION, Tally, TallyEndsDay, TallySubscriber
from tests.conftest import BTCPaySim, Stack, close_stack
from tests.helpers import buy, create_user, invoice_status, wait_until
from tests.historykit import sale
from tests.lightningkit import Lightning
from tests.payoutkit import affiliate, open_payout_stack, payout, settle_payouts

START = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
async def clocked(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Stack, FrozenClock]]:
    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("SATSHARE_DATABASE__URL", database_url)  # for the CLI
    clock = FrozenClock(START)
    running = await open_payout_stack(
        database_url, btcpay, lightning, clock=clock, payouts={"auto_approve_max_sats": 10_000}
    )
    yield running, clock
    await close_stack(running)


async def _checked(stack: Stack, clock: FrozenClock) -> None:
    await stack.container.sealer.flush()
    async with stack.db.reading() as session:
        report = await check(session, clock.now())
    assert report.ok, report.differences
    assert report.checked > 20


async def _paid(stack: Stack, buyer_id: int) -> str:
    order = await buy(stack.client, buyer_id)
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"

    await wait_until(settled)
    return str(order["invoice"]["id"])


async def _entry_of(stack: Stack, invoice_id: str) -> int:
    listed = await stack.client.get(
        "/api/v1/transactions", params={"invoice_id": invoice_id, "kind": "sale"}
    )
    return int(listed.json()["items"][0]["transaction_id"])


async def _history(stack: Stack, clock: FrozenClock, lightning: Lightning) -> dict[str, Any]:
    alice, bob = await affiliate(stack), await affiliate(stack)
    code = (await stack.client.get(f"/api/v1/users/{alice}")).json()["referral_code"]
    for source in ("website", "discord"):
        clicked = await stack.client.post(
            "/api/v1/referral-clicks", json={"referral_code": code, "source": source}
        )
        assert clicked.status_code == 201, clicked.text
    first = await sale(stack, lightning, alice)
    second = await sale(stack, lightning, alice, provider="lnbits")
    bobs = await sale(stack, lightning, bob)
    await sale(stack, lightning, None)
    await _checked(stack, clock)

    clock.advance(timedelta(days=3))
    renewal_buyer = await create_user(stack.client, "loyal", referral_id=alice)
    for _ in range(2):  # a buyer who pays twice: two sales, one paying referral
        await _paid(stack, renewal_buyer["user_id"])
    refunded = await stack.client.post(f"/api/v1/invoices/{second}/refund", json={})
    assert refunded.status_code == 200, refunded.text
    await _checked(stack, clock)

    clock.advance(timedelta(days=1))
    paid = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": alice, "amount_sats": 20_000, "destination": lightning.address("a")},
    )
    await stack.client.post(f"/api/v1/payouts/{paid.json()['payout_id']}/approve")
    await settle_payouts(stack)
    assert (await payout(stack.client, paid.json()["payout_id"]))["status"] == "paid"
    # Refunded after the payout: the commission is clawed back below what was paid.
    assert (await stack.client.post(f"/api/v1/invoices/{first}/refund", json={})).is_success
    held = await stack.client.post(
        "/api/v1/payouts",
        json={"user_id": bob, "amount_sats": 20_000, "destination": lightning.address("b")},
    )
    canceled = await stack.client.post(f"/api/v1/payouts/{held.json()['payout_id']}/cancel")
    assert canceled.json()["status"] == "canceled"
    adjusted = await stack.client.post(
        "/api/v1/transactions",
        json={
            "memo": "bonus",
            "postings": [
                {"account": "revenue:owner", "amount_sats": 1_000},
                {"account": f"payable:affiliate:{bob}", "amount_sats": -1_000},
            ],
        },
    )
    assert adjusted.status_code == 201, adjusted.text
    # A sale reversed as a plain ledger correction counts as refunded everywhere too.
    reversal = await stack.client.post(
        f"/api/v1/transactions/{await _entry_of(stack, bobs)}/reversal", json={"memo": "oops"}
    )
    assert reversal.status_code == 201, reversal.text
    await _checked(stack, clock)
    return {"alice": alice, "bob": bob, "loyal": renewal_buyer["user_id"]}


async def test_every_figure_equals_the_ledger_as_days_pass(
    clocked: tuple[Stack, FrozenClock], lightning: Lightning
) -> None:
    stack, clock = clocked
    people = await _history(stack, clock, lightning)
    alice = people["alice"]

    async def board(by: str, period: str) -> list[tuple[int, int]]:
        response = await stack.client.get(
            "/api/v1/leaderboard", params={"by": by, "period": period}
        )
        assert response.status_code == 200, response.text
        return [(row["user_id"], row["value"]) for row in response.json()["items"]]

    # Alice: two sales to the loyal buyer (one paying referral) and her first buyer's... both
    # refunded but the loyal one's; bob's only sale was reversed.
    assert await board("sales", "week") == [(alice, 100_000)]
    assert await board("referrals", "all") == [(alice, 1)]
    stats = (await stack.client.get(f"/api/v1/affiliates/{alice}/stats")).json()
    assert stats["funnel"] == {"clicks": 2, "registrations": 3, "paying": 1}
    user = (await stack.client.get(f"/api/v1/users/{alice}")).json()
    assert user["referrals"] == {"registered": 3, "paying": 1}

    for days in (3, 4, 1, 23, 5):  # out of the week, then out of the month
        clock.advance(timedelta(days=days))
        await _checked(stack, clock)
    assert await board("sales", "week") == []
    assert await board("sales", "month") == []
    assert await board("sales", "all") == [(alice, 100_000)]
    clock.advance(timedelta(days=-40))  # a clock set back: the windows move back with it
    await _checked(stack, clock)
    assert await board("sales", "week") == [(alice, 100_000)]


async def test_reads_count_what_the_sealer_has_not_reached(
    clocked: tuple[Stack, FrozenClock], lightning: Lightning
) -> None:
    stack, clock = clocked
    alice, carol = await affiliate(stack), await affiliate(stack)
    buyer = await create_user(stack.client, "buyer", referral_id=alice)
    invoice_id = await _paid(stack, buyer["user_id"])
    later = await create_user(stack.client, "later", referral_id=alice)
    elsewhere = await create_user(stack.client, "elsewhere", referral_id=carol)
    await stack.container.sealer.flush()
    now = clock.now()
    async with stack.db.reading() as session:
        sealed = await figures.user(session, alice)
        assert sealed["referral_paying"] == 1
        # What a level reads on each referred sale: the same counts, from the sealed row.
        assert await figures.referral_progress(session, alice) == (
            1,
            sealed["referral_sales_sats"],
        )

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        async with stack.db.transaction() as session:
            # Written here, not sealed (nothing is committed): only the seal queue has them.
            reversal = await refunds.record_bitcoin_refund(
                session, invoice_id, note=None, author="test", now=now
            )
            # alice was told of the commission; she is told it was taken back, in the
            # refund's own transaction.
            told = (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.kind == "commission.reversed")
                )
            ).scalar_one()
            assert told.user_id == alice
            assert told.payload == {
                "invoice_id": invoice_id,
                "commission_sats": sealed["earned_sats"],
                "transaction_id": reversal,
            }
            await ledger.post_entry(
                session,
                ledger.NewEntry(
                    idempotency_key="test:bonus",
                    kind=EntryKind.ADJUSTMENT,
                    legs=[
                        ledger.Leg("revenue:owner", 700),
                        ledger.Leg(f"payable:affiliate:{alice}", -700),
                    ],
                ),
                now,
            )
            assert await figures_repo.unsealed_count(session) == 2
            report = await check(session, now)
            assert report.ok, report.differences
            mine = await figures.user(session, alice)
            assert (mine["balance_sats"], mine["referral_paying"], mine["earned_7d"]) == (
                700,
                0,
                700,
            )
            assert await figures.referral_progress(session, alice) == (0, 0)
            # Queued sales: one by a buyer alice referred, one by carol's (left out of the
            # level's read, which folds only alice's referrals from the queue).
            for buyer_id, referrer in ((later["user_id"], alice), (elsewhere["user_id"], carol)):
                await ledger.post_entry(
                    session,
                    ledger.NewEntry(
                        idempotency_key=f"test:sale:{buyer_id}",
                        kind=EntryKind.SALE,
                        legs=ledger.sale_legs(
                            provider="btcpay",
                            split=split(10_000, 5000),
                            received_sats=10_000,
                            affiliate_user_id=referrer,
                            buyer_user_id=buyer_id,
                        ),
                        gross_sats=10_000,
                        share_bps=5000,
                        affiliate_user_id=referrer,
                        buyer_user_id=buyer_id,
                        referrer_user_id=referrer,
                        owners_known=True,
                    ),
                    now,
                )
            mine = await figures.user(session, alice)
            assert (mine["referral_paying"], mine["referral_sales_sats"]) == (1, 10_000)
            assert await figures.referral_progress(session, alice) == (1, 10_000)
            assert await figures.referral_progress(session, carol) == (1, 10_000)
            raise Undo


async def test_a_read_that_straddles_a_sealer_commit_reads_again(
    clocked: tuple[Stack, FrozenClock],
) -> None:
    stack, clock = clocked
    alice = await affiliate(stack)
    async with stack.db.transaction() as session:  # committed, not sealed: no kick
        await ledger.post_entry(
            session,
            ledger.NewEntry(
                idempotency_key="test:bonus",
                kind=EntryKind.ADJUSTMENT,
                legs=[
                    ledger.Leg("revenue:owner", 500),
                    ledger.Leg(f"payable:affiliate:{alice}", -500),
                ],
            ),
            clock.now(),
        )
    reads = 0
    async with stack.db.reading() as session:

        async def read() -> int:
            nonlocal reads
            reads += 1
            rest = await figures.remainder(session)
            if reads == 1:  # the sealer chains and folds the entry between the two statements
                await stack.container.sealer.seal_all()
            sealed = (await figures_repo.users(session, [alice])).get(alice, {})
            return sealed.get("balance_sats", 0) + rest.batch.users[alice]["balance_sats"]

        assert await figures.consistent(session, read) == 500
    # PostgreSQL saw the commit mid-read and read again; SQLite reads one snapshot.
    assert reads == (2 if stack.db.dialect == "postgresql" else 1)


FIGURE_TABLES = (
    FiguresDay,
    FiguresUserDay,
    FiguresUserMonth,
    FiguresUser,
    FiguresBuyerDay,
    FiguresBuyer,
    Tally,
    TallyEndsDay,
    TallySubscriber,
)
#: Keys and values that are not figures.
NOT_FIGURES = ("day", "month", "user_id", "buyer_user_id", "referrer_user_id", "last_day", "key")


async def _tables(stack: Stack) -> dict[str, set[tuple[Any, ...]]]:
    """Every figures and tallies row with a non-zero figure (a fold may leave rows of zeros
    behind), the tallies' queued changes folded first."""
    await tally_flows.fold(stack.db)
    found: dict[str, set[tuple[Any, ...]]] = {}
    async with stack.db.reading() as session:
        for model in FIGURE_TABLES:
            table: Any = model.__table__
            rows = (await session.execute(select(table))).all()
            found[table.name] = {
                tuple(row)
                for row in rows
                if any(
                    v
                    for c, v in zip(table.columns.keys(), row, strict=True)
                    if c not in NOT_FIGURES
                )
                and row[0] != VERSION
            }
    return found


async def test_backfill_rebuild_and_fold_build_the_same_tables(
    clocked: tuple[Stack, FrozenClock], lightning: Lightning
) -> None:
    stack, clock = clocked
    await _history(stack, clock, lightning)
    folded = await _tables(stack)
    assert all(folded.values())
    from satshare.ledger.figures import flows

    assert await flows.rebuild(stack.db, clock.now()) > 10
    await report_flows.rebuild_tallies(stack.db)
    assert await _tables(stack) == folded

    # The command line's rebuild and check run with today's date: so does the migration.
    rebuilt = await asyncio.to_thread(CliRunner().invoke, cli_app, ["figures", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Figures rebuilt from" in rebuilt.output
    today = await _tables(stack)

    def back_and_forth(connection: Connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0014")
        command.upgrade(config, "head")

    async with stack.db.engine.begin() as connection:
        await connection.run_sync(back_and_forth)
    assert await _tables(stack) == today
    checked = await asyncio.to_thread(CliRunner().invoke, cli_app, ["figures", "check"])
    assert checked.exit_code == 0, checked.output
    assert "Figures match the ledger" in checked.output


async def test_concurrent_callers_share_one_read_of_the_transparency_figures(
    stack: Stack,
) -> None:
    async with stack.anonymous() as public:
        answers = await asyncio.gather(*(public.get("/api/v1/transparency") for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    # One read answered them all (each read stamps its own generated_at).
    assert len({a.json()["generated_at"] for a in answers}) == 1


async def test_a_read_held_off_the_sealer_lets_it_go_before_the_transaction_ends(
    clocked: tuple[Stack, FrozenClock],
) -> None:
    """After three reads the sealer committed under, the fourth holds the sealer off for
    itself alone: a settlement asking a level must not keep the sealer (and every later
    settlement) waiting until it commits."""
    stack, clock = clocked
    if stack.db.dialect != "postgresql":
        pytest.skip("SQLite: a writer's transaction holds the lock; nothing commits under it")
    alice = await affiliate(stack)
    bonuses = 0

    async def bonus_sealed() -> None:
        nonlocal bonuses
        bonuses += 1
        async with stack.db.transaction() as other:
            await ledger.post_entry(
                other,
                ledger.NewEntry(
                    idempotency_key=f"test:bonus:{bonuses}",
                    kind=EntryKind.ADJUSTMENT,
                    legs=[
                        ledger.Leg("revenue:owner", 100),
                        ledger.Leg(f"payable:affiliate:{alice}", -100),
                    ],
                ),
                clock.now(),
            )
        await stack.container.sealer.seal_all()

    reads = 0
    async with stack.db.transaction() as session:

        async def read() -> int:
            nonlocal reads
            reads += 1
            rest = await figures.remainder(session)
            if reads <= figures.OPTIMISTIC_TRIES:  # the sealer commits under every try
                await bonus_sealed()
            sealed = (await figures_repo.users(session, [alice])).get(alice, {})
            queued = rest.batch.users.get(alice, {})
            return sealed.get("balance_sats", 0) + queued.get("balance_sats", 0)

        assert await figures.consistent(session, read) == 100 * figures.OPTIMISTIC_TRIES
        assert reads == figures.OPTIMISTIC_TRIES + 1
        # Still inside the reader's transaction: the sealer takes its lock and commits.
        await asyncio.wait_for(bonus_sealed(), timeout=20)
        mine = await figures.user(session, alice)
        assert mine["balance_sats"] == 100 * (figures.OPTIMISTIC_TRIES + 1)
