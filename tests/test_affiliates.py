"""The affiliate program: levels, custom terms (versioned, never rewriting the past),
suspension, the hold period, and refunds that claw back a commission already paid out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from satshare.clock import FrozenClock
from tests.conftest import BTCPaySim, close_stack
from tests.helpers import assert_problem
from tests.lightningkit import Lightning
from tests.payoutkit import (
    COMMISSION,
    affiliate,
    balance,
    earn,
    open_payout_stack,
    payout,
    settle_payouts,
)

GROSS = 50_000


async def _sales(client: Any, affiliate_id: int) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/transactions", params={"kind": "sale", "limit": 200})
    sales = [t for t in response.json()["items"] if t["memo"] and "invoice" in t["memo"]]
    return sorted(sales, key=lambda t: t["transaction_id"])


def _credited(sale: dict[str, Any], account: str) -> int:
    return -sum(p["amount_sats"] for p in sale["postings"] if p["account"] == account)


async def test_levels_custom_terms_and_suspension_never_rewrite_the_past(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning
) -> None:
    levels = [
        {"name": "Starter", "share_bps": 5000},
        {"name": "Gold", "min_paying_referrals": 2, "share_bps": 6000},
        {"name": "Diamond", "min_referred_sales_sats": 10_000_000, "share_bps": 8000},
    ]
    stack = await open_payout_stack(
        database_url, btcpay, lightning, affiliate={"share_bps": 5000, "levels": levels}
    )
    try:
        client = stack.client
        alice = await affiliate(stack)
        program = (await client.get("/api/v1/affiliate-program")).json()
        assert [level["name"] for level in program["levels"]] == ["Starter", "Gold", "Diamond"]
        info = (await client.get(f"/api/v1/affiliates/{alice}")).json()
        assert info["terms"] == {"share_bps": 5000, "label": "level:Starter", "level": "Starter"}
        await earn(stack, alice, times=2)  # two paying referrals: Gold from the next sale on
        info = (await client.get(f"/api/v1/affiliates/{alice}")).json()
        assert info["terms"]["label"] == "level:Gold"
        assert info["referrals"] == {
            "registered": 2,
            "paying": 2,
            "referred_sales_sats": 2 * GROSS,
        }
        await earn(stack, alice)
        custom = await client.put(
            f"/api/v1/affiliates/{alice}/terms",
            json={"share_bps": 7000, "reason": "launch partner"},
        )
        assert custom.json()["version"] == 1
        assert custom.json()["set_by"].startswith("api-key:")
        await earn(stack, alice)
        suspended = await client.post(
            f"/api/v1/affiliates/{alice}/suspension", json={"reason": "spam complaints"}
        )
        assert suspended.status_code == 201
        assert suspended.json()["terms"]["label"] == "suspended"
        twice = await client.post(
            f"/api/v1/affiliates/{alice}/suspension", json={"reason": "again"}
        )
        assert "already suspended" in assert_problem(twice, 409)["detail"]
        await earn(stack, alice)
        lifted = await client.delete(f"/api/v1/affiliates/{alice}/suspension")
        assert lifted.json()["suspension"] is None
        back = await client.put(
            f"/api/v1/affiliates/{alice}/terms", json={"share_bps": None, "reason": "campaign over"}
        )
        assert back.json()["version"] == 2
        await earn(stack, alice)
        sales = await _sales(client, alice)
        account = f"payable:affiliate:{alice}"
        assert [(s["terms"], s["share_bps"], _credited(s, account)) for s in sales] == [
            ("level:Starter", 5000, 25_000),
            ("level:Starter", 5000, 25_000),
            ("level:Gold", 6000, 30_000),
            ("custom:v1", 7000, 35_000),
            ("suspended", 0, 0),
            ("level:Gold", 6000, 30_000),
        ]
        owner = [_credited(s, "revenue:owner") for s in sales]
        assert owner == [25_000, 25_000, 20_000, 15_000, 50_000, 20_000]
        history = (await client.get(f"/api/v1/affiliates/{alice}/terms")).json()
        assert [(h["version"], h["share_bps"], h["reason"]) for h in history] == [
            (1, 7000, "launch partner"),
            (2, None, "campaign over"),
        ]
        assert (await balance(client, alice))["total_earned_sats"] == 145_000
        bad = await client.put(
            f"/api/v1/affiliates/{alice}/terms", json={"share_bps": 10_001, "reason": "x"}
        )
        assert_problem(bad, 422)
        no_reason = await client.put(
            f"/api/v1/affiliates/{alice}/terms", json={"share_bps": 100, "reason": " "}
        )
        assert "say why" in assert_problem(no_reason, 422)["detail"]
    finally:
        await close_stack(stack)


async def test_commissions_are_pending_for_the_hold_period(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning
) -> None:
    clock = FrozenClock()
    stack = await open_payout_stack(
        database_url, btcpay, lightning, clock=clock, affiliate={"hold_days": 7}
    )
    try:
        alice = await affiliate(stack)
        await earn(stack, alice)
        money = await balance(stack.client, alice)
        assert (money["balance_sats"], money["pending_sats"], money["available_sats"]) == (
            COMMISSION,
            COMMISSION,
            0,
        )
        refused = await stack.client.post(
            "/api/v1/payouts",
            json={"user_id": alice, "amount_sats": 5_000, "destination": lightning.address("a")},
        )
        problem = assert_problem(refused, 422)
        assert "25000 sats are still in the hold period" in problem["detail"]
        clock.advance(timedelta(days=7, seconds=1))
        money = await balance(stack.client, alice)
        assert (money["pending_sats"], money["available_sats"]) == (0, COMMISSION)
        allowed = await stack.client.post(
            "/api/v1/payouts",
            json={"user_id": alice, "amount_sats": 5_000, "destination": lightning.address("a")},
        )
        assert allowed.status_code == 201, allowed.text
    finally:
        await close_stack(stack)


async def test_refund_claws_back_a_paid_out_commission(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning
) -> None:
    stack = await open_payout_stack(database_url, btcpay, lightning)
    try:
        client = stack.client
        alice = await affiliate(stack)
        await earn(stack, alice)
        created = await client.post(
            "/api/v1/payouts",
            json={
                "user_id": alice,
                "amount_sats": COMMISSION,
                "destination": lightning.address("alice"),
            },
        )
        await settle_payouts(stack)
        assert (await payout(client, created.json()["payout_id"]))["status"] == "paid"
        (sale,) = await _sales(client, alice)
        refunded = await client.post(
            f"/api/v1/invoices/{sale['invoice_id']}/refund", json={"note": "txid abc"}
        )
        assert refunded.status_code == 200, refunded.text
        again = await client.post(f"/api/v1/invoices/{sale['invoice_id']}/refund")
        assert "only a paid invoice is refunded" in assert_problem(again, 409)["detail"]
        money = await balance(client, alice)
        assert money["balance_sats"] == -COMMISSION  # paid out, then clawed back
        assert money["available_sats"] == 0
        assert money["total_earned_sats"] == 0
        # The next commission offsets the debt before anything can be paid out.
        await earn(stack, alice)
        money = await balance(client, alice)
        assert (money["balance_sats"], money["available_sats"]) == (0, 0)
        await earn(stack, alice)
        assert (await balance(client, alice))["available_sats"] == COMMISSION
    finally:
        await close_stack(stack)


async def test_self_referral_is_impossible_and_unknown_affiliates_404(
    database_url: str, btcpay: BTCPaySim, lightning: Lightning
) -> None:
    stack = await open_payout_stack(database_url, btcpay, lightning)
    try:
        alice = await affiliate(stack)
        user = (await stack.client.get(f"/api/v1/users/{alice}")).json()
        changed = await stack.client.put(
            f"/api/v1/users/{alice}", json={"referral_id": user["referral_code"]}
        )
        assert_problem(changed, 409)
        assert_problem(await stack.client.get("/api/v1/affiliates/999999"), 404)
        assert_problem(
            await stack.client.post("/api/v1/affiliates/999999/suspension", json={"reason": "x"}),
            404,
        )
        saved = await stack.client.put(
            f"/api/v1/affiliates/{alice}/destination", json={"destination": "lnbcrt1xyz"}
        )
        assert assert_problem(saved, 422)["type"] == "/problems/invalid-destination"
    finally:
        await close_stack(stack)
