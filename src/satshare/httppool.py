"""An httpx transport whose connection pool costs less CPU per request (#15).

httpcore's pool, each time a request starts or ends, walks every connection it holds and
asks each whether it has expired; for an idle connection that means "is the socket
readable?" (a server that closed it). Through anyio each question builds the stream's whole
table of attributes (a dict of lambdas) before polling the socket: in the bot's ``/start``
storm that was a tenth of the bot's CPU, and the walk itself (quadratic in the pool's size)
a fifth of a settlement re-fetch's. Here the pool (``_Pool``) asks only the connection it
takes, and the streams keep their socket and poll it directly; the connections (connecting,
TLS, HTTP/1.1, timeouts, errors) are httpcore's own. No kept library offers this: httpx
does not let a caller choose httpcore's pool or network backend, so the transport swaps its
pool for this one.
"""

from __future__ import annotations

import asyncio
import functools
import select
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
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


class _Pool:
    """An HTTP/1.1 connection pool whose cost per request does not grow with its size.

    httpcore's pool, each time a request starts or ends, walks every connection it holds
    (asking each whether it expired, is idle, can take the request) and, for each, counts
    the idle ones again: quadratic in the pool's size. With the 32 connections a processor
    adapter keeps, that walk was a fifth of a re-fetch's CPU in the settlement bench. Here
    idle connections wait in a stack per origin: a request takes the most recently used one
    (only that one is asked whether it expired, and the longest idle one when a response
    ends, so none outstays its keep-alive by much), or opens a new one while fewer than
    ``max_connections`` are in use; beyond that it waits its pool timeout for a slot. The
    connections themselves (connecting, TLS, HTTP/1.1, timeouts, errors) are httpcore's.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        max_connections: int,
        max_keepalive: int,
        keepalive_expiry: float,
        network_backend: httpcore.AsyncNetworkBackend,
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._max_keepalive = max_keepalive
        self._backend = network_backend
        self._slots = asyncio.Semaphore(max_connections)
        #: Idle connections by origin, the most recently used last.
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}
        self._idle_count = 0
        self._open: set[httpcore.AsyncHTTPConnection] = set()
        self._closed = False

    @property
    def connections(self) -> list[httpcore.AsyncHTTPConnection]:
        """Every connection open now, idle or in use."""
        return list(self._open)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        scheme = request.url.scheme
        if scheme not in (b"http", b"https"):
            shown = scheme.decode() or "(none)"
            raise httpcore.UnsupportedProtocol(f"Request URL has an unsupported protocol {shown}")
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        pool_timeout = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise httpcore.PoolTimeout("no connection free in time") from None
        try:
            while True:
                connection = await self._idle_connection(key)
                if connection is None:
                    connection = httpcore.AsyncHTTPConnection(
                        origin=origin,
                        ssl_context=self._ssl_context,
                        keepalive_expiry=self._keepalive_expiry,
                        http1=True,
                        http2=False,
                        network_backend=self._backend,
                    )
                    self._open.add(connection)
                try:
                    response = await connection.handle_async_request(request)
                except httpcore.ConnectionNotAvailable:
                    # Taken while it stopped being reusable; nothing was sent on it.
                    await self._close(connection)
                    continue
                except BaseException:
                    await self._close(connection)
                    raise
                break
        except BaseException:
            self._slots.release()
            raise
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_Released(response.stream, self, connection, key),
            extensions=response.extensions,
        )

    async def _idle_connection(
        self, key: tuple[bytes, bytes, int]
    ) -> httpcore.AsyncHTTPConnection | None:
        """The most recently used idle connection to this origin still fit for a request;
        the ones found expired on the way are closed."""
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.is_available() and not connection.has_expired():
                return connection
            await self._close(connection)
        return None

    async def _release(
        self, connection: httpcore.AsyncHTTPConnection, key: tuple[bytes, bytes, int]
    ) -> None:
        """A response was closed: its connection is kept idle if it can be reused."""
        self._slots.release()
        idle = self._idle.setdefault(key, [])
        # The longest idle connection is asked too, so none outstays its keep-alive by much
        # while newer ones serve the requests.
        if idle and idle[0].has_expired():
            self._idle_count -= 1
            await self._close(idle.pop(0))
        if self._closed or not connection.is_idle() or self._idle_count >= self._max_keepalive:
            await self._close(connection)
            return
        idle.append(connection)
        self._idle_count += 1

    async def _close(self, connection: httpcore.AsyncHTTPConnection) -> None:
        self._open.discard(connection)
        with anyio.CancelScope(shield=True):
            await connection.aclose()

    async def aclose(self) -> None:
        """Close the idle connections, and each one in use when its answer is closed. A
        request made after this still gets a connection (as with httpcore's pool), but it is
        not kept."""
        self._closed = True
        idle = [connection for stack in self._idle.values() for connection in stack]
        self._idle.clear()
        self._idle_count = 0
        for connection in idle:
            await self._close(connection)

    async def __aenter__(self) -> _Pool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class _Released:
    """A response's body: closing it hands its connection back to the pool (once)."""

    def __init__(
        self,
        stream: Any,
        pool: _Pool,
        connection: httpcore.AsyncHTTPConnection,
        key: tuple[bytes, bytes, int],
    ) -> None:
        self._stream = stream
        self._pool = pool
        self._connection = connection
        self._key = key
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
        finally:
            await self._pool._release(self._connection, self._key)


def transport(
    *, max_connections: int, keepalive: int | None = None, keepalive_expiry: float = 5.0
) -> httpx.AsyncHTTPTransport:
    """An HTTP/1.1 transport over ``tls_context()`` keeping at most ``max_connections``
    (``keepalive`` of them idle; all by default); beyond that, requests wait their pool
    timeout for one. A client given it ignores its own ``limits``: they are set here."""
    kept = max_connections if keepalive is None else keepalive
    made = httpx.AsyncHTTPTransport(verify=tls_context())
    # httpx builds its pool itself; this one has the same rules at a constant cost per
    # request, on streams that poll their sockets directly (see the docstrings above).
    made._pool = _Pool(  # type: ignore[assignment]
        ssl_context=tls_context(),
        max_connections=max_connections,
        max_keepalive=kept,
        keepalive_expiry=keepalive_expiry,
        network_backend=_Backend(),
    )
    return made
