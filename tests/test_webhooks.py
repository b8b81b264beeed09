"""The BTCPay webhook receiver: signature first, dedupe by invoice + event type, re-fetch
before acting, every BTCPay invoice state handled."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from satshare.payments import inbox
from satshare.payments import repository as payments_repo
from satshare.payments.inbox import CLAIM_TTL
from satshare.payments.models import WebhookDelivery
from tests.conftest import STORE_ID, WEBHOOK_SECRET, Stack
from tests.helpers import buy, create_user, invoice_status, signed, wait_until

WEBHOOK = "/api/v1/webhooks/btcpay"


def event(invoice_id: str, kind: str = "InvoiceSettled", **extra: Any) -> dict[str, Any]:
    return {
        "deliveryId": f"d-{kind}-{invoice_id}",
        "webhookId": "wh",
        "originalDeliveryId": f"d-{kind}-{invoice_id}",
        "isRedelivery": False,
        "type": kind,
        "timestamp": 1_795_000_000,
        "storeId": STORE_ID,
        "invoiceId": invoice_id,
        "metadata": {},
        **extra,
    }


async def _order(stack: Stack, referrer: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    aff = await create_user(stack.client, "aff")
    buyer = await create_user(
        stack.client, "buyer", referral_id=aff["user_id"] if referrer else None
    )
    return aff, await buy(stack.client, buyer["user_id"])


async def _quiet(stack: Stack) -> None:
    """Stop the emulator's own deliveries so the test alone decides what arrives."""
    stack.btcpay.emulator.drop_webhooks = True


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"BTCPay-Sig": "sha256=" + "0" * 64},
        {"BTCPay-Sig": "sha1=abc"},
        {"BTCPay-Sig": "garbage"},
    ],
)
async def test_bad_signature_is_401_and_writes_nothing(
    stack: Stack, headers: dict[str, str]
) -> None:
    await _quiet(stack)
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id)  # really paid: a forged notification must still fail
    before = await stack.counts()
    async with stack.anonymous() as anon:
        response = await anon.post(
            WEBHOOK, content=json.dumps(event(provider_id)).encode(), headers=headers
        )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert await stack.counts() == before


async def test_signature_with_another_secret_is_refused(stack: Stack) -> None:
    await _quiet(stack)
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id)
    body, headers = signed("not-the-secret-at-all", event(provider_id))
    before = await stack.counts()
    async with stack.anonymous() as anon:
        assert (await anon.post(WEBHOOK, content=body, headers=headers)).status_code == 401
    assert await stack.counts() == before


async def test_signed_but_malformed_bodies_are_400_and_write_nothing(stack: Stack) -> None:
    before = await stack.counts()
    async with stack.anonymous() as anon:
        for raw in (b"{not json", b"[1,2]", b'{"type":"InvoiceSettled","invoiceId":NaN}'):
            body, headers = signed(WEBHOOK_SECRET, raw)
            response = await anon.post(WEBHOOK, content=body, headers=headers)
            assert response.status_code == 400, raw
            assert response.headers["content-type"] == "application/problem+json"
    assert await stack.counts() == before


async def test_unknown_event_types_and_unknown_invoices_are_acknowledged_and_ignored(
    stack: Stack,
) -> None:
    await _quiet(stack)
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    before = await stack.counts()
    async with stack.anonymous() as anon:
        for payload in (
            event(provider_id, "PayoutCreated"),
            event(provider_id, "SomethingNew"),
            event(provider_id, "InvoiceCreated"),
            event("not-our-invoice", "InvoiceSettled"),
            {**event(provider_id), "storeId": "another-store"},
        ):
            body, headers = signed(WEBHOOK_SECRET, payload)
            response = await anon.post(WEBHOOK, content=body, headers=headers)
            assert response.status_code == 200
            assert response.json()["status"] == "ignored"
    assert await stack.counts() == before


async def test_webhook_claims_are_rechecked_at_the_processor(stack: Stack) -> None:
    """A correctly signed InvoiceSettled for an unpaid invoice settles nothing, is not
    acknowledged (503 retry-later) and is not kept as handled: once the processor shows the
    payment, the same event settles it."""
    await _quiet(stack)
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    body, headers = signed(WEBHOOK_SECRET, event(provider_id, "InvoiceSettled"))
    async with stack.anonymous() as anon:
        response = await anon.post(WEBHOOK, content=body, headers=headers)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/retry-later"
        assert response.headers["retry-after"] == "10"  # payments.flows.RETRY_AFTER_SECONDS
        assert (await stack.client.get("/api/v1/transactions")).json()["items"] == []
        assert await invoice_status(stack.client, order["subscription_id"]) == "new"
        # An event that says nothing about settlement is acknowledged, and not kept either.
        body2, headers2 = signed(WEBHOOK_SECRET, event(provider_id, "InvoiceReceivedPayment"))
        early = await anon.post(WEBHOOK, content=body2, headers=headers2)
        assert (early.status_code, early.json()["status"]) == (200, "unchanged")
        await stack.btcpay.pay(provider_id)
        redelivered = await anon.post(WEBHOOK, content=body, headers=headers)
        assert redelivered.json()["status"] == "settled"
    assert await invoice_status(stack.client, order["subscription_id"]) == "settled"


