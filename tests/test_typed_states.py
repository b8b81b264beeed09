"""Invoice, subscription and payout states are StrEnums whose values are the strings already
stored: rows are written and read back as enum members, and a string that is no member is
refused before it reaches a row."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import StatementError

from satshare.ledger.models import EntryKind
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.payments.ports import InvoiceState
from satshare.payouts.models import FINAL_STATUSES, OPEN_STATUSES, PayoutStatus
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from tests.conftest import Stack
from tests.helpers import buy, create_user, invoice_status, wait_until


def test_enum_values_are_the_stored_strings() -> None:
    # The database keeps these exact strings: changing a value needs a migration.
    assert [s.value for s in InvoiceStatus] == [
        "new",
        "processing",
        "settled",
        "expired",
        "invalid",
        "refunding",
        "refunded",
    ]
    assert [s.value for s in SubscriptionStatus] == ["pending", "active", "expired", "canceled"]
    assert [s.value for s in PayoutStatus] == [
        "awaiting_approval",
        "approved",
        "sending",
        "unknown",
        "paid",
        "failed",
        "canceled",
    ]
    assert {s.value for s in OPEN_STATUSES} == {
        "awaiting_approval",
        "approved",
        "sending",
        "unknown",
    }
    assert {s.value for s in FINAL_STATUSES} == {"paid", "failed", "canceled"}
    assert [k.value for k in EntryKind] == [
        "sale",
        "stars_sale",
        "adjustment",
        "reversal",
        "payout_hold",
        "payout",
        "payout_release",
    ]


def test_every_state_a_processor_reports_is_an_invoice_status() -> None:
    assert [InvoiceStatus(state) for state in InvoiceState] == [
        InvoiceStatus.NEW,
        InvoiceStatus.PROCESSING,
        InvoiceStatus.SETTLED,
        InvoiceStatus.EXPIRED,
        InvoiceStatus.INVALID,
    ]


async def _settled(stack: Stack, subscription_id: int) -> bool:
    return await invoice_status(stack.client, subscription_id) == "settled"


async def test_states_are_read_back_as_enums(stack: Stack) -> None:
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    async with stack.db.reading() as session:
        subscription = await session.get(Subscription, order["subscription_id"])
    assert subscription is not None and subscription.status is SubscriptionStatus.PENDING

    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"], method="BTC-LN")
    await wait_until(lambda: _settled(stack, order["subscription_id"]))
    async with stack.db.reading() as session:
        invoice = await session.get(Invoice, order["invoice"]["id"])
        subscription = await session.get(Subscription, order["subscription_id"])
    assert invoice is not None and invoice.status is InvoiceStatus.SETTLED
    assert subscription is not None and subscription.status is SubscriptionStatus.ACTIVE


async def test_a_status_that_is_no_member_is_refused_and_nothing_changes(stack: Stack) -> None:
    buyer = await create_user(stack.client, "buyer")
    order = await buy(stack.client, buyer["user_id"])
    with pytest.raises(StatementError, match="'setled' is not a valid InvoiceStatus"):
        async with stack.db.transaction() as session:
            invoice = await session.get(Invoice, order["invoice"]["id"])
            assert invoice is not None
            invoice.status = "setled"  # type: ignore[assignment]
    async with stack.db.reading() as session:
        invoice = await session.get(Invoice, order["invoice"]["id"])
    assert invoice is not None and invoice.status is InvoiceStatus.NEW
