"""No SSRF through payout destinations (issue #8, item 5): outside the sandbox, Lightning
Address and LNURL lookups go over https to public addresses only, on every hop and for the
callback too, capped in size and time, and people are told only "could not reach that
Lightning Address".

Test network rule: nothing here may leave 127.0.0.0/8. The guard is given a resolver that
knows a few made-up names and an "internet" transport that carries one made-up public address
(PUBLIC_IP:443) to a TLS server on loopback, records every connection it is asked for, and
refuses all others. So a private address is proven refused *before* any connection: the
internet never sees it.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from satshare.payouts.destinations import bech32_encode
from satshare.payouts.ports import LnurlUnreachable, PayParams
from satshare.providers.lnurl import MAX_BODY_BYTES, UNREACHABLE, LnurlClient
from satshare.providers.netguard import GuardedTransport
from satshare.security import is_public
from satshare.sim.lightning import LightningNetwork
from satshare.sim.lnurl import LnurlEmulator, lightning_address_routes
from tests.conftest import Stack
from tests.helpers import assert_problem
from tests.payoutkit import affiliate
from tests.servers import RunningServer, free_port

#: Stands for pay.example.com on the test internet; global, so the guard lets it through.
PUBLIC_IP = "203.0.114.7"
NAMES = {
    "pay.example.com": [PUBLIC_IP],
    "other.example.com": [PUBLIC_IP],  # the same server; its certificate is not for this name
    "intranet.example.com": ["10.0.0.5"],
    "mixed.example.com": [PUBLIC_IP, "127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
}
ADDRESS_REFUSED = (
    "could not reach that Lightning Address, so it cannot receive payments; check it for typos "
    "or try again later"
)
LNURL_REFUSED = ADDRESS_REFUSED.replace("Lightning Address", "LNURL")


def lnurl(url: str) -> str:
    return bech32_encode("lnurl", url.encode())


# -- a certificate authority and a certificate for pay.example.com (openssl CLI) -------------


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    ca_key, ca, key, request, cert = (
        folder / name for name in ("ca.key", "ca.pem", "key.pem", "req.csr", "cert.pem")
    )
    extensions = folder / "leaf.ext"
    extensions.write_text(
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:pay.example.com\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    commands = [
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout {ca_key} -out {ca}",
        "req -newkey rsa:2048 -nodes -subj /CN=pay.example.com -keyout {key} -out {request}",
        "x509 -req -in {request} -CA {ca} -CAkey {ca_key} -CAcreateserial -days 2"
        " -extfile {extensions} -out {cert}",
    ]
    paths = {
        "ca_key": ca_key,
        "ca": ca,
        "key": key,
        "request": request,
        "cert": cert,
        "extensions": extensions,
    }
    for command in commands:
        # Split before filling in, so a path with a space stays one argument.
        arguments = [part.format(**paths) for part in command.split()]
        subprocess.run([openssl, *arguments], check=True, capture_output=True)  # noqa: S603
    return Certificates(ca=ca, cert=cert, key=key)


# -- the public Lightning Address service, over TLS on loopback ------------------------------


@dataclass
class Service:
    emulator: LnurlEmulator
    server: RunningServer
    hosts_seen: list[str] = field(default_factory=list)


def service_app(emulator: LnurlEmulator, hosts_seen: list[str]) -> ASGIApp:
    """The emulator's alice, and names that misbehave in one way each."""
    pay_alice, callback = lightning_address_routes(emulator)

    def pay_request(callback: str) -> JSONResponse:
        return JSONResponse(
            {
                "tag": "payRequest",
                "callback": callback,
                "minSendable": 1_000,
                "maxSendable": 10**9,
                "metadata": emulator.accounts["alice"].metadata,
            }
        )

    async def huge_chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    async def trickle() -> AsyncIterator[bytes]:
        while True:  # a byte now and then: never a read timeout, never an answer
            yield b" "
            await asyncio.sleep(0.02)

    async def lightning_address(request: Request) -> Response:
        name = request.path_params["name"]
        redirects = {
            "moved": "https://pay.example.com/.well-known/lnurlp/alice",
            "to-intranet": "https://intranet.example.com/.well-known/lnurlp/alice",
            "to-metadata": "https://169.254.169.254/latest/meta-data/",
            "to-loopback": "https://127.0.0.1:5432/",
            "to-plain-http": "http://pay.example.com/.well-known/lnurlp/alice",
        }
        callbacks = {
            "private-callback": "https://10.0.0.1/lnurlp/alice/callback",
            "loopback-callback": "https://[::1]/lnurlp/alice/callback",
            "http-callback": "http://pay.example.com/lnurlp/alice/callback",
        }
        if name in redirects:
            return RedirectResponse(redirects[name], 302)
        if name in callbacks:
            return pay_request(callbacks[name])
        if name == "huge":
            return JSONResponse({"tag": "payRequest", "padding": "x" * MAX_BODY_BYTES})
        if name == "huge-chunked":
            return StreamingResponse(huge_chunks(), media_type="application/json")
        if name == "trickle":
            return StreamingResponse(trickle(), media_type="application/json")
        if name == "gzip":
            body = gzip.compress(json.dumps({"tag": "payRequest"}).encode())
            headers = {"content-encoding": "gzip"}
            return Response(body, media_type="application/json", headers=headers)
        response: Response = await pay_alice.endpoint(request)
        return response

    app = Starlette(
        routes=[Route("/.well-known/lnurlp/{name}", lightning_address, methods=["GET"]), callback]
    )

    async def record_host(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hosts_seen.append(dict(scope["headers"]).get(b"host", b"").decode())
        await app(scope, receive, send)

    return record_host


async def start_tls_server(app: ASGIApp, certificates: Certificates) -> RunningServer:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(certificates.cert),
        ssl_keyfile=str(certificates.key),
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningServer(server=server, task=task, port=port)


@pytest.fixture
async def service(certificates: Certificates) -> AsyncIterator[Service]:
    emulator = LnurlEmulator(LightningNetwork(), "https://pay.example.com")
    emulator.add_account("alice")
    hosts_seen: list[str] = []
    server = await start_tls_server(service_app(emulator, hosts_seen), certificates)
    yield Service(emulator, server, hosts_seen)
    await server.stop()


# -- the test internet -----------------------------------------------------------------------


class LoopbackInternet(httpx.AsyncBaseTransport):
    """Carries PUBLIC_IP:443 to the service on loopback; records and refuses anything else."""

    def __init__(self, service: Service, certificates: Certificates) -> None:
        self.service_port = service.server.port
        self.connections: list[str] = []
        context = ssl.create_default_context(cafile=str(certificates.ca))
        self._transport = httpx.AsyncHTTPTransport(
            verify=context, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        self.connections.append(f"{url.host}:{url.port or 443}")
        if (url.host, url.port) != (PUBLIC_IP, None):
            raise httpx.ConnectError(f"{url.host} is not on the test internet")
        routed = httpx.Request(
            request.method,
            url.copy_with(host="127.0.0.1", port=self.service_port),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,  # the TLS name the guard chose
        )
        return await self._transport.handle_async_request(routed)

    async def aclose(self) -> None:
        await self._transport.aclose()


class Resolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return NAMES[host]


@dataclass
class Net:
    client: LnurlClient
    internet: LoopbackInternet
    resolver: Resolver


@pytest.fixture
async def net(service: Service, certificates: Certificates) -> AsyncIterator[Net]:
    internet, resolver = LoopbackInternet(service, certificates), Resolver()
    client = LnurlClient(
        timeout_seconds=5, guard=GuardedTransport(resolver=resolver, inner=internet)
    )
    yield Net(client, internet, resolver)
    await client.aclose()


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="satshare.providers.lnurl")


async def refused(net: Net, url: str) -> LnurlUnreachable:
    with pytest.raises(LnurlUnreachable) as caught:
        await net.client.params(url)
    return caught.value


# -- tests -----------------------------------------------------------------------------------
# The tests that reach the TLS service on loopback are marked integration (out of
# `make test-fast`); the guard's own rules are checked without it.


@pytest.mark.integration
async def test_a_public_service_is_asked_by_name_with_its_certificate_checked(
    net: Net, service: Service
) -> None:
    params = await net.client.params("https://pay.example.com/.well-known/lnurlp/alice")
    assert params.callback == "https://pay.example.com/lnurlp/alice/callback"
    bolt = await net.client.invoice(params, 21_000)
    assert bolt.startswith("lnbcrt210n")
    # Connected to the vetted address; Host header and TLS name stayed pay.example.com.
    assert net.internet.connections == [f"{PUBLIC_IP}:443", f"{PUBLIC_IP}:443"]
    assert service.hosts_seen == ["pay.example.com", "pay.example.com"]
    # A redirect to another public https address is followed, and checked like the first hop.
    moved = await net.client.params("https://pay.example.com/.well-known/lnurlp/moved")
    assert moved == params


@pytest.mark.integration
async def test_the_certificate_must_be_for_the_name_asked(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    # other.example.com resolves to the same public server, whose certificate is not for it.
    error = await refused(net, "https://other.example.com/.well-known/lnurlp/alice")
    assert str(error) == UNREACHABLE
    assert net.internet.connections == [f"{PUBLIC_IP}:443"]
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


@pytest.mark.integration
@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:5432/.well-known/lnurlp/x",
        "https://localhost/.well-known/lnurlp/x",
        "https://[::1]/.well-known/lnurlp/x",
        "https://10.0.0.1/.well-known/lnurlp/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/.well-known/lnurlp/x",
        "https://[::ffff:a9fe:a9fe]/latest/meta-data/",  # 169.254.169.254, IPv4-mapped
        "https://[64:ff9b::a00:1]/.well-known/lnurlp/x",  # 10.0.0.1 through NAT64
        "https://[2002:a00:1::1]/.well-known/lnurlp/x",  # 10.0.0.1 through 6to4
        "https://[fe80::1]/.well-known/lnurlp/x",
        "https://100.64.0.1/.well-known/lnurlp/x",  # carrier-grade NAT
        "https://0.0.0.0/.well-known/lnurlp/x",
        "https://intranet.example.com/.well-known/lnurlp/x",  # a name for a private address
        "https://mixed.example.com/.well-known/lnurlp/x",  # one of its addresses is loopback
        "http://pay.example.com/.well-known/lnurlp/alice",  # public, but not https
        "http://127.0.0.1:5432/.well-known/lnurlp/x",
    ],
)
async def test_private_addresses_and_plain_http_are_refused_before_connecting(
    net: Net, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = await refused(net, url)
    assert str(error) == UNREACHABLE
    assert net.internet.connections == []
    (record,) = [r for r in caplog.records if r.name == "satshare.providers.lnurl"]
    # The owner's log says why; people are told nothing about the network.
    assert record.levelno == logging.WARNING and "refused" in record.getMessage()


@pytest.mark.integration
@pytest.mark.parametrize("name", ["to-intranet", "to-metadata", "to-loopback", "to-plain-http"])
async def test_a_redirect_is_checked_like_the_first_hop(
    net: Net, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = await refused(net, f"https://pay.example.com/.well-known/lnurlp/{name}")
    assert str(error) == UNREACHABLE
    assert net.internet.connections == [f"{PUBLIC_IP}:443"]  # the first hop only
    assert "refused" in caplog.text


@pytest.mark.integration
@pytest.mark.parametrize("name", ["private-callback", "loopback-callback", "http-callback"])
async def test_a_callback_to_a_private_or_plain_http_address_is_refused(
    net: Net, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = await refused(net, f"https://pay.example.com/.well-known/lnurlp/{name}")
    assert str(error) == UNREACHABLE
    assert net.internet.connections == [f"{PUBLIC_IP}:443"]  # the pay request only
    assert "refused" in caplog.text


@pytest.mark.integration
async def test_paying_to_a_private_callback_is_refused_before_connecting(net: Net) -> None:
    # Params saved while the callback was public; its name now points inside.
    params = PayParams(
        callback="https://intranet.example.com/lnurlp/alice/callback",
        min_sendable_msat=1_000,
        max_sendable_msat=10**9,
        metadata="[]",
    )
    with pytest.raises(LnurlUnreachable) as caught:
        await net.client.invoice(params, 21_000)
    assert str(caught.value) == UNREACHABLE
    assert net.internet.connections == []
    assert net.resolver.asked == ["intranet.example.com"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "logged"),
    [
        ("huge", "an answer of"),  # its Content-Length says so
        ("huge-chunked", f"larger than {MAX_BODY_BYTES} bytes"),  # read until past the cap
        ("gzip", "gzip-compressed"),  # would be decompressed past any cap
    ],
)
async def test_oversize_and_compressed_answers_are_not_read(
    net: Net, name: str, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = await refused(net, f"https://pay.example.com/.well-known/lnurlp/{name}")
    assert str(error) == UNREACHABLE
    assert logged in caplog.text


@pytest.mark.integration
async def test_a_service_that_never_finishes_is_cut_off(
    service: Service, certificates: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    internet = LoopbackInternet(service, certificates)
    client = LnurlClient(
        timeout_seconds=0.5, guard=GuardedTransport(resolver=Resolver(), inner=internet)
    )
    try:
        with pytest.raises(LnurlUnreachable) as caught:
            await client.params("https://pay.example.com/.well-known/lnurlp/trickle")
    finally:
        await client.aclose()
    assert str(caught.value) == UNREACHABLE
    assert "took longer than 0.5 s" in caplog.text


async def test_the_system_resolver_is_checked_too() -> None:
    # Real getaddrinfo, for names that resolve without a network: the hosts file and numbers.
    guard = GuardedTransport()
    try:
        for url in ("https://localhost/", "https://127.1/"):
            with pytest.raises(httpx.TransportError, match="non-public address"):
                await guard.vet(httpx.URL(url))
    finally:
        await guard.aclose()


def test_what_counts_as_public() -> None:
    assert is_public(ipaddress.ip_address("203.0.114.7"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    assert is_public(ipaddress.ip_address("64:ff9b::cb00:7207"))  # 203.0.114.7 through NAT64
    for private in ("192.168.1.1", "172.16.0.1", "198.18.0.1", "224.0.0.1", "::", "fc00::1"):
        assert not is_public(ipaddress.ip_address(private)), private


async def test_the_api_refuses_private_destinations_and_writes_nothing(
    stack: Stack, net: Net
) -> None:
    stack.container.payouts.lnurl = net.client
    alice = await affiliate(stack)
    url = f"/api/v1/affiliates/{alice}/destination"
    refused_as = {
        "x@127.0.0.1:5432": ADDRESS_REFUSED,
        "x@localhost": ADDRESS_REFUSED,
        "x@10.0.0.1": ADDRESS_REFUSED,
        "x@169.254.169.254": ADDRESS_REFUSED,
        "x@intranet.example.com": ADDRESS_REFUSED,
        "to-intranet@pay.example.com": ADDRESS_REFUSED,
        "private-callback@pay.example.com": ADDRESS_REFUSED,
        "huge@pay.example.com": ADDRESS_REFUSED,
        lnurl("https://[::1]/.well-known/lnurlp/x"): LNURL_REFUSED,
        lnurl("https://[::ffff:127.0.0.1]/.well-known/lnurlp/x"): LNURL_REFUSED,
        lnurl("http://127.0.0.1:5432/.well-known/lnurlp/x"): LNURL_REFUSED,
    }
    before = await stack.counts()
    for destination, detail in refused_as.items():
        problem = assert_problem(
            await stack.client.put(url, json={"destination": destination}), 422
        )
        assert problem["type"] == "/problems/invalid-destination", destination
        assert problem["detail"] == detail, destination
    # A bracketed address is not a Lightning Address at all: refused offline.
    problem = assert_problem(await stack.client.put(url, json={"destination": "x@[::1]"}), 422)
    assert "is not a Lightning Address" in problem["detail"]
    assert await stack.counts() == before
    assert (await stack.client.get(f"/api/v1/affiliates/{alice}")).json()["destination"] is None
    # Only pay.example.com was ever connected to, for the three that named it.
    assert set(net.internet.connections) == {f"{PUBLIC_IP}:443"}
    assert len(net.internet.connections) == 3
    # And a public one is saved.
    saved = await stack.client.put(url, json={"destination": "alice@pay.example.com"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["value"] == "alice@pay.example.com"


async def test_the_service_guards_lookups_unless_in_the_sandbox(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # The container's own client, as built for production settings. Only loopback targets
    # here: if the guard were missing, nothing would leave this machine.
    alice = await affiliate(stack)
    url = f"/api/v1/affiliates/{alice}/destination"
    for destination, detail in {
        "x@127.0.0.1:5432": ADDRESS_REFUSED,
        lnurl(f"https://127.0.0.1:{stack.server.port}/.well-known/lnurlp/x"): LNURL_REFUSED,
    }.items():
        problem = assert_problem(
            await stack.client.put(url, json={"destination": destination}), 422
        )
        assert problem["detail"] == detail
    refusals = [
        r
        for r in caplog.records
        if r.name == "satshare.providers.lnurl" and "refused" in r.getMessage()
    ]
    assert len(refusals) == 2
