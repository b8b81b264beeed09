"""Requests to addresses that people type in (Lightning Addresses, LNURLs) go over https to
public internet addresses only, checked on every hop. Without this, anyone who may set a
payout destination could make the server probe its own network (SSRF): its database port,
a cloud metadata service, an admin panel on 10.x.

The host is resolved once, every address it resolves to must be public, and the connection
goes to one of those vetted addresses, so a DNS answer that changes between the check and the
connection (rebinding) cannot point it elsewhere. The Host header and TLS (SNI and certificate
checks) keep the original name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence

import httpx

from satshare.providers.http import tls_context
from satshare.security import is_public

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) → the addresses it resolves to, as text.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class Refused(httpx.TransportError):
    """The guard would not send this request. The message is for the owner's logs."""


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


class GuardedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        schemes: Collection[str] = ("https",),
        resolver: Resolver = system_resolver,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._schemes = frozenset(schemes)
        self._resolve = resolver
        # No keep-alive: pooled connections are keyed by address, so a later request for
        # another name on the same address would reuse a TLS session verified for the first.
        self._inner = inner or httpx.AsyncHTTPTransport(
            verify=tls_context(), limits=httpx.Limits(max_keepalive_connections=0), retries=0
        )

    async def vet(self, url: httpx.URL) -> list[IPAddress]:
        """The public addresses to connect to for this URL; raise Refused otherwise."""
        if url.scheme not in self._schemes:
            raise Refused(
                f"{url.scheme}:// is not allowed (only {', '.join(sorted(self._schemes))})"
            )
        host = url.raw_host.decode("ascii")
        if not host:
            raise Refused("the URL has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                found = await self._resolve(host, port)
            except (OSError, UnicodeError) as exc:
                raise httpx.ConnectError(f"{host} does not resolve: {exc}") from None
            # A scope ("fe80::1%eth0") only occurs on link-local addresses, refused below.
            addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in found))
        if not addresses:
            raise httpx.ConnectError(f"{host} resolves to no address")
        # Any private answer refuses the host: the connection might otherwise take it.
        private = [str(a) for a in addresses if not is_public(a)]
        if private:
            raise Refused(f"{host} is or resolves to a non-public address ({', '.join(private)})")
        return addresses

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        addresses = await self.vet(request.url)
        host = request.url.raw_host.decode("ascii")
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = host  # the certificate is checked against the name
        failure: httpx.TransportError | None = None
        for address in addresses:
            # A new request, so the caller's (and a redirect's) URL keeps the name.
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=str(address)),
                headers=request.headers,  # Host: the original name
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await self._inner.handle_async_request(pinned)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc  # nothing was sent yet: try the host's next address
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        await self._inner.aclose()
