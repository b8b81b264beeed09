"""The HTTP base the provider adapters share (issue #9, item 7), against real sockets.

Every adapter turns "no answer" and "an answer that is not JSON" into its own error with its
own words; the payout adapters keep their line between FAILED (the connection was never made,
so nothing was sent) and UNKNOWN (the request may have arrived); LNbits judges expiry by the
clock it is given.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from satshare import __version__
from satshare.clock import FrozenClock, SystemClock
from satshare.payments.ports import InvoiceOrder, InvoiceState, ProviderError
from satshare.payouts import service as payouts
from satshare.payouts.destinations import DestinationKind, InvalidDestination
from satshare.payouts.ports import PayoutOrder, SendResult, SendState
from satshare.providers.bitpay import BitPayProvider
from satshare.providers.btcpay import BTCPayPayouts, BTCPayProvider
from satshare.providers.lnbits import LNbitsPayouts, LNbitsProvider
from satshare.providers.onchain import OnchainProvider
from satshare.providers.rates import KrakenRates
from satshare.rates.ports import RateUnreachable
from satshare.sim.lightning import RegtestNode
from satshare.sim.lnbits import LNbitsEmulator
from satshare.sim.lnbits import build_app as lnbits_app
from tests.servers import RunningServer, free_port, start_server

KEY = "3f0c2a9e7b1d4c6a8e5f0b2d9c7a1e3f5b8d0a2c"
#: Short, for a silent server to time out quickly.
TIMEOUT = 0.5
#: For a server that answers: a loaded CI machine once took longer than TIMEOUT just to
#: connect on loopback, and the test saw a timeout instead of the answer it was about.
ANSWERED_TIMEOUT = 15.0

Call = Callable[[], Awaitable[object]]


def _adapters(url: str, timeout: float) -> dict[str, tuple[Call, Any]]:
    """For each adapter: a call that reads from ``url``, and the adapter (to close)."""
    clock = SystemClock()
    btcpay = BTCPayProvider(
        base_url=url, api_key=KEY, store_id="S1", webhook_secret=KEY, timeout_seconds=timeout
    )
    lnbits = LNbitsProvider(base_url=url, invoice_key=KEY, timeout_seconds=timeout)
    bitpay = BitPayProvider(base_url=url, token=KEY, timeout_seconds=timeout)
    onchain = OnchainProvider(
        esplora_url=url,
        store=None,  # type: ignore[arg-type]  # observe() reads the chain only
        clock=clock,
        timeout_seconds=timeout,
    )
    rates = KrakenRates(url, clock, timeout)
    return {
        "btcpay": (lambda: btcpay.fetch_invoice("inv1"), btcpay),
        "lnbits": (lambda: lnbits.fetch_invoice("ab" * 32), lnbits),
        "bitpay": (lambda: bitpay.fetch_invoice("inv1"), bitpay),
        "onchain": (lambda: onchain.observe("bcrt1qexample"), onchain),
        "rates": (lambda: rates.quote("USD"), rates),
    }


ADAPTERS = ["btcpay", "lnbits", "bitpay", "onchain", "rates"]


async def _raised(name: str, url: str, timeout: float) -> Exception:
    call, adapter = _adapters(url, timeout)[name]
    try:
        with pytest.raises((ProviderError, RateUnreachable)) as caught:
            await call()
    finally:
        await adapter.aclose()
    return caught.value


@pytest.fixture
async def captive_portal() -> AsyncIterator[RunningServer]:
    """Answers 200 with an HTML page wherever a JSON API was expected (a captive portal, a
    proxy's login page); Esplora's tip height still answers, so the history is read."""

    async def tip(_: Request) -> Response:
        return PlainTextResponse("100")

    async def page(_: Request) -> Response:
        return Response("<html>Please log in</html>", media_type="text/html")

    app = Starlette(
        routes=[
            Route("/blocks/tip/height", tip),
            Route("/{path:path}", page, methods=["GET", "POST"]),
        ]
    )
    server = await start_server(app)
    yield server
    await server.stop()


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and reads requests, never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(65536)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


NOT_JSON = {
    "btcpay": "BTCPay Server sent a body that is not JSON: ",
    "lnbits": "LNbits sent a body that is not JSON: ",
    "bitpay": "BitPay sent a body that is not JSON: ",
    "onchain": "Esplora sent a body that is not JSON: ",
    "rates": "{url} sent a body that is not JSON",
}


@pytest.mark.integration  # a server on loopback
@pytest.mark.parametrize("name", ADAPTERS)
async def test_an_answer_that_is_not_json_is_the_adapters_own_error(
    name: str, captive_portal: RunningServer
) -> None:
    # Esplora's address history used to escape as a bare ValueError (the reconciler's run
    # stopped there) instead of a ProviderError like every other read.
    error = await _raised(name, captive_portal.url, ANSWERED_TIMEOUT)
    assert str(error).startswith(NOT_JSON[name].format(url=captive_portal.url)), error


@pytest.fixture
async def header_recorder() -> AsyncIterator[tuple[RunningServer, list[dict[str, str]]]]:
    """A server that answers every path with a login page setting a cookie, and the headers
    of every request it got."""
    seen: list[dict[str, str]] = []

    async def page(request: Request) -> Response:
        seen.append(dict(request.headers))
        answer = Response("<html>Please log in</html>", media_type="text/html")
        answer.set_cookie("session", "abc123")
        return answer

    server = await start_server(Starlette(routes=[Route("/{path:path}", page)]))
    yield server, seen
    await server.stop()


async def _calls(name: str, url: str, times: int) -> Exception:
    """The adapter's call ``times`` times (each fails: a page is no API answer); the last
    error."""
    call, adapter = _adapters(url, ANSWERED_TIMEOUT)[name]
    try:
        for _ in range(times):
            with pytest.raises((ProviderError, RateUnreachable)) as caught:
                await call()
    finally:
        await adapter.aclose()
    return caught.value


@pytest.mark.integration  # a server on loopback
@pytest.mark.parametrize("name", ADAPTERS)
async def test_every_call_names_satshare_and_sends_back_no_cookie(
    name: str, header_recorder: tuple[RunningServer, list[dict[str, str]]]
) -> None:
    # The adapters call the transport without an httpx client (#15): they send a
    # User-Agent of their own (some rate APIs' CDNs refuse a request that names none) and
    # keep no cookie jar, so a cookie a service sets never comes back on the next call.
    server, seen = header_recorder
    await _calls(name, server.url, 2)
    assert len(seen) >= 2
    assert {headers.get("user-agent") for headers in seen} == {f"SatShare/{__version__}"}
    assert [headers for headers in seen if "cookie" in headers] == []


@pytest.mark.integration  # a server on loopback
@pytest.mark.parametrize("name", ADAPTERS)
async def test_a_user_and_password_in_the_url_are_sent_as_basic_auth(
    name: str, header_recorder: tuple[RunningServer, list[dict[str, str]]]
) -> None:
    # A service behind a proxy that asks for a password is configured with it in the URL
    # (README: secrets in URLs). httpx's client sent it as Basic auth; the adapters, which
    # call the transport, must too (#15). BTCPay's own token header is kept over it.
    server, seen = header_recorder
    error = await _calls(name, server.url.replace("http://", "http://al%40ice:p%3Ass@"), 1)
    assert seen, "the request never reached the server"
    basic = "Basic " + base64.b64encode(b"al@ice:p:ss").decode()
    expected = f"token {KEY}" if name == "btcpay" else basic
    assert {headers.get("authorization") for headers in seen} == {expected}
    assert "p:ss" not in str(error) and "p%3Ass" not in str(error)


NO_ANSWER = {
    "btcpay": "BTCPay Server at {url} did not answer (no answer in time)",
    "lnbits": "LNbits at {url} did not answer (no answer in time)",
    "bitpay": "BitPay at {url} did not answer (no answer in time)",
    "onchain": "Esplora at {url} did not answer (no answer in time)",
    "rates": "{url} did not answer (no answer in time)",
}


@pytest.mark.integration  # a server on loopback
@pytest.mark.parametrize("name", ADAPTERS)
async def test_a_server_that_never_answers_times_out_into_the_adapters_error(
    name: str, silent_server: str
) -> None:
    error = await _raised(name, silent_server, TIMEOUT)
    assert str(error) == NO_ANSWER[name].format(url=silent_server)


# -- payouts: FAILED only when nothing can have been sent ----------------------------------


def _lnbits_order() -> PayoutOrder:
    bolt11, payment_hash, _ = RegtestNode().invoice(5_000_000, "payout", 600)
    return PayoutOrder(
        payout_id=1,
        idempotency_key="satshare-payout-1",
        send_sats=5_000,
        destination_kind=DestinationKind.BOLT11,
        destination=bolt11,
        payment_request=bolt11,
        payment_hash=payment_hash,
    )


def _payouts(name: str, url: str) -> BTCPayPayouts | LNbitsPayouts:
    if name == "btcpay":
        return BTCPayPayouts(base_url=url, api_key=KEY, store_id="S1", timeout_seconds=TIMEOUT)
    return LNbitsPayouts(base_url=url, admin_key=KEY, timeout_seconds=TIMEOUT)


SERVICE = {"btcpay": "BTCPay Server", "lnbits": "LNbits"}


async def _send_and_check(name: str, url: str) -> tuple[SendResult, SendResult]:
    provider = _payouts(name, url)
    order = _lnbits_order()
    try:
        return await provider.send(order), await provider.check(order)
    finally:
        await provider.aclose()


@pytest.mark.parametrize("name", ["btcpay", "lnbits"])
async def test_a_payout_to_a_server_that_cannot_be_reached_failed(name: str) -> None:
    sent, checked = await _send_and_check(name, f"http://127.0.0.1:{free_port()}")
    assert (sent.state, sent.reason) == (
        SendState.FAILED,
        f"{SERVICE[name]} could not be reached",
    )
    # Asking afterwards proves nothing either way: unknown, never released on silence.
    assert (checked.state, checked.reason) == (
        SendState.UNKNOWN,
        f"no answer from {SERVICE[name]} (could not connect)",
    )


@pytest.mark.integration  # a server on loopback
@pytest.mark.parametrize("name", ["btcpay", "lnbits"])
async def test_a_payout_sent_without_an_answer_is_unknown(name: str, silent_server: str) -> None:
    sent, checked = await _send_and_check(name, silent_server)
    assert (sent.state, sent.reason) == (
        SendState.UNKNOWN,
        f"no answer from {SERVICE[name]} (no answer in time)",
    )
    assert (checked.state, checked.reason) == (
        SendState.UNKNOWN,
        f"no answer from {SERVICE[name]} (no answer in time)",
    )


# -- the payout policy asks the provider what it pays ---------------------------------------


async def test_the_policy_supports_what_the_provider_says_it_pays() -> None:
    lnbits = _payouts("lnbits", "http://127.0.0.1:9")
    btcpay = _payouts("btcpay", "http://127.0.0.1:9")
    try:
        lightning = {kind for kind in DestinationKind if kind.lightning}
        assert payouts.kinds_paid_by(lnbits) == lightning
        assert payouts.kinds_paid_by(btcpay) == set(DestinationKind)
        assert payouts.kinds_paid_by(None) == set(DestinationKind)  # paid by hand
        policy = payouts.PayoutPolicy(provider="lnbits", pays=payouts.kinds_paid_by(lnbits))
        assert [k for k in DestinationKind if policy.supports(k)] == [
            k for k in DestinationKind if lnbits.supports(k)
        ]
        with pytest.raises(InvalidDestination) as caught:
            policy.require_supported(DestinationKind.ONCHAIN)
        assert caught.value.detail == (
            "payouts are sent through lnbits, which pays Lightning only: give a Lightning "
            "Address, LNURL or BOLT11 invoice instead of an on-chain address"
        )
        policy.require_supported(DestinationKind.LIGHTNING_ADDRESS)
    finally:
        await lnbits.aclose()
        await btcpay.aclose()


# -- LNbits reads the time from its clock ---------------------------------------------------


@pytest.fixture
async def wallet() -> AsyncIterator[tuple[LNbitsEmulator, RunningServer]]:
    emulator = LNbitsEmulator(invoice_key=KEY, admin_key=KEY[::-1])
    server = await start_server(lnbits_app(emulator))
    yield emulator, server
    await server.stop()
    await emulator.aclose()


ORDER = InvoiceOrder(
    reference="inv_clock",
    amount_sats=1_000,
    description="clock",
    expiration_minutes=10,
)


@pytest.mark.integration  # a server on loopback
async def test_lnbits_judges_invoice_expiry_by_its_clock(
    wallet: tuple[LNbitsEmulator, RunningServer],
) -> None:
    _, server = wallet
    now = datetime.now(UTC)
    on_time = LNbitsProvider(base_url=server.url, invoice_key=KEY, clock=FrozenClock(now))
    later = FrozenClock(now + timedelta(hours=1))
    late = LNbitsProvider(base_url=server.url, invoice_key=KEY, clock=later)
    try:
        created = await on_time.create_invoice(ORDER)
        assert (await on_time.fetch_invoice(created.provider_invoice_id)).state is (
            InvoiceState.NEW
        )
        # An hour on, by the clock it was given, the ten-minute invoice has expired.
        assert (await late.fetch_invoice(created.provider_invoice_id)).state is (
            InvoiceState.EXPIRED
        )
        with pytest.raises(ProviderError, match="already expired"):
            await late.create_invoice(ORDER)
    finally:
        await on_time.aclose()
        await late.aclose()


@pytest.mark.integration  # a server on loopback
async def test_lnbits_payouts_call_an_unknown_payment_failed_only_once_expired_by_the_clock(
    wallet: tuple[LNbitsEmulator, RunningServer],
) -> None:
    emulator, server = wallet
    order = _lnbits_order()  # ten minutes; LNbits has never heard of it
    now = datetime.now(UTC)
    results = []
    for moment in (now, now + timedelta(minutes=21)):
        provider = LNbitsPayouts(
            base_url=server.url, admin_key=emulator.admin_key, clock=FrozenClock(moment)
        )
        try:
            results.append(await provider.check(order))
        finally:
            await provider.aclose()
    assert [(r.state, r.reason) for r in results] == [
        (SendState.UNKNOWN, "LNbits has no record of the payment yet"),
        (SendState.FAILED, "never sent, and the invoice has expired"),
    ]


async def test_a_burst_waits_for_a_slot_and_never_overfills_the_pool() -> None:
    """More concurrent calls than ``POOL_SIZE`` are all answered, with at most that many in
    flight at once (the rest wait on the adapter's semaphore, not inside httpx's pool)."""
    from satshare.providers.http import POOL_SIZE

    inside = {"now": 0, "most": 0}

    async def slow(request: Request) -> Response:
        inside["now"] += 1
        inside["most"] = max(inside["most"], inside["now"])
        await asyncio.sleep(0.05)
        inside["now"] -= 1
        return Response('{"id": "x"}', media_type="application/json")

    server = await start_server(Starlette(routes=[Route("/{path:path}", slow)]))
    adapter = BTCPayProvider(
        base_url=server.url, api_key=KEY, store_id="S1", webhook_secret=KEY, timeout_seconds=30
    )
    try:
        answers = await asyncio.gather(
            *(adapter._request("GET", f"/call/{n}") for n in range(POOL_SIZE * 3))
        )
    finally:
        await adapter.aclose()
        await server.stop()
    assert [a.status_code for a in answers] == [200] * (POOL_SIZE * 3)
    assert inside["most"] == POOL_SIZE
