"""The BTCPay emulator against the Greenfield spec (a property-name subset is copied into
tests/data), and the BTCPay behaviours our adapter relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from bolt11 import decode

from satshare.security import verify_sha256_signature
from tests.conftest import BTCPAY_KEY, STORE_ID, BTCPaySim
from tests.helpers import wait_until
from tests.servers import start_server

SPEC = json.loads((Path(__file__).parent / "data" / "btcpay_greenfield_subset.json").read_text())
AUTH = {"Authorization": f"token {BTCPAY_KEY}"}


def conforms(data: dict[str, Any], schema: str, allowed_extra: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    unknown = set(data) - set(SPEC["schemas"][schema]) - allowed_extra
    assert not unknown, f"{schema}: not in the spec: {unknown}"


@pytest.fixture
async def api(btcpay: BTCPaySim) -> Any:
    async with httpx.AsyncClient(base_url=btcpay.url, headers=AUTH, timeout=10) as client:
        yield client


async def _create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    payload = {"amount": "5000", "currency": "SATS", "metadata": {"orderId": "o1"}, **body}
    response = await api.post(f"/api/v1/stores/{STORE_ID}/invoices", json=payload)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_invoice_shapes_follow_the_spec(api: httpx.AsyncClient) -> None:
    invoice = await _create(api, checkout={"expirationMinutes": 30, "speedPolicy": "LowSpeed"})
    conforms(invoice, "InvoiceData")
    assert invoice["status"] in SPEC["enums"]["InvoiceStatus"]
    assert invoice["additionalStatus"] in SPEC["enums"]["InvoiceAdditionalStatus"]
    assert invoice["expirationTime"] - invoice["createdTime"] == 30 * 60
    assert invoice["metadata"] == {"orderId": "o1"}
    by_store = (await api.get(f"/api/v1/stores/{STORE_ID}/invoices/{invoice['id']}")).json()
    by_id = (await api.get(f"/api/v1/invoices/{invoice['id']}")).json()
    assert by_store == by_id
    methods = (await api.get(f"/api/v1/invoices/{invoice['id']}/payment-methods")).json()
    assert {m["paymentMethodId"] for m in methods} == {"BTC-CHAIN", "BTC-LN"}
    for method in methods:
        conforms(method, "InvoicePaymentMethodDataModel")
        assert method["amount"] == "0.00005000"
        assert method["due"] == "0.00005000"
    lightning = next(m for m in methods if m["paymentMethodId"] == "BTC-LN")
    bolt = decode(lightning["destination"])
    assert bolt.amount_msat == 5_000_000
    assert bolt.currency == "bcrt"  # regtest: the sandbox can never take real coins


async def test_auth_and_validation_errors_use_btcpay_formats(btcpay: BTCPaySim) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=btcpay.url) as anon:
        response = await anon.post(f"/api/v1/stores/{STORE_ID}/invoices", json={"amount": "1"})
        assert response.status_code == 401
        assert set(response.json()) == {"code", "message"}
        wrong_store = await anon.get("/api/v1/stores/other/invoices", headers=AUTH)
        assert wrong_store.status_code == 403
        invalid = await anon.post(
            f"/api/v1/stores/{STORE_ID}/invoices",
            json={"amount": "NaN", "checkout": {"speedPolicy": "Warp"}},
            headers=AUTH,
        )
        assert invalid.status_code == 422
        assert {e["path"] for e in invalid.json()} == {"amount", "checkout.speedPolicy"}
        missing = await anon.get("/api/v1/invoices/nope", headers=AUTH)
        assert missing.status_code == 404 and missing.json()["code"] == "invoice-not-found"


async def test_statuses_through_a_lifecycle(btcpay: BTCPaySim, api: httpx.AsyncClient) -> None:
    invoice = await _create(api, checkout={"speedPolicy": "LowMediumSpeed"})
    path = f"/api/v1/invoices/{invoice['id']}"
    await btcpay.pay(invoice["id"], method="BTC-CHAIN", amount_sats=2000)
    data = (await api.get(path)).json()
    assert (data["status"], data["additionalStatus"]) == ("New", "PaidPartial")
    await btcpay.pay(invoice["id"], method="BTC-CHAIN", amount_sats=4000)
    data = (await api.get(path)).json()
    assert (data["status"], data["additionalStatus"]) == ("Processing", "PaidOver")
    await btcpay.control("POST", "/_sim/mine", json={"blocks": 1})
    assert (await api.get(path)).json()["status"] == "Processing"  # needs two confirmations
    await btcpay.control("POST", "/_sim/mine", json={"blocks": 1})
    data = (await api.get(path)).json()
    assert (data["status"], data["additionalStatus"]) == ("Settled", "PaidOver")
    methods = (await api.get(f"{path}/payment-methods")).json()
    chain = next(m for m in methods if m["paymentMethodId"] == "BTC-CHAIN")
    assert chain["due"] == "-0.00001000"
    assert [p["status"] for p in chain["payments"]] == ["Settled", "Settled"]
    for payment in chain["payments"]:
        conforms(payment, "Payment")


async def test_expiry_and_late_payment(btcpay: BTCPaySim, api: httpx.AsyncClient) -> None:
    invoice = await _create(api)
    await btcpay.control("POST", f"/_sim/invoices/{invoice['id']}/expire")
    data = (await api.get(f"/api/v1/invoices/{invoice['id']}")).json()
    assert (data["status"], data["additionalStatus"]) == ("Expired", "None")
    await btcpay.pay(invoice["id"], method="BTC-LN")
    data = (await api.get(f"/api/v1/invoices/{invoice['id']}")).json()
    assert (data["status"], data["additionalStatus"]) == ("Expired", "PaidLate")


async def test_webhooks_are_signed_ordered_and_redelivered_with_new_ids(
    btcpay: BTCPaySim, api: httpx.AsyncClient
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    received: list[tuple[bytes, str]] = []
    fail_first = {"left": 1}

    async def receiver(request: Request) -> Response:
        body = await request.body()
        received.append((body, request.headers["btcpay-sig"]))
        if fail_first["left"]:
            fail_first["left"] -= 1
            return Response(status_code=503)
        return Response(status_code=200)

    server = await start_server(Starlette(routes=[Route("/hook", receiver, methods=["POST"])]))
    try:
        created = await api.post(
            f"/api/v1/stores/{STORE_ID}/webhooks",
            json={"url": f"{server.url}/hook", "secret": "s3cret-s3cret"},
        )
        hook = created.json()
        assert hook["secret"] == "s3cret-s3cret"
        conforms(hook, "WebhookData", {"secret"})
        invoice = await _create(api)
        await btcpay.pay(invoice["id"], method="BTC-LN")

        async def all_in() -> bool:
            types = [json.loads(b)["type"] for b, _ in received]
            return types.count("InvoiceCreated") == 2 and "InvoiceSettled" in types

        await wait_until(all_in)
        events = [json.loads(body) for body, _ in received]
        for body, signature in received:
            assert verify_sha256_signature("s3cret-s3cret", body, signature)
        first, retry = events[0], next(e for e in events[1:] if e["type"] == "InvoiceCreated")
        assert first["type"] == "InvoiceCreated"
        assert retry["isRedelivery"] is True
        assert retry["deliveryId"] != first["deliveryId"]
        assert retry["originalDeliveryId"] == first["deliveryId"]
        settled = next(e for e in events if e["type"] == "InvoiceSettled")
        conforms(settled, "WebhookInvoiceSettledEvent")
        paid = next(e for e in events if e["type"] == "InvoiceReceivedPayment")
        conforms(paid, "WebhookInvoiceReceivedPaymentEvent")
        order = [e["type"] for e in events if e["type"] != "InvoiceCreated"]
        assert order == ["InvoiceReceivedPayment", "InvoicePaymentSettled", "InvoiceSettled"]

        deliveries = (
            await api.get(f"/api/v1/stores/{STORE_ID}/webhooks/{hook['id']}/deliveries")
        ).json()
        for delivery in deliveries:
            conforms(delivery, "WebhookDeliveryData")
        manual = await api.post(
            f"/api/v1/stores/{STORE_ID}/webhooks/{hook['id']}/deliveries/{first['deliveryId']}/redeliver"
        )
        assert manual.status_code == 200 and manual.json() != first["deliveryId"]
        request = await api.get(
            f"/api/v1/stores/{STORE_ID}/webhooks/{hook['id']}/deliveries/{first['deliveryId']}/request"
        )
        assert json.loads(request.content)["deliveryId"] == first["deliveryId"]
        assert (await api.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 200
        assert (await api.get(f"/api/v1/stores/{STORE_ID}/webhooks")).json() == []
    finally:
        await server.stop()


async def test_payout_shapes_and_states_follow_the_spec(api: httpx.AsyncClient) -> None:
    body = {
        "destination": "bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zxc5w7l",
        "amount": "0.00020000",
        "payoutMethodId": "BTC-CHAIN",
        "approved": False,
        "metadata": {"source": "test"},
    }
    assert set(body) <= set(SPEC["schemas"]["CreatePayoutThroughStoreRequest"])
    created = await api.post(f"/api/v1/stores/{STORE_ID}/payouts", json=body)
    assert created.status_code == 200, created.text
    payout = created.json()
    conforms(payout, "PayoutData")
    assert payout["state"] == "AwaitingApproval" and payout["payoutAmount"] is None
    path = f"/api/v1/stores/{STORE_ID}/payouts/{payout['id']}"
    assert (await api.get(path)).json() == (await api.get(f"/api/v1/payouts/{payout['id']}")).json()
    approved = (await api.post(path, json={"revision": 0})).json()
    # The emulator's processor pays at once: a payout ends Completed with its proof.
    assert approved["state"] == "Completed" and len(approved["paymentProof"]["id"]) == 64
    for state in (payout["state"], approved["state"]):
        assert state in SPEC["enums"]["PayoutState"]
    assert (await api.post(path)).json()["code"] == "invalid-state"
    assert (await api.delete(path)).status_code == 400  # a completed payout stays
    listed = (await api.get(f"/api/v1/stores/{STORE_ID}/payouts")).json()
    assert [p["id"] for p in listed] == [payout["id"]]
    wrong = await api.post(
        f"/api/v1/stores/{STORE_ID}/payouts", json={**body, "payoutMethodId": "BTC-LN"}
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "payment-method-not-supported"
    invalid = await api.post(
        f"/api/v1/stores/{STORE_ID}/payouts", json={**body, "amount": "0.000000001"}
    )
    assert invalid.status_code == 422


async def test_the_home_page_lists_the_invoices(api: httpx.AsyncClient, btcpay: BTCPaySim) -> None:
    """The sandbox banner links to the emulator's root: a page, not a 404."""
    async with httpx.AsyncClient(base_url=btcpay.url, timeout=10) as browser:
        empty = await browser.get("/")
        assert empty.status_code == 200 and "text/html" in empty.headers["content-type"]
        assert "BTCPay Server emulator" in empty.text and "None yet" in empty.text
        created = await _create(api)
        listed = await browser.get("/")
    assert f'href="i/{created["id"]}"' in listed.text and "Invoices (1)" in listed.text
