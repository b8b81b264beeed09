"""Account codes are canonical and name an existing owner (issue #8, item 8).

A user's account has one spelling, the one the ledger writes itself: an alias such as
``payable:affiliate:0003`` used to open a second account tied to user 3 that their balance
never saw, and ``:-1`` or an id beyond BIGINT one that belonged to nobody.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from satshare.errors import InvalidRequest
from satshare.ledger import accounts
from satshare.ledger import service as ledger
from satshare.ledger.models import Entry, Posting, SealQueue
from satshare.schemas import MAX_ID
from tests.conftest import Stack
from tests.helpers import assert_problem, create_user

NON_CANONICAL = [
    "payable:affiliate:0{id}",
    "payable:affiliate:000{id}",
    "payable:customer:0{id}",
    "payable:affiliate:-1",
    "payable:affiliate:-{id}",
    "payable:affiliate:0",
    "payable:affiliate:9223372036854775808",
    "payable:affiliate:99999999999999999999",
    "payable:affiliate:x{id}",
    "payable:affiliate:abc",
    "payable:affiliate",
    "payable:customer",
]


@pytest.mark.parametrize("code", [c.format(id=3) for c in NON_CANONICAL])
def test_only_the_canonical_spelling_names_a_user(code: str) -> None:
    with pytest.raises(InvalidRequest, match="no sign, no leading zeros"):
        accounts.require_canonical(code)
    assert accounts.user_of(code) is None


def test_canonical_codes_and_their_owners() -> None:
    assert accounts.require_canonical("payable:affiliate:3") == 3
    assert accounts.require_canonical("payable:customer:17") == 17
    assert accounts.require_canonical(f"payable:affiliate:{MAX_ID}") == MAX_ID
    assert accounts.require_canonical("revenue:owner") is None
    assert accounts.require_canonical("payable:payouts") is None
    assert accounts.require_canonical("expense:hosting-2024") is None


async def _balance(stack: Stack, user_id: int) -> int:
    response = await stack.client.get(f"/api/v1/users/{user_id}")
    assert response.status_code == 200, response.text
    balance: int = response.json()["balance_sats"]
    return balance


@pytest.mark.parametrize("template", NON_CANONICAL)
async def test_api_refuses_an_alias_or_ownerless_user_account(stack: Stack, template: str) -> None:
    user = await create_user(stack.client, "alice")
    credited = await stack.client.post(
        "/api/v1/transactions",
        json={
            "memo": "bonus",
            "postings": [
                {"account": "revenue:owner", "amount_sats": 700},
                {"account": f"payable:affiliate:{user['user_id']}", "amount_sats": -700},
            ],
        },
    )
    assert credited.status_code == 201, credited.text
    code = template.format(id=user["user_id"])
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/transactions",
        json={
            "memo": "an alias",
            "postings": [
                {"account": "expense:x", "amount_sats": 500},
                {"account": code, "amount_sats": -500},
            ],
        },
    )
    problem = assert_problem(response, 422)
    assert problem["field"] == "postings.1.account", problem
    assert code in problem["detail"]
    assert await stack.counts() == before
    assert await _balance(stack, user["user_id"]) == 700


async def test_api_refuses_an_account_of_a_user_who_does_not_exist(stack: Stack) -> None:
    user = await create_user(stack.client, "alice")
    missing = user["user_id"] + 1000
    before = await stack.counts()
    response = await stack.client.post(
        "/api/v1/transactions",
        json={
            "memo": "to nobody",
            "postings": [
                {"account": f"payable:customer:{missing}", "amount_sats": -5},
                {"account": "expense:x", "amount_sats": 5},
            ],
        },
    )
    problem = assert_problem(response, 422)
    assert problem["field"] == "postings.0.account", problem
    assert f"user {missing}, who does not exist" in problem["detail"]
    assert await stack.counts() == before


async def test_an_account_opened_before_the_rule_stays_reversible(stack: Stack) -> None:
    """An alias written before codes were checked keeps its postings and can be reversed."""
    user = await create_user(stack.client, "alice")
    alias = f"payable:affiliate:000{user['user_id']}"
    now = datetime.now(UTC)
    async with stack.db.transaction() as session:
        # What the ledger wrote before: an alias tied to the user, outside their balance.
        opened = await ledger.repository.ensure_accounts(
            session, [(alias, "liability", user["user_id"]), ("expense:x", "expense", None)], now
        )
        entry = Entry(idempotency_key="legacy", kind="adjustment", created_at=now)
        session.add(entry)
        await session.flush()
        session.add_all(
            [
                Posting(entry_id=entry.id, account_id=opened["expense:x"].id, amount_sats=500),
                Posting(entry_id=entry.id, account_id=opened[alias].id, amount_sats=-500),
                SealQueue(entry_id=entry.id),
            ]
        )
    response = await stack.client.post(f"/api/v1/transactions/{entry.id}/reversal")
    assert response.status_code == 201, response.text
    assert sorted((p["account"], p["amount_sats"]) for p in response.json()["postings"]) == [
        ("expense:x", -500),
        (alias, 500),
    ]
    assert await _balance(stack, user["user_id"]) == 0
