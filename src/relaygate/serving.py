"""What ``relaygate serve`` adds to uvicorn so that slow and idle clients cannot hold the server.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) but times nothing else: a client that
connects and sends nothing, trickles a request's head a byte at a time, or trickles its body, keeps its
connection (and a file descriptor) for as long as it likes. Here:

- :class:`GuardedProtocol` (uvicorn's httptools protocol) gives each request ``server.header_timeout`` seconds
  for its line and headers, counted from the connection or from the request's first byte: then a 408 (when
  part of the head came) and the connection is closed; and ``server.body_timeout`` (and a second's grace) for
  the whole request, which also ends a body nobody reads. Beyond ``server.max_connections`` open
  connections, a new one is closed at once.
- :class:`BodyTimeout` (ASGI) answers ``408 request_timeout`` in the OpenAI shape when a body the gateway
  reads is not all there after ``server.body_timeout`` seconds, and closes the connection; the gateway sees
  a client that left.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from relaygate.errors import RequestTimeoutError, send_error
from relaygate.settings.service import ServerSettings

__all__ = ["BodyTimeout", "GuardedProtocol", "ServeConfig", "connection_cap", "run"]

TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
# The protocol waits this much longer than the ASGI layer, which answers a body it is reading in JSON first.
BODY_GRACE = 1.0


class ServeConfig(uvicorn.Config):
    """uvicorn's config with the limits :class:`GuardedProtocol` reads (pickled to each worker with it)."""

    def __init__(self, app: Any, *, limits: ServerSettings, **options: Any) -> None:
        super().__init__(
            app, http=GuardedProtocol, timeout_keep_alive=max(1, round(limits.keep_alive_timeout)), **options
        )
        self.header_timeout = limits.header_timeout
        self.body_timeout = limits.body_timeout
        self.max_connections = connection_cap(limits.max_connections)


def connection_cap(configured: int) -> int:
    """``configured``, or three quarters of the open-file limit when that is lower."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return configured
    return max(1, min(configured, soft * 3 // 4))


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's head and whole message, and a cap on
    open connections (see the module's docstring)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout: float = getattr(config, "header_timeout", 10.0)
        self.body_timeout: float = getattr(config, "body_timeout", 60.0)
        self.max_connections: int = getattr(config, "max_connections", 1000)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._refused = True
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.header_timeout, head_started=False)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout, head_started=True)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout + BODY_GRACE, head_started=None)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float, *, head_started: bool | None) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, head_started)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, head_started: bool | None) -> None:
        """The head (``head_started`` True: part of it came; False: nothing came) or the whole request
        (``None``) is late: the connection is closed, with a 408 for a head that was started."""
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        if head_started:
            self.transport.write(TIMEOUT_RESPONSE)
        elif head_started is None and self.cycle is not None and not self.cycle.response_complete:
            # The app is still at it (BodyTimeout answers a body it reads): it learns the client is gone.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


class BodyTimeout:
    """A ``408 request_timeout`` when a request's body is not all there ``seconds`` after the request began.

    The app then sees ``http.disconnect`` (the gateway records a client that left) and the answer says
    ``connection: close``. Per-request state lives in the call, not on the instance."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.seconds
        body_done = timed_out = started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if timed_out:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()
            with anyio.CancelScope(deadline=deadline):  # move_on_after, without asking the time again
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    body_done = True
                return message
            timed_out = True
            return {"type": "http.disconnect"}

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if timed_out and not started:
                return  # the 408 goes instead, below
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, timed_receive, tracked_send)
        if timed_out and not started:
            error = RequestTimeoutError(f"The request's body did not arrive within {self.seconds:g} seconds.")
            await send_error(send, error, [(b"connection", b"close")])


def run(app: Any, *, limits: ServerSettings, workers: int, **options: Any) -> int:
    """uvicorn.run, with :class:`ServeConfig` (``app`` is an import string when ``workers`` > 1)."""
    from uvicorn.supervisors import Multiprocess

    config = ServeConfig(app, limits=limits, workers=workers, **options)
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
            return 0
        server.run()
    except KeyboardInterrupt:  # pragma: no cover
        return 0
    return 0 if server.started else 3
