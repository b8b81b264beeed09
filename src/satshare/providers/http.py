"""What the HTTP adapters (BTCPay, LNbits, BitPay, Esplora, the rate sources) share: a
pooled transport whose timeouts are always set, one request wrapper that turns "no answer"
into the adapter's own error, and strict JSON.

Only the transport is shared. What a status code means, and whether a failed call may still
have had its effect, stays with each adapter: ``_no_answer`` gets the httpx error itself, so
a payout adapter can tell a connection never made from an answer that never came.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from satshare import __version__, httppool, jsonstrict
from satshare.config import redact_url
from satshare.httppool import tls_context as tls_context  # the adapters' one TLS context
from satshare.payments.ports import ProviderError

#: Connecting takes at most this long, whatever the call's own timeout.
CONNECT_SECONDS = 5.0
#: Requests one adapter has in flight at once (and connections it keeps); beyond that they
#: wait, at most the call's pool timeout, for one (``httppool``). Not fewer: a slow
#: processor's answers must not leave a burst of re-fetches (64 webhooks, each fetching an
#: invoice and its payment methods) waiting until their pool timeout (502, sent again).
POOL_SIZE = 32
#: Sent with every call: some APIs (and the CDNs in front of rate sources) refuse a request
#: that names no client.
USER_AGENT = f"SatShare/{__version__}"


def timeout(seconds: float, connect_limit: float | None = CONNECT_SECONDS) -> httpx.Timeout:
    """``seconds`` for each step of a call; connecting at most ``connect_limit`` of them."""
    connect = seconds if connect_limit is None else min(connect_limit, seconds)
    return httpx.Timeout(seconds, connect=connect)


#: What went wrong, in words, for messages people read (never an exception's class name).
_FAILURES: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectTimeout, "connecting timed out"),
    (httpx.ConnectError, "could not connect"),
    (httpx.TimeoutException, "no answer in time"),
    (httpx.RemoteProtocolError, "the connection broke off mid-answer"),
    (httpx.TooManyRedirects, "too many redirects"),
    (httpx.UnsupportedProtocol, "the address is not an http(s) URL"),
    (httpx.NetworkError, "the connection failed"),
)


def describe(exc: httpx.HTTPError) -> str:
    """Why a call got no answer, in a few words."""
    for kind, words in _FAILURES:
        if isinstance(exc, kind):
            return words
    return "the request failed"


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; empty when it is not one (for reading optional fields)."""
    try:
        body = jsonstrict.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class HttpAdapter:
    """One HTTP API at ``base_url``. Subclasses name the service and, where their error type
    or words differ, override ``_no_answer`` and ``_not_json``."""

    #: How messages name the service ("BTCPay Server", "LNbits"...).
    service: ClassVar[str]
    #: The limit on connecting (``timeout``); None lets it take the whole timeout.
    connect_limit: ClassVar[float | None] = CONNECT_SECONDS

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        # A user and password in the URL (a service behind a proxy that asks for them) go
        # as Basic auth, as an httpx client sends them; an adapter's own Authorization
        # header (BTCPay's token) is kept over them. Requests go to the URL without them.
        url = httpx.URL(self.base_url)
        if url.username or url.password:
            pair = f"{url.username}:{url.password}".encode()
            basic = f"Basic {base64.b64encode(pair).decode('ascii')}"
            self._headers.setdefault("Authorization", basic)
        self._address = str(url.copy_with(userinfo=b""))
        self._timeout = timeout(timeout_seconds, self.connect_limit).as_dict()
        self._transport = httppool.transport(max_connections=POOL_SIZE)

    async def aclose(self) -> None:
        await self._transport.aclose()

    @property
    def shown_url(self) -> str:
        """``base_url`` without the user and password it may hold, for messages."""
        return redact_url(self.base_url)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """The answer, read whole, whatever its status; ``_no_answer`` is raised when none
        came.

        The request goes to the transport itself, not through an ``httpx.AsyncClient``: an
        API call here needs none of the client's layers (redirects, which it would not
        follow anyway, authentication flows, event hooks, a cookie jar), and in the
        settlement bench they were a third of a re-fetch's CPU (#15). Cookies a service sets
        are not kept or sent back: every adapter authenticates with its own header."""
        request = httpx.Request(
            method,
            f"{self._address}{path}",
            params=params,
            json=json,
            headers={**self._headers, **headers} if headers else self._headers,
            extensions={"timeout": self._timeout},
        )
        try:
            response = await self._transport.handle_async_request(request)
            response.request = request
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise self._no_answer(exc) from exc
        return response

    def _json(self, response: httpx.Response) -> Any:
        """The body as strict JSON (no NaN); ``_not_json`` is raised otherwise."""
        try:
            return jsonstrict.loads(response.content)
        except ValueError as exc:
            raise self._not_json(exc) from exc

    def _no_answer(self, exc: httpx.HTTPError) -> Exception:
        return ProviderError(f"{self.service} at {self.shown_url} did not answer ({describe(exc)})")

    def _not_json(self, exc: ValueError) -> Exception:
        return ProviderError(f"{self.service} sent a body that is not JSON: {exc}")


class NoAnswer(Exception):
    """A payout adapter's call that got no answer; ``str()`` says why in words.

    Whether money may have moved is the adapter's to decide: only ``never_connected`` means
    for certain that nothing was sent."""

    def __init__(self, cause: httpx.HTTPError) -> None:
        super().__init__(describe(cause))
        #: The connection was never made, so the request never left.
        self.never_connected = isinstance(cause, httpx.ConnectError)
