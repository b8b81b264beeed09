"""An httpx transport whose connection pool costs less CPU per request (#15).

httpcore's pool asks every pooled connection, each time a request starts or ends, whether
it has expired; for an idle connection that means "is the socket readable?" (a server that
closed it). Through anyio each question builds the stream's whole table of attributes (a
dict of lambdas) before polling the socket: in the bot's ``/start`` storm that was a tenth
of the bot's CPU. The streams here keep their socket and poll it directly; everything else
(TLS, timeouts, errors, the pool's rules) is httpx's and httpcore's own. No kept library
offers this: httpx does not let a caller choose httpcore's network backend, so the
transport swaps its pool for one built with the same settings and this backend.
"""

from __future__ import annotations

import functools
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context every client of SatShare's shares (httpx's default: certifi's CA
    bundle, or SSL_CERT_FILE / SSL_CERT_DIR). httpx otherwise loads the bundle again for
    each client, about 1.3 MiB of resident memory and 20 ms each (#15)."""
    return httpx.create_ssl_context()


def _poller(sock: socket.socket | None) -> select.poll | None:
    """A poll object watching ``sock`` for reads, made once per stream: the pool asks each
    idle connection again at every request (42 to 59 times per bot update in the /start
    storm), and making and registering a poll object each time was a third of the cost."""
    if sock is None or sock.fileno() < 0:
        return None
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return poller


def _readable(sock: socket.socket | None, poller: select.poll | None) -> bool:
    """True when a read would not block: data, or the peer closed (b""); a socket already
    closed counts as readable, so the pool drops the connection."""
    if poller is None or sock is None or sock.fileno() < 0:
        return True
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's anyio stream, with the raw socket looked up once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")
        self._poller = _poller(self._socket)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._socket, self._poller)
        if info == "socket":
            return self._socket
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, handing out ``_Stream``s."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def transport(
    *, max_connections: int, keepalive: int | None = None, keepalive_expiry: float = 5.0
) -> httpx.AsyncHTTPTransport:
    """An HTTP/1.1 transport over ``tls_context()`` keeping at most ``max_connections``
    (``keepalive`` of them idle; all by default). A client given it ignores its own
    ``limits``: they are set here."""
    kept = max_connections if keepalive is None else keepalive
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=kept,
        keepalive_expiry=keepalive_expiry,
    )
    made = httpx.AsyncHTTPTransport(verify=tls_context(), limits=limits)
    # httpx builds its pool with the default backend; this one, with the same settings,
    # polls the sockets directly (see the module docstring).
    made._pool = httpcore.AsyncConnectionPool(
        ssl_context=tls_context(),
        max_connections=max_connections,
        max_keepalive_connections=kept,
        keepalive_expiry=keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=_Backend(),
    )
    return made
