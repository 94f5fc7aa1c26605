"""Request ids (thread, run, label from headers; a trace id per request, all echoed back) and the
request's OpenTelemetry span."""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate._asgi import route_path
from relaygate.context import get_context
from relaygate.errors import InvalidRequestError, Refuse, send_refusal
from relaygate.ids import new_uuid
from relaygate.routes import RouteTable, stack_routes
from relaygate.telemetry import Telemetry
from relaygate.telemetry.names import HTTP_ROUTE

__all__ = ["TracingMiddleware"]

EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

MAX_ID_LENGTH = 256


class TracingMiddleware:
    """Outermost layer: gives every request its ids and answers with them.

    Reads ``X-Thread-Id``, ``X-Run-Id``, ``X-Label`` and ``X-Tags`` (``k=v&k2=v2``) into the
    :class:`~relaygate.context.RequestContext`, generates a run id when none is given and a trace id
    for every request, and adds ``X-Trace-Id``, ``X-Run-Id`` and (when given) ``X-Thread-Id`` to the
    response, error responses included. Ids longer than 256 characters are refused with a 400.

    With ``telemetry`` it also opens the request's span (or annotates the host's server span when
    the host app is instrumented) and keeps it current while the request is served, so the proxy's
    GenAI spans are its children; ``X-Trace-Id`` is then the OpenTelemetry trace id.

    Spans are named after the route (``POST /v1/chat/completions``, ``GET /threads/{thread_id}/cost``),
    with the mount point or ``root_path`` before it: ``routes`` are those of the app it wraps unless given
    (see :func:`relaygate.routes.stack_routes`). A host's server span gets the route as ``http.route``,
    and is renamed after it when the host named it after the raw path or the mount point.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        telemetry: Telemetry | None = None,
        routes: RouteTable | None = None,
        refuse: Refuse = send_refusal,
    ) -> None:
        self.app = app
        self.telemetry = telemetry
        # How a refusal is sent: the gateway gives the dialects', which answer on their routes in their shape.
        self.refuse = refuse
        # Read, not served: named apart from the ``routes`` that stack_routes collects.
        self.templates = routes if routes is not None else RouteTable(stack_routes(app))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = get_context(scope)
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
            # The request is refused; an over-long value is not carried into the trace either.
            ctx.thread_id = ctx.run_id = ctx.label = None
            ctx.tags = {}
        if ctx.run_id is None:
            ctx.run_id = str(new_uuid())
        span = None
        owned = False
        if self.telemetry is not None:
            template = self.templates.template(route_path(scope))
            route = scope.get("root_path", "").rstrip("/") + template if template is not None else None
            span, owned = self.telemetry.start_request(scope, ctx, route)
            if not owned and route is not None:
                _route_host_span(span, scope, route)
            context = span.get_span_context()
            ctx.trace_id = format(context.trace_id, "032x") if context.is_valid else os.urandom(16).hex()
        else:
            ctx.trace_id = os.urandom(16).hex()
        if invalid is not None:
            # Refused once the caller is authenticated (AuthMiddleware), not before.
            ctx.refusal = ctx.refusal or InvalidRequestError(
                f"Header {invalid} must be 1 to {MAX_ID_LENGTH} characters long.", param=invalid, code="invalid_header"
            )
        ids = [(b"x-trace-id", ctx.trace_id.encode()), (b"x-run-id", ctx.run_id.encode("latin-1"))]
        if ctx.thread_id is not None:
            ids.append((b"x-thread-id", ctx.thread_id.encode("latin-1")))

        status = 0

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *ids]
                if span is not None and self.telemetry is not None:
                    self.telemetry.response_started(span, owned, ctx)
            await send(message)

        if self.telemetry is None or span is None:
            await self.app(scope, receive, send_with_ids)
            return
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, send_with_ids)
        except BaseException as exc:
            if owned and span.is_recording():
                # The exception's text and stack as the SDK would record them, without the request's secrets.
                secrets = ctx.secrets
                stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                span.record_exception(
                    exc,
                    attributes={
                        EXCEPTION_MESSAGE: secrets.scrub(str(exc)),
                        EXCEPTION_STACKTRACE: secrets.scrub(stack),
                    },
                )
            status = status or 500
            raise
        finally:
            otel_context.detach(token)
            self.telemetry.end_request(span, owned, ctx, status or 499)


def _route_host_span(span: Span, scope: Scope, route: str) -> None:
    """Give a host's server span the route, which only relaygate knows below its mount point (the host's
    router sees ``/llm/{path}``); rename it after the route unless the host chose a name of its own."""
    if not span.is_recording():
        return
    span.set_attribute(HTTP_ROUTE, route)
    if _named_by_path(getattr(span, "name", None), scope):
        span.update_name(f"{scope['method']} {route}")


def _named_by_path(name: str | None, scope: Mapping[str, Any]) -> bool:
    """Whether a host named its span after the request's path (the ASGI instrumentation's
    ``GET /llm/threads/abc/cost``) or the gateway's mount (a router's ``POST /llm/{path}``)."""
    if name is None:
        return False
    method = scope["method"]
    root = scope.get("root_path", "").rstrip("/")
    return name in (method, f"{method} {scope['path']}", f"{method} {root}", f"{method} {root}/{{path}}")


def _tags(value: str) -> dict[str, str]:
    tags = {}
    for pair in value.split("&"):
        key, _, tag = pair.partition("=")
        if key:
            tags[key.strip()] = tag.strip()
    return tags
