"""The upstream HTTP client, kept in one module so that it can be swapped when a benchmark says so.

It is aiohttp underneath: on this project's 2-core benchmark machine a bare pass-through made ~7,500
req/s with aiohttp against ~2,000 with httpx over an aiohttp transport and ~700 with stock httpx
(encode/httpx#3215). Everything above this module sees only :class:`UpstreamRequest`,
:class:`UpstreamResponse` and relaygate's own errors: transport errors are mapped here, once, to
:class:`UpstreamTimeoutError` (504) and :class:`UpstreamConnectionError` (502).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from relaygate.errors import UpstreamConnectionError, UpstreamError, UpstreamTimeoutError
from relaygate.settings import Timeouts

__all__ = ["AiohttpClient", "UpstreamClient", "UpstreamRequest", "UpstreamResponse"]

# Only W3C trace context leaves for the provider: the global propagators usually include baggage,
# and nothing of a caller's baggage (thread, user, key) is any provider's business.
TRACE_CONTEXT = TraceContextTextMapPropagator()


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


def _map_error(exc: BaseException, url: str) -> UpstreamError:
    if isinstance(exc, TimeoutError):  # aiohttp's timeout errors subclass TimeoutError
        return UpstreamTimeoutError(f"The upstream at {_origin(url)} did not answer in time.")
    return UpstreamConnectionError(f"Could not reach the upstream at {_origin(url)}: {type(exc).__name__}.")


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


class _AiohttpResponse:
    __slots__ = ("_response", "_url", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, url: str) -> None:
        self._response = response
        self._url = url
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_error(exc, self._url) from exc

    async def iter_raw(self) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_error(exc, self._url) from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            # Unread body (an abandoned stream): closing the connection is what stops the upstream.
            self._response.close()


class AiohttpClient:
    """One pooled client per provider; the session is opened on first use or by :meth:`start`."""

    def __init__(self, *, timeouts: Timeouts | None = None, max_connections: int = 1000) -> None:
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
        if trace.get_current_span().get_span_context().is_valid:
            headers = dict(headers)
            TRACE_CONTEXT.inject(headers)
        try:
            response = await self._session.request(
                request.method, request.url, headers=headers, data=request.content, allow_redirects=False
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_error(exc, request.url) from exc
        return _AiohttpResponse(response, request.url)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            # Lets the transports finish closing before the loop may end (aiohttp docs, "graceful shutdown").
            await asyncio.sleep(0)