async def test_redelivery_with_new_delivery_id_acts_once(stack: Stack) -> None:
    await _quiet(stack)
    aff, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id)
    async with stack.anonymous() as anon:
        first = event(provider_id)
        body, headers = signed(WEBHOOK_SECRET, first)
        assert (await anon.post(WEBHOOK, content=body, headers=headers)).json()[
            "status"
        ] == "settled"
        again = {**first, "deliveryId": "a-new-id", "isRedelivery": True}
        body, headers = signed(WEBHOOK_SECRET, again)
        response = await anon.post(WEBHOOK, content=body, headers=headers)
        assert response.json()["status"] == "duplicate"
        # A different event type for the same settled invoice: processed, already settled.
        body, headers = signed(WEBHOOK_SECRET, event(provider_id, "InvoicePaymentSettled"))
        assert (await anon.post(WEBHOOK, content=body, headers=headers)).json()["status"] == (
            "already_settled"
        )
    entries = (await stack.client.get("/api/v1/transactions")).json()["items"]
    assert len(entries) == 1
    assert (await stack.client.get(f"/api/v1/users/{aff['user_id']}")).json()[
        "balance_sats"
    ] == 25_000


async def test_events_out_of_order(stack: Stack) -> None:
    """Settled arrives first, the older ReceivedPayment/Processing later: one settlement."""
    await _quiet(stack)
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id, method="BTC-CHAIN", confirm_blocks=1)
    async with stack.anonymous() as anon:
        for kind in ("InvoiceSettled", "InvoiceProcessing", "InvoiceReceivedPayment"):
            body, headers = signed(WEBHOOK_SECRET, event(provider_id, kind))
            assert (await anon.post(WEBHOOK, content=body, headers=headers)).status_code == 200
    assert await invoice_status(stack.client, order["subscription_id"]) == "settled"
    assert len((await stack.client.get("/api/v1/transactions")).json()["items"]) == 1


async def test_partial_payment_does_not_settle_then_completion_does(stack: Stack) -> None:
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id, amount_sats=20_000)
    await stack.btcpay.emulator.wait_idle()
    sub = (await stack.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    assert sub["status"] == "pending"
    assert sub["latest_invoice"]["status"] == "new"
    assert (await stack.client.get("/api/v1/transactions")).json()["items"] == []
    await stack.btcpay.pay(provider_id, amount_sats=30_000)
    await wait_until(
        lambda: _status_is(stack, order["subscription_id"], "settled"),
    )


async def _status_is(stack: Stack, subscription_id: int, status: str) -> bool:
    return await invoice_status(stack.client, subscription_id) == status


async def test_overpayment_settles_and_holds_the_excess_for_the_buyer(stack: Stack) -> None:
    aff, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id, amount_sats=60_000)
    await wait_until(lambda: _status_is(stack, order["subscription_id"], "settled"))
    entry = (await stack.client.get("/api/v1/transactions")).json()["items"][0]
    postings = {p["account"]: p["amount_sats"] for p in entry["postings"]}
    buyer_id = order["user_id"]
    assert postings == {
        "clearing:btcpay": 60_000,
        "revenue:owner": -25_000,
        f"payable:affiliate:{aff['user_id']}": -25_000,  # commission on the sale only
        f"payable:customer:{buyer_id}": -10_000,
    }


async def test_expired_unpaid_invoice_is_marked_expired(stack: Stack) -> None:
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.control("POST", f"/_sim/invoices/{provider_id}/expire")
    await wait_until(lambda: _status_is(stack, order["subscription_id"], "expired"))
    sub = (await stack.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    assert sub["status"] == "pending"
    assert (await stack.client.get("/api/v1/transactions")).json()["items"] == []


async def test_paid_late_settles_and_is_flagged(stack: Stack) -> None:
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.control("POST", f"/_sim/invoices/{provider_id}/expire")
    await wait_until(lambda: _status_is(stack, order["subscription_id"], "expired"))
    await stack.btcpay.pay(provider_id, method="BTC-LN")
    await wait_until(lambda: _status_is(stack, order["subscription_id"], "settled"))
    from sqlalchemy import select

    from satshare.notifications.models import OutboxMessage
    from satshare.payments.models import Payment

    async with stack.db.reading() as session:
        payment = (await session.execute(select(Payment))).scalar_one()
        sale = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "sale.new"))
        ).scalar_one()
    assert payment.paid_late is True
    assert sale.payload["paid_late"] is True


async def test_invalid_invoice_is_marked_invalid(stack: Stack) -> None:
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.control("POST", f"/_sim/invoices/{provider_id}/invalidate")
    await wait_until(lambda: _status_is(stack, order["subscription_id"], "invalid"))
    assert (await stack.client.get("/api/v1/transactions")).json()["items"] == []


async def test_processing_does_not_settle_by_default(stack: Stack) -> None:
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id, method="BTC-CHAIN")
    await wait_until(lambda: _status_is(stack, order["subscription_id"], "processing"))
    assert (await stack.client.get("/api/v1/transactions")).json()["items"] == []


