"""Request ids: thread, run and label from headers, a trace id per request, all echoed back."""

from __future__ import annotations

import os
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate.context import get_context
from relaygate.errors import InvalidRequestError, send_error

__all__ = ["TracingMiddleware"]

MAX_ID_LENGTH = 256


class TracingMiddleware:
    """Outermost layer: gives every request its ids and answers with them.

    Reads ``X-Thread-Id``, ``X-Run-Id``, ``X-Label`` and ``X-Tags`` (``k=v&k2=v2``) into the
    :class:`~relaygate.context.RequestContext`, generates a run id when none is given and a trace id
    for every request, and adds ``X-Trace-Id``, ``X-Run-Id`` and (when given) ``X-Thread-Id`` to the
    response, error responses included. Ids longer than 256 characters are refused with a 400.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = get_context(scope)
        ctx.trace_id = os.urandom(16).hex()
        invalid: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-thread-id":
                ctx.thread_id = value.decode("latin-1")
            elif name == b"x-run-id":
                ctx.run_id = value.decode("latin-1")
            elif name == b"x-label":
                ctx.label = value.decode("latin-1")
            elif name == b"x-tags":
                ctx.tags = _tags(value.decode("latin-1"))
            else:
                continue
            if len(value) > MAX_ID_LENGTH or not value:
                invalid = name.decode()
        if invalid is not None:
            error = InvalidRequestError(
                f"Header {invalid} must be 1 to {MAX_ID_LENGTH} characters long.", param=invalid, code="invalid_header"
            )
            await send_error(send, error, [(b"x-trace-id", ctx.trace_id.encode())])
            return
        if ctx.run_id is None:
            ctx.run_id = str(uuid.uuid4())
        ids = [(b"x-trace-id", ctx.trace_id.encode()), (b"x-run-id", ctx.run_id.encode("latin-1"))]
        if ctx.thread_id is not None:
            ids.append((b"x-thread-id", ctx.thread_id.encode("latin-1")))

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *ids]
            await send(message)

        await self.app(scope, receive, send_with_ids)


def _tags(value: str) -> dict[str, str]:
    tags = {}
    for pair in value.split("&"):
        key, _, tag = pair.partition("=")
        if key:
            tags[key.strip()] = tag.strip()
    return tags
