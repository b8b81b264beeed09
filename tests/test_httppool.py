"""``satshare.httppool``: httpx's transport with a pool whose cost per request is constant,
on streams that poll idle sockets directly.

Against a real HTTP/1.1 server on a socket, plain and over TLS: connections are kept and
reused, never more than the limit; one the server closed while idle is noticed and replaced;
a request finding every connection in use waits its pool timeout, and a failed or cancelled
one gives its slot back; only ``keepalive`` idle connections are kept; the transport really
uses the cheaper streams (an httpx upgrade that moved its pool would fail here, not silently
fall back).
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from satshare import httppool


@dataclass
class Server:
    """Answers every request with its connection's number; closes a connection after
    ``close_after`` answers on it (0: never)."""

    close_after: int = 0
    #: Seconds to wait before each answer.
    delay: float = 0.0
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number, answered = self.connections, 0
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                if self.delay:
                    await asyncio.sleep(self.delay)
                body = str(number).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                answered += 1
                if self.close_after and answered >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def _stream_of(connection: Any) -> Any:
    """The network stream under one of httpcore's pooled connections (its internals)."""
    return connection._connection._network_stream


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, str]]:
    state = Server()
    listening = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    yield state, f"http://127.0.0.1:{port}"
    for writer in state.writers:
        writer.close()
    listening.close()
    await listening.wait_closed()


async def test_connections_are_kept_and_shared_up_to_the_limit(server: tuple[Server, str]) -> None:
    state, url = server
    transport = httppool.transport(max_connections=4)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        first = await client.get(url)
        again = [await client.get(url) for _ in range(5)]
        assert first.status_code == 200 and first.text == "1"
        assert [r.text for r in again] == ["1"] * 5  # one kept-alive connection
        together = await asyncio.gather(*(client.get(url) for _ in range(20)))
        assert all(r.status_code == 200 for r in together)
        assert state.connections <= 4  # never more than the limit
        streams = [_stream_of(c) for c in transport._pool.connections]
        assert streams and all(type(s).__name__ == "_Stream" for s in streams)
        assert len(streams) <= 4


async def test_a_request_waits_for_a_slot_at_most_its_pool_timeout(
    server: tuple[Server, str],
) -> None:
    _, url = server
    transport = httppool.transport(max_connections=1)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        async with client.stream("GET", url) as held:  # its connection stays in use
            assert held.status_code == 200
            with pytest.raises(httpx.PoolTimeout):
                await client.get(url, timeout=httpx.Timeout(5, pool=0.2))
            await held.aread()
        # Closing the held answer (read to its end) gave the slot and its connection back.
        assert (await client.get(url, timeout=httpx.Timeout(5, pool=0.2))).text == "1"


async def test_failed_and_cancelled_requests_give_their_slot_back(
    server: tuple[Server, str],
) -> None:
    state, url = server
    state.delay = 0.5
    transport = httppool.transport(max_connections=1)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url, timeout=httpx.Timeout(0.1, pool=1))
        waiting = asyncio.create_task(client.get(url))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        state.delay = 0.0
        # Both connections were dropped (an answer may still be on its way on them) and the
        # one slot is free again: the next request gets a third connection at once.
        answer = await client.get(url, timeout=httpx.Timeout(5, pool=0.5))
        assert answer.status_code == 200 and answer.text == "3"
        assert len(transport._pool.connections) == 1


async def test_only_keepalive_connections_stay_open_when_idle(server: tuple[Server, str]) -> None:
    state, url = server
    state.delay = 0.05  # so the requests below overlap and need a connection each
    transport = httppool.transport(max_connections=4, keepalive=1)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        answers = await asyncio.gather(*(client.get(url) for _ in range(4)))
        assert sorted(a.text for a in answers) == ["1", "2", "3", "4"]
        assert len(transport._pool.connections) == 1  # the other three were closed
        assert (await client.get(url)).text in {"1", "2", "3", "4"}  # the kept one, reused
        assert state.connections == 4
    assert transport._pool.connections == []  # closing the client closed the kept one


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    server: tuple[Server, str],
) -> None:
    state, url = server
    state.close_after = 1  # the server hangs up after each answer
    async with httpx.AsyncClient(transport=httppool.transport(max_connections=2)) as client:
        answers = []
        for _ in range(3):
            answers.append((await client.get(url)).text)
            await asyncio.sleep(0.05)  # the close reaches the idle socket: it turns readable
        assert answers == ["1", "2", "3"]  # each request on a new connection, none failed
        assert state.connections == 3


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    arguments = [
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        *("-keyout", str(key), "-out", str(cert)),
    ]
    subprocess.run([openssl, *arguments], check=True, capture_output=True)  # noqa: S603
    return cert, key


async def test_tls_connections_keep_their_socket_and_are_reused(
    certificate: tuple[Path, Path],
) -> None:
    """The streams after the TLS handshake (the Bot API and every processor are https) still
    answer the pool's question from the raw socket, and a kept connection is reused."""
    cert, key = certificate
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert, key)
    state = Server()
    listening = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=serving)
    port = listening.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context(cafile=str(cert))
    pool = httpcore.AsyncConnectionPool(
        ssl_context=trusting,
        max_connections=2,
        network_backend=httppool._Backend(),
    )
    try:
        async with pool:
            answers = [await pool.request("GET", f"https://127.0.0.1:{port}/") for _ in range(3)]
            assert [a.status for a in answers] == [200, 200, 200]
            assert [a.content for a in answers] == [b"1", b"1", b"1"]  # one kept connection
            stream = _stream_of(pool.connections[0])
            assert stream.get_extra_info("socket") is not None
            assert stream.get_extra_info("ssl_object") is not None  # really over TLS
            assert stream.get_extra_info("is_readable") is False  # idle, nothing sent to it
    finally:
        for writer in state.writers:
            writer.close()
        listening.close()
        await listening.wait_closed()
