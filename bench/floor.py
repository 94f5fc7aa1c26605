"""Bare pure-ASGI pass-throughs: the floor a gateway on the same upstream client cannot beat.

Each reads the request body, POSTs it to the upstream and streams the answer back, with nothing
else: no parsing, no auth, no context. One per upstream client, so the client can be chosen on
figures: raw aiohttp, httpx over ``httpx_aiohttp.AiohttpTransport``, httpx2 and stock httpx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from starlette.types import Receive, Scope, Send

__all__ = ["CLIENTS", "FloorApp"]

POOL = 1000


class _Upstream(Protocol):
    async def start(self) -> None: ...

    def stream(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        """An async context manager yielding (status, content type, async iterator of bytes)."""
        ...

    async def aclose(self) -> None: ...


class _Aiohttp:
    async def start(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL), trust_env=False)

    def stream(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        session = self._session

        class _Stream:
            async def __aenter__(self) -> tuple[int, str, AsyncIterator[bytes]]:
                self.response = await session.post(url, data=body, headers=headers)
                return (
                    self.response.status,
                    self.response.headers.get("content-type", ""),
                    self.response.content.iter_any(),
                )

            async def __aexit__(self, *exc: object) -> None:
                self.response.release()

        return _Stream()

    async def aclose(self) -> None:
        await self._session.close()


class _Httpx:
    """Stock httpx, or httpx with the aiohttp transport, or the httpx2 fork: the same API."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make

    async def start(self) -> None:
        self._client = self._make()

    def stream(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        client = self._client

        class _Stream:
            async def __aenter__(self) -> tuple[int, str, AsyncIterator[bytes]]:
                request = client.build_request("POST", url, content=body, headers=headers)
                self.response = await client.send(request, stream=True)
                return (
                    self.response.status_code,
                    self.response.headers.get("content-type", ""),
                    self.response.aiter_raw(),
                )

            async def __aexit__(self, *exc: object) -> None:
                await self.response.aclose()

        return _Stream()

    async def aclose(self) -> None:
        await self._client.aclose()


def _stock_httpx() -> Any:
    import httpx

    limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    return httpx.AsyncClient(limits=limits, timeout=600)


def _httpx_aiohttp() -> Any:
    import httpx
    import httpx_aiohttp

    limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    return httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport(limits=limits, trust_env=False), timeout=600)


def _httpx2() -> Any:
    import httpx2

    limits = httpx2.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    return httpx2.AsyncClient(limits=limits, timeout=600)


CLIENTS: dict[str, Callable[[], _Upstream]] = {
    "aiohttp": _Aiohttp,
    "httpx-aiohttp": lambda: _Httpx(_httpx_aiohttp),
    "httpx2": lambda: _Httpx(_httpx2),
    "httpx": lambda: _Httpx(_stock_httpx),
}


class FloorApp:
    def __init__(self, *, upstream: str, client: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.client = CLIENTS[client]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        url = self.upstream + scope["path"].removeprefix("/v1")
        async with self.client.stream(url, body, {"content-type": "application/json"}) as (status, kind, chunks):
            headers = [(b"content-type", kind.encode())]
            if kind.startswith("text/event-stream"):
                await send({"type": "http.response.start", "status": status, "headers": headers})
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
            # A whole answer goes out in one piece with its length, as any good proxy sends it.
            whole = b"".join([chunk async for chunk in chunks])
            headers.append((b"content-length", str(len(whole)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": whole})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        await self.client.start()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await self.client.aclose()
        await send({"type": "lifespan.shutdown.complete"})
