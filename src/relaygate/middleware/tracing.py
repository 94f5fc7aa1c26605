"""Request ids (thread, run, label from headers; a trace id per request, all echoed back) and the
request's OpenTelemetry span."""

from __future__ import annotations

import os
import traceback
import uuid

from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate._asgi import route_path
from relaygate.context import get_context
from relaygate.errors import InvalidRequestError, send_error
from relaygate.telemetry import Telemetry

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
    """

    def __init__(self, app: ASGIApp, *, telemetry: Telemetry | None = None) -> None:
        self.app = app
        self.telemetry = telemetry

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
            ctx.run_id = str(uuid.uuid4())
        span = None
        owned = False
        if self.telemetry is not None:
            span, owned = self.telemetry.start_request(scope, ctx, _route_template(route_path(scope)))
            context = span.get_span_context()
            ctx.trace_id = format(context.trace_id, "032x") if context.is_valid else os.urandom(16).hex()
        else:
            ctx.trace_id = os.urandom(16).hex()
        if invalid is not None:
            error = InvalidRequestError(
                f"Header {invalid} must be 1 to {MAX_ID_LENGTH} characters long.", param=invalid, code="invalid_header"
            )
            await send_error(send, error, [(b"x-trace-id", ctx.trace_id.encode())])
            if self.telemetry is not None and span is not None:
                self.telemetry.end_request(span, owned, ctx, 400)
            return
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


# The routes the gateway answers, below an optional /{project_id} and /v1; anything else is a 404 whose
# path must not become a span name (a scanner's random URLs would each make a new one).
_FIXED_ROUTES = frozenset(
    {
        "chat/completions",
        "embeddings",
        "images/generations",
        "models",
        "health",
        "threads",
        "analytics",
        "analytics/summary",
        "usage/total",
        "usage/models",
        "pricing",
        "admin/models",
        # The inbound dialects' model calls (relaygate.dialects).
        "responses",
        "messages",
        "messages/count_tokens",
        "images",
    }
)


def _route_template(path: str) -> str | None:
    """The route with its variable parts named (/{project_id}/v1/threads/{thread_id}/cost), so span names
    stay few; ``None`` for a path that is no route."""
    segments = path.strip("/").split("/")
    head: list[str] = []
    if len(segments) > 1 and segments[0] != "v1" and segments[1] == "v1":
        head.append("{project_id}")
        segments = segments[1:]
    if segments[0] == "v1":
        head.append("v1")
        segments = segments[1:]
    rest = "/".join(segments)
    if rest in _FIXED_ROUTES:
        template = rest
    elif segments[0] == "models" and len(segments) > 1 and head[-1:] == ["v1"]:
        template = "models/{model}"
    elif segments[0] == "threads" and len(segments) > 2 and segments[-1] in ("messages", "cost"):
        template = f"threads/{{thread_id}}/{segments[-1]}"
    elif segments[0] == "responses" and len(segments) == 2 and head[-1:] == ["v1"]:
        template = "responses/{response_id}"
    elif segments[0] == "responses" and len(segments) == 3 and segments[2] == "input_items" and head[-1:] == ["v1"]:
        template = "responses/{response_id}/input_items"
    elif segments[0] == "projects" and len(segments) == 3 and segments[2] == "custom_prices":
        template = "projects/{project_id}/custom_prices"
    else:
        return None
    return "/" + "/".join([*head, template])


def _tags(value: str) -> dict[str, str]:
    tags = {}
    for pair in value.split("&"):
        key, _, tag = pair.partition("=")
        if key:
            tags[key.strip()] = tag.strip()
    return tags