async def test_manually_marked_settled_invoice_settles(stack: Stack) -> None:
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.control(
        "POST", f"/_sim/invoices/{provider_id}/pay", json={"method": "BTC-CHAIN"}
    )
    emulator = stack.btcpay.emulator
    emulator.mark(emulator.invoices[provider_id], "Settled")
    await wait_until(lambda: _status_is(stack, order["subscription_id"], "settled"))


async def test_processor_down_during_webhook_is_502_and_retry_settles(stack: Stack) -> None:
    await _quiet(stack)
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id)
    stack.btcpay.emulator.api_down = True
    body, headers = signed(WEBHOOK_SECRET, event(provider_id))
    async with stack.anonymous() as anon:
        response = await anon.post(WEBHOOK, content=body, headers=headers)
        assert response.status_code == 502  # BTCPay retries on 5xx
        assert response.headers["content-type"] == "application/problem+json"
        stack.btcpay.emulator.api_down = False
        retry = await anon.post(WEBHOOK, content=body, headers=headers)
    assert retry.json()["status"] == "settled"


async def test_oversized_body_is_413_before_anything(stack: Stack) -> None:
    before = await stack.counts()
    body, headers = signed(WEBHOOK_SECRET, b"{" + b" " * 300_000 + b"}")
    async with stack.anonymous() as anon:
        response = await anon.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await stack.counts() == before


async def test_a_live_claim_answers_retry_later_and_a_dead_one_is_taken_over(
    stack: Stack,
) -> None:
    """A redelivery while another request holds the claim is not acknowledged (the holder
    may die before committing); once the claim is older than CLAIM_TTL (its holder died,
    e.g. kill -9 mid-settlement) a redelivery takes it over and settles the invoice."""
    await _quiet(stack)
    _, order = await _order(stack)
    provider_id = order["invoice"]["provider_invoice_id"]
    await stack.btcpay.pay(provider_id)
    # A claim left by a process that died after claiming (its row, no outcome).
    now = stack.container.clock.now()
    async with stack.db.transaction() as session:
        dead_claim = await payments_repo.record_delivery(
            session,
            provider="btcpay",
            provider_invoice_id=provider_id,
            event_type="InvoiceSettled",
            delivery_id="d-dead",
            payload="{}",
            now=now,
        )
        assert dead_claim is not None
    body, headers = signed(WEBHOOK_SECRET, event(provider_id, "InvoiceSettled"))
    async with stack.anonymous() as anon:
        live = await anon.post(WEBHOOK, content=body, headers=headers)
        assert live.status_code == 503
        assert live.json()["type"] == "/problems/retry-later"
        assert await invoice_status(stack.client, order["subscription_id"]) == "new"
        # The holder is gone: its claim ages past the TTL.
        async with stack.db.transaction() as session:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.provider_invoice_id == provider_id)
                .values(claimed_at=now - CLAIM_TTL - timedelta(seconds=1))
            )
        taken = await anon.post(WEBHOOK, content=body, headers=headers)
        assert (taken.status_code, taken.json()["status"]) == (200, "settled")
        repeat = await anon.post(WEBHOOK, content=body, headers=headers)
        assert (repeat.status_code, repeat.json()["status"]) == (200, "duplicate")
    assert len((await stack.client.get("/api/v1/transactions")).json()["items"]) == 1


@pytest.mark.parametrize("releases", [1, inbox.CLAIM_ATTEMPTS])
async def test_a_claim_whose_row_is_released_before_it_is_read_inserts_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, releases: int
) -> None:
    """The claim's insert and its read of the row it collided with are separate statements:
    the holder may release its claim (a failed re-fetch) in between. The claim then inserts
    again and takes it; released under it every time, it answers busy (retry later), never
    an error."""
    key = ("btcpay", "inv-released", "InvoiceSettled")
    now = stack.container.clock.now()
    real_record = payments_repo.record_delivery
    released = 0

    async def holder_releases_after_the_collision(session: Any, **values: Any) -> int | None:
        nonlocal released
        if released < releases:
            # A live holder's row makes this insert collide, then the holder releases it.
            holder = await real_record(session, **{**values, "delivery_id": "holder"})
            assert holder is not None
            collided = await real_record(session, **values)
            assert collided is None
            await payments_repo.release_delivery(session, holder)
            released += 1
            return collided
        return await real_record(session, **values)

    monkeypatch.setattr(payments_repo, "record_delivery", holder_releases_after_the_collision)
    async with stack.db.each_statement_alone(write=True) as session:
        seen = await inbox.claim(session, key, delivery_id="ours", payload="{}", now=now)
    async with stack.db.reading() as session:
        row = await payments_repo.delivery(session, *key)
    if releases < inbox.CLAIM_ATTEMPTS:
        assert seen.verdict is inbox.Verdict.CLAIMED
        assert row is not None and (row.id, row.delivery_id) == (seen.row_id, "ours")
    else:
        assert seen.verdict is inbox.Verdict.BUSY and row is None
