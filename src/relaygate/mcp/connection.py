"""One MCP session with one server, held open by a task of its own.

The SDK's transports and :class:`~mcp.ClientSession` are async context managers whose task groups must
be entered and left by one task, so each connection runs in its own task (:meth:`Connection.run`): it
opens the transport and the session, initializes it, says it is ready, and waits to be told to close.
Requests call tools on the session from their own tasks (the session is safe to share: each request has
its own response stream). When the transport fails, the task ends and the connection is dead; the pool
opens a new one on next use.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from relaygate.settings.mcp import McpTransport

if TYPE_CHECKING:
    # Imported when a session is opened (run), not with relaygate: the SDK takes a while to import.
    from mcp import ClientSession, types
    from mcp.shared.message import SessionMessage
    from mcp.shared.session import RequestResponder

    Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]
    Message = RequestResponder[types.ServerRequest, types.ClientResult] | types.ServerNotification | Exception

__all__ = ["Connection", "Endpoint"]

logger = logging.getLogger("relaygate.mcp")

T = TypeVar("T")

# How long an SSE or streamable-HTTP stream may stay silent; servers send keep-alive pings well within it.
READ_TIMEOUT = 300.0


class Endpoint:
    """Where a server is and how to reach it."""

    __slots__ = ("headers", "transport", "url")

    def __init__(self, url: str, transport: McpTransport, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.transport: McpTransport = transport
        self.headers = headers or {}


class Connection:
    """A session with one server; see the module docstring. Its tool list is kept here too."""

    def __init__(self, name: str, endpoint: Endpoint, *, connect_timeout: float) -> None:
        self.name = name
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.session: ClientSession | None = None
        self.error: BaseException | None = None
        self.tools: list[types.Tool] | None = None
        self.tools_at = 0.0
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        # Set once the session can answer no more: its transport ended or failed.
        self._dead = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.session is not None and not self._dead.is_set() and self._task is not None and not self._task.done()

    async def open(self) -> None:
        """Start the connection's task and wait until its session is initialized; raises what kept it from it."""
        self._task = task = asyncio.create_task(self.run(), name=f"relaygate-mcp-{self.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), self.connect_timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.wait([task], timeout=5)
            raise TimeoutError(f"no session within {self.connect_timeout:g} s (mcp.connect_timeout)") from None
        if self.session is None:
            raise self.error or ConnectionError("the session closed before it was ready")

    async def run(self) -> None:
        from mcp import ClientSession, types

        try:
            async with AsyncExitStack() as stack:
                # open() bounds this with the connect timeout (a cancel scope here could not be left while the
                # transport's task group it encloses is still open).
                read, write = await stack.enter_async_context(_transport(self.endpoint, self.connect_timeout))
                # The server's messages pass through _forward, which sees the transport end (an SSE stream the
                # server closed) and ends the connection with it; left, the session would wait for answers that
                # cannot come.
                incoming: MemoryObjectSendStream[SessionMessage | Exception]
                to_session: MemoryObjectReceiveStream[SessionMessage | Exception]
                incoming, to_session = anyio.create_memory_object_stream(0)
                await stack.enter_async_context(to_session)
                group = await stack.enter_async_context(anyio.create_task_group())
                group.start_soon(self._forward, read, incoming)
                stack.callback(group.cancel_scope.cancel)
                session = await stack.enter_async_context(
                    ClientSession(
                        to_session,
                        write,
                        message_handler=self._on_message,
                        client_info=types.Implementation(name="relaygate", version=_version()),
                    )
                )
                await session.initialize()
                self.session = session
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:  # the transport failed or the server refused: the connection is dead
            self.error = exc
            if self.session is not None:
                logger.info("the session with MCP server %r dropped: %s", self.name, describe(exc))
        finally:
            self.session = None
            self._dead.set()
            self._ready.set()

    async def request(self, send: Callable[[ClientSession], Awaitable[T]]) -> T:
        """``send(session)``'s answer; raises :class:`anyio.BrokenResourceError` when the connection dies first.

        A transport that fails tears its session down by cancellation, and the session's requests in flight
        would then wait for answers forever: this is what tells them.
        """
        session = self.session
        if session is None or not self.alive:
            raise anyio.ClosedResourceError()
        outcome: list[T] = []
        failure: list[Exception] = []

        async def call() -> None:
            try:
                outcome.append(await send(session))
            except Exception as exc:
                failure.append(exc)
            group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await self._dead.wait()
            group.cancel_scope.cancel()
        if failure:
            raise failure[0]
        if not outcome:
            raise anyio.BrokenResourceError()
        return outcome[0]

    async def _forward(
        self,
        read: MemoryObjectReceiveStream[SessionMessage | Exception],
        out: MemoryObjectSendStream[SessionMessage | Exception],
    ) -> None:
        try:
            async with read, out:
                async for message in read:
                    await out.send(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        # Not _stop: leaving the session now would cancel its receive loop before it tells the calls in flight
        # that the connection closed. The pool closes a dead connection when it replaces it.
        self._dead.set()

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        # The SDK's transports end their own tasks when the session's context is left; a server that does not
        # answer the session's DELETE is not waited for long.
        with anyio.move_on_after(5):
            await asyncio.shield(task)
        if not task.done():
            task.cancel()

    def forget_tools(self) -> None:
        self.tools_at = 0.0

    def tools_fresh(self, ttl: float) -> bool:
        return self.tools is not None and time.monotonic() - self.tools_at < ttl

    async def _on_message(self, message: Message) -> None:
        from mcp import types

        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ToolListChangedNotification
        ):
            self.forget_tools()
        elif isinstance(message, Exception):
            logger.debug("MCP server %r sent something unreadable: %s", self.name, message)


def _transport(endpoint: Endpoint, connect_timeout: float) -> AbstractAsyncContextManager[Any]:
    if endpoint.transport == "http":
        return _streamable_http(endpoint, connect_timeout)
    if endpoint.transport == "sse":
        from mcp.client.sse import sse_client

        return sse_client(
            endpoint.url, headers=endpoint.headers, timeout=connect_timeout, sse_read_timeout=READ_TIMEOUT
        )
    return _websocket(endpoint)


@asynccontextmanager
async def _streamable_http(endpoint: Endpoint, connect_timeout: float) -> AsyncIterator[Streams]:
    import httpx
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx.Timeout(connect_timeout, read=READ_TIMEOUT)
    async with httpx.AsyncClient(headers=endpoint.headers, timeout=timeout) as client:
        async with streamable_http_client(endpoint.url, http_client=client) as (read, write, _):
            yield read, write


@asynccontextmanager
async def _websocket(endpoint: Endpoint) -> AsyncIterator[Streams]:
    from mcp.client.websocket import websocket_client

    # The SDK's WebSocket client is deprecated (WebSocket is not one of MCP's standard transports), yet it is
    # the maintained one: servers that speak it are still reached with it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        opened = websocket_client(endpoint.url)
    async with opened as streams:
        yield streams


def describe(exc: BaseException) -> str:
    """A short account of a connection failure (the innermost error of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return str(exc) or "no answer in time"
    # Loaded already: the MCP SDK, which made the connection that failed, imports it.
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."


def _version() -> str:
    from relaygate import __version__

    return __version__
