"""A subscription sold end to end: REST API → BTCPay (emulated, real HTTP) → webhook →
exactly-once settlement with the 50/50 split in the ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from satshare.payments import repository
from satshare.payments.models import Invoice, InvoiceStatus, Payment, WebhookDelivery
from satshare.sim.btcpay import BTCPayEmulator
from tests.conftest import Stack
from tests.helpers import buy, create_user, invoice_status, wait_until


async def test_referred_purchase_splits_50_50(stack: Stack) -> None:
    affiliate = await create_user(stack.client, "affiliate", external_id="100")
    buyer = await create_user(
        stack.client, "buyer", external_id="200", referral_id=affiliate["referral_code"]
    )
    assert buyer["referrer_id"] == affiliate["user_id"]

    order = await buy(stack.client, buyer["user_id"])
    assert order["status"] == "pending"
    invoice = order["invoice"]
    assert invoice["amount_sats"] == 50_000
    assert invoice["provider"] == "btcpay"
    assert invoice["checkout_url"].endswith(f"/pay/{invoice['id']}")
    assert invoice["payment_request"].startswith("lnbcrt500u")
    assert invoice["address"].startswith("bcrt1")

    await stack.btcpay.pay(invoice["provider_invoice_id"], method="BTC-LN")
    await wait_until(lambda: _settled(stack, order["subscription_id"]))

    sub = (await stack.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    assert sub["status"] == "active"
    assert sub["ends_at"] is not None

    aff = (await stack.client.get(f"/api/v1/users/{affiliate['user_id']}")).json()
    assert aff["balance_sats"] == 25_000
    assert aff["total_earned_sats"] == 25_000
    assert aff["referrals"] == {"registered": 1, "paying": 1}

    entries = (await stack.client.get("/api/v1/transactions")).json()["items"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["kind"] == "sale"
    assert entry["share_bps"] == 5000
    assert entry["gross_sats"] == 50_000
    assert sorted((p["account"], p["amount_sats"]) for p in entry["postings"]) == sorted(
        [
            ("clearing:btcpay", 50_000),
            ("revenue:owner", -25_000),
            (f"payable:affiliate:{affiliate['user_id']}", -25_000),
        ]
    )
    buyer_view = (await stack.client.get(f"/api/v1/users/{buyer['user_id']}")).json()
    assert [s["subscription_id"] for s in buyer_view["active_subscriptions"]] == [
        order["subscription_id"]
    ]


async def _settled(stack: Stack, subscription_id: int) -> bool:
    return await invoice_status(stack.client, subscription_id) == "settled"


async def test_no_referrer_all_to_owner_and_odd_amount_rounds_for_owner(stack: Stack) -> None:
    buyer = await create_user(stack.client, "solo")
    order = await buy(stack.client, buyer["user_id"], "yearly")  # 500,001 sats
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    await wait_until(lambda: _settled(stack, order["subscription_id"]))
    entry = (await stack.client.get("/api/v1/transactions")).json()["items"][0]
    assert entry["share_bps"] == 0
    assert {p["account"]: p["amount_sats"] for p in entry["postings"]} == {
        "clearing:btcpay": 500_001,
        "revenue:owner": -500_001,
    }

    referrer = await create_user(stack.client, "ref")
    referred = await create_user(stack.client, "referred", referral_id=referrer["user_id"])
    order = await buy(stack.client, referred["user_id"], "yearly")
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])
    await wait_until(lambda: _settled(stack, order["subscription_id"]))
    entry = (await stack.client.get("/api/v1/transactions", params={"limit": 1})).json()["items"][0]
    postings = {p["account"]: p["amount_sats"] for p in entry["postings"]}
    assert postings[f"payable:affiliate:{referrer['user_id']}"] == -250_000
    assert postings["revenue:owner"] == -250_001


async def test_renewal_while_active_extends_from_current_end(stack: Stack) -> None:
    buyer = await create_user(stack.client, "renewer")
    first = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(first["invoice"]["provider_invoice_id"])
    await wait_until(lambda: _settled(stack, first["subscription_id"]))
    ends_first = (
        await stack.client.get(f"/api/v1/subscriptions/{first['subscription_id']}")
    ).json()["ends_at"]

    second = await buy(stack.client, buyer["user_id"])
    assert second["subscription_id"] == first["subscription_id"]
    assert second["status"] == "active"  # a renewal keeps the subscription active
    await stack.btcpay.pay(second["invoice"]["provider_invoice_id"])
    await wait_until(lambda: _settled(stack, second["subscription_id"]))
    sub = (await stack.client.get(f"/api/v1/subscriptions/{first['subscription_id']}")).json()
    from datetime import datetime

    extended = datetime.fromisoformat(sub["ends_at"]) - datetime.fromisoformat(ends_first)
    assert extended == timedelta(days=30)


async def test_onchain_payment_settles_only_after_confirmation(stack: Stack) -> None:
    buyer = await create_user(stack.client, "chain")
    order = await buy(stack.client, buyer["user_id"])
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id, method="BTC-CHAIN")
    await stack.btcpay.emulator.wait_idle()
    assert await invoice_status(stack.client, order["subscription_id"]) == "processing"
    assert (await stack.client.get("/api/v1/transactions")).json()["items"] == []
    await stack.btcpay.control("POST", "/_sim/mine", json={"blocks": 1})
    await wait_until(lambda: _settled(stack, order["subscription_id"]))


async def test_emulator_rounds_btc_amounts_up(btcpay_emulator_factory: object = None) -> None:
    emulator = BTCPayEmulator(api_key="k", store_id="s")
    invoice = emulator.create_invoice("s", {"amount": "0.000000011", "currency": "BTC"})
    assert invoice.amount_sats == 2
    await emulator.aclose()


async def test_record_sale_refuses_a_change_it_would_not_write(stack: Stack) -> None:
    """The settlement writes its invoice and subscription by hand (``record_sale``), not
    through the ORM's flush: a change to a column it does not write must fail the
    transaction, not be dropped."""
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    invoice_id = order["invoice"]["id"]
    with pytest.raises(ValueError, match=r"does not write \['checkout_link'\]"):
        async with stack.container.db.transaction() as session:
            locked = await repository.lock_invoice_for_settlement(session, invoice_id)
            assert locked is not None
            invoice, subscription = locked.invoice, locked.subscription
            invoice.status = InvoiceStatus.SETTLED
            invoice.checkout_link = "https://example.invalid/changed"
            await repository.record_sale(
                session, invoice, subscription, _payment(invoice, ledger_entry_id=1)
            )
    async with stack.container.db.reading() as session:
        stored = await repository.get_invoice(session, invoice_id)
    assert stored is not None
    assert stored.status is InvoiceStatus.NEW
    assert stored.checkout_link != "https://example.invalid/changed"


@pytest.mark.parametrize("missing", ["invoice", "subscription"])
async def test_record_sale_refuses_a_row_that_is_not_there(stack: Stack, missing: str) -> None:
    """The ORM's flush checked that its UPDATE found the row; the hand-written sale must
    too: no payment row, and the transaction fails (on PostgreSQL the other row's UPDATE
    ran in the same statement and is rolled back with it)."""
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    with pytest.raises(StaleDataError, match="was not there to update"):
        async with stack.container.db.transaction() as session:
            locked = await repository.lock_invoice_for_settlement(session, order["invoice"]["id"])
            assert locked is not None
            invoice, subscription = locked.invoice, locked.subscription
            if missing == "invoice":  # as if loaded so
                set_committed_value(invoice, "id", "inv_not_there")
            else:
                set_committed_value(subscription, "id", 987_654_321)
            invoice.status = InvoiceStatus.SETTLED
            await repository.record_sale(
                session, invoice, subscription, _payment(invoice, ledger_entry_id=1)
            )
    async with stack.container.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 0
        stored = await repository.get_invoice(session, order["invoice"]["id"])
    assert stored is not None and stored.status is InvoiceStatus.NEW


async def test_a_change_after_record_sale_is_written_and_the_sale_not_twice(
    stack: Stack,
) -> None:
    """``record_sale`` marks the objects it wrote as stored, in the session: a later change
    to them in the same transaction is flushed as usual (only that column), and what it
    wrote is not written again. An assignment of the value a column already has is no
    change, and not refused."""
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    adjusted = await stack.client.post(  # an entry for the payment row to point at
        "/api/v1/transactions",
        json={
            "memo": "test",
            "postings": [
                {"account": "revenue:owner", "amount_sats": 1},
                {"account": "expense:test", "amount_sats": -1},
            ],
        },
    )
    assert adjusted.status_code == 201, adjusted.text
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()))

    engine = stack.container.db.engine.sync_engine
    with pytest.raises(_RolledBack):  # a sale without its ledger entry: never kept
        async with stack.container.db.transaction() as session:
            locked = await repository.lock_invoice_for_settlement(session, order["invoice"]["id"])
            assert locked is not None
            invoice, subscription = locked.invoice, locked.subscription
            invoice.status = InvoiceStatus.SETTLED
            subscription.payments = 1
            invoice.checkout_link = invoice.checkout_link  # the same value: not a change
            payment = _payment(invoice, ledger_entry_id=adjusted.json()["transaction_id"])
            await repository.record_sale(session, invoice, subscription, payment)
            event.listen(engine, "before_cursor_execute", seen)
            try:
                invoice.checkout_link = "https://example.invalid/after"
                await session.flush()
            finally:
                event.remove(engine, "before_cursor_execute", seen)
            stored = (
                await session.execute(
                    select(Invoice.status, Invoice.checkout_link).where(Invoice.id == invoice.id)
                )
            ).one()
            paid = await session.scalar(select(func.count()).select_from(Payment))
            raise _RolledBack
    written = [s for s in statements if s.startswith(("UPDATE", "INSERT"))]
    assert len(written) == 1, statements
    assert written[0].startswith("UPDATE invoices SET checkout_link="), written
    assert tuple(stored) == (InvoiceStatus.SETTLED, "https://example.invalid/after")
    assert paid == 1


class _RolledBack(Exception):
    pass


def _payment(invoice: Invoice, *, ledger_entry_id: int) -> repository.SalePayment:
    return repository.SalePayment(
        invoice_id=invoice.id,
        user_id=invoice.user_id,
        provider=invoice.provider,
        amount_sats=invoice.amount_sats,
        received_sats=invoice.amount_sats,
        overpaid_sats=0,
        paid_late=False,
        proof=None,
        ledger_entry_id=ledger_entry_id,
        settled_at=invoice.created_at,
    )


async def test_the_webhook_that_settled_is_marked_handled_in_the_inbox(stack: Stack) -> None:
    """Its inbox row records when and how it was handled (a redelivery of it is then a
    duplicate), written in the settlement's own transaction."""
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id)
    await wait_until(lambda: _settled(stack, order["subscription_id"]))
    async with stack.container.db.reading() as session:
        rows = (
            await session.execute(
                select(WebhookDelivery.outcome, WebhookDelivery.processed_at).where(
                    WebhookDelivery.provider_invoice_id == provider_id
                )
            )
        ).all()
    settled = [row for row in rows if row.outcome == "settled"]
    assert len(settled) == 1 and settled[0].processed_at is not None, rows
