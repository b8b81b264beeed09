"""``satshare.httppool``: httpx's transport with a pool that polls idle sockets directly.

Against a real HTTP/1.1 server on a socket, plain and over TLS: connections are kept and
reused, one the server closed while idle is noticed and replaced (the question the pool asks
on every request), and the transport really uses the cheaper streams (an httpx upgrade that
moved its pool would fail here, not silently fall back).
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
