"""The ledger through the API: manual adjustments, memo edits, reversals; append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.conftest import Stack
from tests.helpers import assert_problem, buy, create_user, invoice_status, wait_until


async def _sale(stack: Stack) -> tuple[dict[str, object], dict[str, object]]:
    aff = await create_user(stack.client, "aff")
    buyer = await create_user(stack.client, "buyer", referral_id=aff["user_id"])
    order = await buy(stack.client, buyer["user_id"])
    await stack.btcpay.pay(order["invoice"]["provider_invoice_id"])  # type: ignore[index]

    async def settled() -> bool:
        return await invoice_status(stack.client, order["subscription_id"]) == "settled"  # type: ignore[arg-type]

    await wait_until(settled)
    # The sealer chains new entries in the background: let it finish, so every read below
    # sees the entry with its hash (under load it could otherwise still be unsealed).
    await stack.container.sealer.flush()
    return aff, order


async def test_manual_adjustment_is_balanced_and_moves_balances(stack: Stack) -> None:
    aff, _ = await _sale(stack)
    account = f"payable:affiliate:{aff['user_id']}"
    response = await stack.client.post(
        "/api/v1/transactions",
        json={
            "memo": "campaign bonus",
            "postings": [
                {"account": "revenue:owner", "amount_sats": 1_000},
                {"account": account, "amount_sats": -1_000},
            ],
        },
    )
    assert response.status_code == 201, response.text
    entry = response.json()
    assert entry["kind"] == "adjustment"
    assert entry["seq"] == 2
    assert entry["memo"] == "campaign bonus"
    assert entry["created_by"].startswith("api-key:")
    user = (await stack.client.get(f"/api/v1/users/{aff['user_id']}")).json()
    assert user["balance_sats"] == 26_000
    listed = (
        await stack.client.get("/api/v1/transactions", params={"user_id": aff["user_id"]})
    ).json()
    assert [t["kind"] for t in listed["items"]] == ["adjustment", "sale"]
    only_sales = (await stack.client.get("/api/v1/transactions", params={"kind": "sale"})).json()
    assert [t["kind"] for t in only_sales["items"]] == ["sale"]


@pytest.mark.parametrize(
    "postings",
    [
        [
            {"account": "revenue:owner", "amount_sats": 5},
            {"account": "expense:x", "amount_sats": -4},
        ],
        [
            {"account": "revenue:owner", "amount_sats": 0},
            {"account": "expense:x", "amount_sats": 0},
        ],
        [{"account": "revenue:owner", "amount_sats": 5}],
        [{"account": "nonsense", "amount_sats": 5}, {"account": "expense:x", "amount_sats": -5}],
        [
            {"account": "revenue:owner", "amount_sats": 5},
            {"account": "revenue:owner", "amount_sats": -5},
        ],
        [
            {"account": "revenue:owner", "amount_sats": 2**62},
            {"account": "expense:x", "amount_sats": -(2**62)},
        ],
        [
            {"account": "payable:affiliate:424242", "amount_sats": 5},
            {"account": "expense:x", "amount_sats": -5},
        ],
        [
            {"account": "revenue:owner", "amount_sats": "5"},
            {"account": "expense:x", "amount_sats": -5},
        ],
        [
            {"account": "revenue:owner", "amount_sats": 5.0},
            {"account": "expense:x", "amount_sats": -5},
        ],
    ],
)
async def test_unbalanced_or_invalid_adjustments_are_refused(
    stack: Stack, postings: list[dict[str, object]]
) -> None:
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/transactions", json={"memo": "bad", "postings": postings}
    )
    assert_problem(response, 422)
    assert await stack.counts() == before


async def test_put_changes_only_the_memo(stack: Stack) -> None:
    await _sale(stack)
    entry = (await stack.client.get("/api/v1/transactions")).json()["items"][0]
    path = f"/api/v1/transactions/{entry['transaction_id']}"
    before = await stack.counts()
    for body in (
        {"postings": []},
        {"memo": "x", "gross_sats": 1},
        {"amount_sats": 10},
        {"kind": "adjustment"},
    ):
        problem = assert_problem(await stack.client.put(path, json=body), 409)
        assert "reversal" in problem["detail"]
    assert await stack.counts() == before
    assert_problem(await stack.client.put(path, json={"memo": ""}), 422)
    assert_problem(await stack.client.put(path, json={"memo": 5}), 422)
    updated = await stack.client.put(path, json={"memo": "paid over Lightning"})
    assert updated.status_code == 200
    assert updated.json()["memo"] == "paid over Lightning"
    assert updated.json()["hash"] == entry["hash"]  # the memo is outside the hash
    assert updated.json()["postings"] == entry["postings"]


async def test_reversal_negates_and_cannot_repeat(stack: Stack) -> None:
    aff, _ = await _sale(stack)
    entry = (await stack.client.get("/api/v1/transactions")).json()["items"][0]
    response = await stack.client.post(
        f"/api/v1/transactions/{entry['transaction_id']}/reversal", json={"memo": "refund"}
    )
    assert response.status_code == 201, response.text
    reversal = response.json()
    assert reversal["kind"] == "reversal"
    assert reversal["reverses_transaction_id"] == entry["transaction_id"]
    assert sorted((p["account"], -p["amount_sats"]) for p in reversal["postings"]) == sorted(
        (p["account"], p["amount_sats"]) for p in entry["postings"]
    )
    assert (await stack.client.get(f"/api/v1/users/{aff['user_id']}")).json()["balance_sats"] == 0
    again = await stack.client.post(f"/api/v1/transactions/{entry['transaction_id']}/reversal")
    assert_problem(again, 409)
    of_reversal = await stack.client.post(
        f"/api/v1/transactions/{reversal['transaction_id']}/reversal"
    )
    assert_problem(of_reversal, 409)
    assert_problem(await stack.client.post("/api/v1/transactions/999/reversal"), 404)


async def test_database_refuses_updates_and_deletes_of_ledger_rows(stack: Stack) -> None:
    await _sale(stack)
    # SQLite's RAISE(ABORT) in a trigger is a constraint failure; PostgreSQL's RAISE EXCEPTION
    # is a plain database error.
    refusal = IntegrityError if stack.db.is_sqlite else DBAPIError
    for statement in (
        "UPDATE ledger_postings SET amount_sats = amount_sats + 1",
        "DELETE FROM ledger_postings",
        "UPDATE ledger_entries SET kind = 'adjustment'",
        "DELETE FROM ledger_entries",
        "DELETE FROM ledger_entry_notes",
    ):
        with pytest.raises(refusal) as caught:
            async with stack.db.transaction() as session:
                await session.execute(text(statement))
        assert type(caught.value) is refusal
        assert "append-only" in str(caught.value)


async def test_a_refund_completes_a_sale_already_reversed_in_the_ledger(stack: Stack) -> None:
    """An admin may reverse a sale entry as a ledger correction (say the processor invalidated
    the payment); a refund recorded afterwards does what that left undone (the invoice, the
    paid time) without reversing the sale a second time."""
    aff, order = await _sale(stack)
    sale = (await stack.client.get("/api/v1/transactions", params={"kind": "sale"})).json()
    [entry] = sale["items"]
    reversed_ = await stack.client.post(
        f"/api/v1/transactions/{entry['transaction_id']}/reversal", json={"memo": "invalidated"}
    )
    assert reversed_.status_code == 201, reversed_.text
    before = (await stack.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()

    refunded = await stack.client.post(
        f"/api/v1/invoices/{order['invoice']['id']}/refund", json={"note": "paid back, txid abc"}
    )
    assert refunded.status_code == 200, refunded.text
    assert await invoice_status(stack.client, order["subscription_id"]) == "refunded"
    after = (await stack.client.get(f"/api/v1/subscriptions/{order['subscription_id']}")).json()
    assert after["ends_at"] < before["ends_at"]  # the paid time is taken back
    reversals = (
        await stack.client.get("/api/v1/transactions", params={"kind": "reversal"})
    ).json()["items"]
    assert [r["transaction_id"] for r in reversals] == [reversed_.json()["transaction_id"]]
    assert reversals[0]["memo"].startswith("refund of invoice")
    # Clawed back once, by the reversal: not twice.
    assert (await stack.client.get(f"/api/v1/users/{aff['user_id']}")).json()["balance_sats"] == 0
    again = await stack.client.post(f"/api/v1/invoices/{order['invoice']['id']}/refund")
    assert "only a paid invoice is refunded" in assert_problem(again, 409)["detail"]
