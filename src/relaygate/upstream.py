"""The upstream HTTP client, kept in one module so that it can be swapped when a benchmark says so.

It is aiohttp underneath: on this project's 2-core benchmark machine a bare pass-through made ~7,500
req/s with aiohttp against ~2,000 with httpx over an aiohttp transport and ~700 with stock httpx
(encode/httpx#3215). Everything above this module sees only :class:`UpstreamRequest`,
:class:`UpstreamResponse` and relaygate's own errors: transport errors are mapped here, once, to
:class:`UpstreamTimeoutError` (504) and :class:`UpstreamConnectionError` (502), whose messages name the
provider and say what happened (refused, reset, cut off mid-answer, timed out); the upstream's address
goes to the log only.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from opentelemetry import trace

from relaygate.errors import UpstreamConnectionError, UpstreamError, UpstreamTimeoutError
from relaygate.settings import Timeouts

__all__ = ["AiohttpClient", "UpstreamClient", "UpstreamRequest", "UpstreamResponse"]

logger = logging.getLogger("relaygate.upstream")


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    content: bytes | None = None


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def iter_raw(self) -> AsyncGenerator[bytes, None]:
        """Body bytes as they arrive, in whatever pieces the network delivers."""
        ...

    async def aclose(self) -> None:
        """Release the response; before the body is read to its end this drops the connection."""
        ...


class UpstreamClient(Protocol):
    async def start(self) -> None:
        """Open the connection pool; :meth:`send` opens it too when nobody did."""
        ...

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send the request and return once the response headers have arrived."""
        ...

    async def aclose(self) -> None: ...


def _map_error(exc: BaseException, request: _Sent, *, answering: bool) -> UpstreamError:
    """A transport failure as the client's error: which upstream, and what happened to the call.

    ``answering``: the response headers had arrived (the body was being read). The address goes to the
    log only (scrubbed there like any log line): it is the operator's business, not every caller's.
    """
    what, timed_out = _what_happened(exc, request.timeouts, answering=answering)
    logger.warning(
        "upstream '%s' at %s: %s (%s: %s)", request.name, _origin(request.url), what, type(exc).__name__, exc
    )
    message = f"upstream '{request.name}' {what}."
    return UpstreamTimeoutError(message) if timed_out else UpstreamConnectionError(message)


def _what_happened(exc: BaseException, timeouts: Timeouts, *, answering: bool) -> tuple[str, bool]:
    """What a transport error says happened, and whether it was a timeout."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"timed out connecting: no connection within {timeouts.connect:g} s (timeouts.connect)", True
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return f"timed out: nothing arrived for {timeouts.read:g} s (timeouts.read)", True
    if isinstance(exc, TimeoutError):  # aiohttp's other timeout errors subclass TimeoutError too
        return "timed out", True
    if isinstance(exc, aiohttp.ClientPayloadError) or (answering and isinstance(exc, aiohttp.ServerDisconnectedError)):
        return "was cut off mid-answer: the connection closed before the body was complete", False
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "closed the connection without answering", False
    if _errno(exc) == errno.ECONNRESET or isinstance(exc, ConnectionResetError):
        return "reset the connection" + (" mid-answer" if answering else ""), False
    if isinstance(exc, aiohttp.ClientSSLError):
        return "could not be reached: the TLS handshake failed", False
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "could not be reached: its host name does not resolve", False
    if isinstance(exc, aiohttp.ClientConnectorError):
        if _errno(exc) == errno.ECONNREFUSED:
            return "refused the connection", False
        return "could not be reached", False
    if isinstance(exc, aiohttp.ClientResponseError):
        return "answered with a malformed HTTP response", False
    return f"failed ({type(exc).__name__})", False


def _errno(exc: BaseException) -> int | None:
    for error in (exc, getattr(exc, "os_error", None), exc.__cause__, exc.__context__):
        number = getattr(error, "errno", None)
        if isinstance(number, int):
            return number
    return None


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rpartition('@')[2]}"


@dataclass(frozen=True, slots=True)
class _Sent:
    """What an error needs to say of the request it happened to."""

    name: str
    url: str
    timeouts: Timeouts


class _AiohttpResponse:
    __slots__ = ("_response", "_sent", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, sent: _Sent) -> None:
        self._response = response
        self._sent = sent
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_error(exc, self._sent, answering=True) from exc

    async def iter_raw(self) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_error(exc, self._sent, answering=True) from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            # Unread body (an abandoned stream): closing the connection is what stops the upstream.
            self._response.close()


class AiohttpClient:
    """One pooled client per provider; the session is opened on first use or by :meth:`start`."""

    def __init__(
        self, *, timeouts: Timeouts | None = None, max_connections: int = 1000, name: str = "upstream"
    ) -> None:
        """``name`` is the provider's: errors say which upstream failed by it."""
        self.name = name
        self._timeouts = timeouts or Timeouts()
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._timeouts.connect, sock_read=self._timeouts.read
                ),
                # Redirects of a POST to a model API are never meant; proxies from the environment
                # are not picked up behind the configuration's back.
                trust_env=False,
            )

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if self._session is None:
            await self.start()
        assert self._session is not None
        headers = request.headers
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            # Only W3C trace context leaves for the provider (never the caller's baggage: thread, user and
            # key are no provider's business), formatted as TraceContextTextMapPropagator would, without
            # its context look-ups and setter calls.
            headers = {
                **headers,
                "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}",
            }
            if context.trace_state:
                headers["tracestate"] = context.trace_state.to_header()
        sent = _Sent(self.name, request.url, self._timeouts)
        try:
            response = await self._session.request(
                request.method, request.url, headers=headers, data=request.content, allow_redirects=False
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_error(exc, sent, answering=False) from exc
        return _AiohttpResponse(response, sent)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            # Lets the transports finish closing before the loop may end (aiohttp docs, "graceful shutdown").
            await asyncio.sleep(0)
