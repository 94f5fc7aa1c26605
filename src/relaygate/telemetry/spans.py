"""Spans and metrics of a request: the gateway's span and one GenAI CLIENT span per upstream attempt.

Only the OpenTelemetry API is used. With no SDK configured every span is a no-op and the cost is a
few calls per request; with one, spans go wherever the host's (or ``relaygate serve``'s) provider
sends them. Nothing secret is ever read into an attribute: no header is copied, only the ids relaygate
itself parsed (thread, run, label, project, key id) and, when asked for, message content.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from relaygate.telemetry import names
from relaygate.telemetry.attempt import AttemptSpan
from relaygate.telemetry.content import capped, input_messages
from relaygate.telemetry.histograms import HistogramLike, create_histograms, recorded_histograms
from relaygate.telemetry.names import INSTRUMENTATION

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from relaygate.context import RequestContext, Route
    from relaygate.recorder import Recorder

__all__ = ["AttemptSpan", "Telemetry"]

PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
PARAMETERS = {
    "temperature": names.REQUEST_TEMPERATURE,
    "top_p": names.REQUEST_TOP_P,
    "frequency_penalty": names.REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": names.REQUEST_PRESENCE_PENALTY,
    "seed": names.REQUEST_SEED,
}


class Telemetry:
    """Everything relaygate records about a call, for :class:`TracingMiddleware` and the proxy."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool = False,
        content_max_bytes: int = 65536,
        langdb_attributes: bool = False,
    ) -> None:
        from relaygate import __version__

        self.tracer = trace.get_tracer(INSTRUMENTATION, __version__, tracer_provider=tracer_provider)
        # Other parts record their own instruments on it (the limits' overbilled calls).
        self.meter = meter = metrics.get_meter(INSTRUMENTATION, __version__, meter_provider=meter_provider)
        self.token_usage: HistogramLike
        self.duration: HistogramLike
        self.time_to_first_chunk: HistogramLike
        self.token_usage, self.duration, self.time_to_first_chunk = create_histograms(meter)
        self.capture_content = capture_content
        self.content_max_bytes = content_max_bytes
        self.langdb_attributes = langdb_attributes

    def record_in(self, recorder: Recorder) -> None:
        """Have ``recorder``'s process aggregate and export the call's histograms (it exports metrics to the
        endpoint its config names): a record here only queues the measurement (see
        :mod:`relaygate.telemetry.histograms`). Other instruments stay on :attr:`meter`."""
        self.token_usage, self.duration, self.time_to_first_chunk = recorded_histograms(recorder.submit_metric)

    # --- the gateway's span -------------------------------------------------------------------------

    def start_request(self, scope: Mapping[str, Any], ctx: RequestContext, route: str | None) -> tuple[Span, bool]:
        """The span for the gateway's handling of a request, and whether relaygate owns (and ends) it.

        ``route`` is the matched route's template from the server's root (``/llm/v1/chat/completions``
        mounted at ``/llm``), ``None`` when the path is no route (the span is then named by the method
        alone, as the HTTP conventions ask).

        A host app with ASGI instrumentation has already made the server span: relaygate annotates
        that one. Otherwise it makes one, continuing the caller's trace from ``traceparent``.
        """
        current = trace.get_current_span()
        if current.is_recording():
            current.set_attributes(self._ids(ctx))
            return current, False
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in PROPAGATION_HEADERS
        }
        parent = propagate.extract(carrier) if carrier else None
        # The request's span carries what finds it (the ids); the call's span carries the rest, since
        # every attribute costs a few microseconds to record and to export.
        attributes: dict[str, Any] = {names.HTTP_METHOD: scope["method"], **self._ids(ctx)}
        name = scope["method"]
        if route is not None:
            attributes[names.HTTP_ROUTE] = route
            name = f"{name} {route}"
        span = self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        return span, True

    def response_started(self, span: Span, owned: bool, ctx: RequestContext) -> None:
        """Who called, once auth has said: a host's span may end with the response's last byte,
        before relaygate's middleware returns, so a span relaygate does not own is told now."""
        if not owned and span.is_recording():
            span.set_attributes(self._caller(ctx, who_only=True))

    def end_request(self, span: Span, owned: bool, ctx: RequestContext, status: int) -> None:
        if not owned or not span.is_recording():
            return
        attributes = self._caller(ctx, who_only=True)
        attributes[names.HTTP_STATUS] = status
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
            attributes[names.ERROR_TYPE] = ctx.error or str(status)
        span.set_attributes(attributes)
        span.end()

    def record_guards(self, ctx: RequestContext) -> None:
        """The request's guard results on its span (the current one): which ran, failed and errored as
        attributes, and one ``relaygate.guard`` event per guard run."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        results = ctx.guard_results
        attributes: dict[str, Any] = {names.GUARD_IDS: [result.id for result in results]}
        failed = [result.id for result in results if not result.passed and result.error is None]
        errored = [result.id for result in results if result.error is not None]
        if failed:
            attributes[names.GUARD_FAILED_IDS] = failed
        if errored:
            attributes[names.GUARD_ERROR_IDS] = errored
        span.set_attributes(attributes)
        for result in results:
            event: dict[str, Any] = {
                names.GUARD_ID: result.id,
                names.GUARD_TYPE: result.type,
                names.GUARD_STAGE: result.stage,
                names.GUARD_ACTION: result.action,
                names.GUARD_PASSED: result.passed,
                names.GUARD_DURATION: result.duration_s,
            }
            if result.reason is not None:
                event[names.GUARD_REASON] = result.reason
            if result.error is not None:
                event[names.GUARD_ERROR] = result.error
            if result.redactions:
                event[names.GUARD_REDACTIONS] = result.redactions
            if result.provider is not None:
                event[names.GUARD_PROVIDER] = result.provider
            if result.model is not None:
                event[names.GUARD_MODEL] = result.model
            if result.usage is not None:
                event[names.USAGE_INPUT_TOKENS] = result.usage.prompt_tokens
                event[names.USAGE_OUTPUT_TOKENS] = result.usage.completion_tokens
            span.add_event(names.GUARD_EVENT, event)

    # --- one tool call ---------------------------------------------------------------------------------

    def tool_span(self, ctx: RequestContext, server: str, tool: str, call_id: str) -> Span:
        """An ``execute_tool`` span for one MCP tool call of a tool loop, under the request's span; the caller
        ends it (:meth:`end_tool_span`)."""
        attributes: dict[str, Any] = {
            names.OPERATION: names.EXECUTE_TOOL,
            names.TOOL_NAME: tool,
            names.TOOL_CALL_ID: call_id,
            names.TOOL_TYPE: "extension",
            names.MCP_METHOD: "tools/call",
            names.MCP_SERVER: server,
            **self._ids(ctx),
            **self._caller(ctx, who_only=True),
        }
        return self.tracer.start_span(f"{names.EXECUTE_TOOL} {tool}", kind=SpanKind.INTERNAL, attributes=attributes)

    @staticmethod
    def end_tool_span(span: Span, error_type: str | None) -> None:
        if error_type is not None and span.is_recording():
            span.set_attribute(names.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.end()

    # --- one upstream attempt -----------------------------------------------------------------------

    def attempt(
        self,
        ctx: RequestContext,
        route: Route,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        stream: bool,
        number: int = 1,
    ) -> AttemptSpan:
        """A CLIENT span for one call to a provider. It is made current around the sending
        (:meth:`AttemptSpan.current`, so the upstream client sends its ``traceparent``) and ends either
        when the attempt fails (:meth:`AttemptSpan.fail`) or, for the attempt that answers, when the
        proxy records the request's end. ``number`` counts the request's attempts from 1."""
        operation = names.OPERATIONS.get(endpoint, endpoint)
        provider = route.provider
        attributes: dict[str, Any] = {
            names.OPERATION: operation,
            names.PROVIDER: _provider_name(provider.kind, provider.settings.base_url),
            names.REQUEST_MODEL: route.model,
            **_server(provider.settings.base_url),
            **self._ids(ctx),
            **self._caller(ctx),
            **{names.TAGS_PREFIX + key: value for key, value in ctx.tags.items()},
            names.REQUESTED_MODEL: route.requested,
            names.ROUTE_PROVIDER: provider.name,
            **_parameters(endpoint, body, stream),
        }
        if number > 1:
            attributes[names.ATTEMPT] = number
        if self.capture_content and endpoint == "chat":
            messages, system = input_messages(body.get("messages"))
            self.put_content(attributes, names.INPUT_MESSAGES, messages)
            if system is not None:
                self.put_content(attributes, names.SYSTEM_INSTRUCTIONS, system)
        span = self.tracer.start_span(f"{operation} {route.model}", kind=SpanKind.CLIENT, attributes=attributes)
        attempt = AttemptSpan(self, span, operation, attributes, stream)
        ctx.observers.append(attempt)
        return attempt

    # --- attributes ---------------------------------------------------------------------------------

    def put_content(self, attributes: dict[str, Any], name: str, value: str) -> None:
        """A captured attribute, cut to the cap; a cut one is named in ``relaygate.content.truncated``."""
        value, truncated = capped(value, self.content_max_bytes)
        attributes[name] = value
        if truncated:
            attributes[names.CONTENT_TRUNCATED] = [*attributes.get(names.CONTENT_TRUNCATED, ()), name]

    def _ids(self, ctx: RequestContext) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if ctx.thread_id is not None:
            out[names.CONVERSATION_ID] = ctx.thread_id
        if ctx.run_id is not None:
            out[names.RUN_ID] = ctx.run_id
        if ctx.label is not None:
            out[names.LABEL] = ctx.label
        if self.langdb_attributes:
            for ours, theirs in names.LANGDB.items():
                if ours in out:
                    out[theirs] = out[ours]
        return out

    @staticmethod
    def _caller(ctx: RequestContext, *, who_only: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if ctx.project_id is not None:
            out[names.PROJECT_ID] = ctx.project_id
        if ctx.key is not None:
            out[names.KEY_ID] = ctx.key.id
        if who_only:
            return out
        user = ctx.user or {}
        if user.get("id") is not None:
            out[names.USER_ID] = str(user["id"])
        if user.get("name") is not None:
            out[names.USER_NAME] = str(user["name"])
        if isinstance(user.get("tags"), list):
            out[names.USER_TAGS] = [str(tag) for tag in user["tags"]]
        return out


# Ends of a request that say nothing against the provider, which had answered: an output guard refused
# the answer, or the client left. The request's span carries them; the attempt's span and metrics do not.
@lru_cache(maxsize=64)
def _provider_name(kind: str, base_url: str | None) -> str:
    """The conventions' name for who serves the call: an OpenAI-compatible provider is named by its host
    (Gemini's OpenAI endpoint is ``gcp.gemini``, Groq's ``groq``), else by its kind."""
    if kind == "openai" and base_url:
        host = (urlsplit(base_url).hostname or "").lower()
        for suffix, name in names.OPENAI_COMPATIBLE_HOSTS:
            if host == suffix or host.endswith("." + suffix):
                return name
    return names.PROVIDER_NAMES.get(kind, kind)


@lru_cache(maxsize=64)
def _server_cached(base_url: str) -> tuple[tuple[str, Any], ...]:
    parts = urlsplit(base_url)
    if not parts.hostname:
        return ()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ((names.SERVER_ADDRESS, parts.hostname), (names.SERVER_PORT, port))


def _server(base_url: str | None) -> dict[str, Any]:
    return dict(_server_cached(base_url)) if base_url else {}


def _parameters(endpoint: str, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if stream:
        out[names.REQUEST_STREAM] = True
    for key, name in PARAMETERS.items():
        value = body.get(key)
        if _encodable(value):
            out[name] = value
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(max_tokens, int) and _encodable(max_tokens):
        out[names.REQUEST_MAX_TOKENS] = max_tokens
    stop = body.get("stop")
    if isinstance(stop, str):
        out[names.REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        out[names.REQUEST_STOP_SEQUENCES] = stop
    choices = body.get("n")
    if isinstance(choices, int) and _encodable(choices) and choices != 1:
        out[names.REQUEST_CHOICE_COUNT] = choices
    if endpoint == "chat":
        response_format = body.get("response_format")
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        out[names.OUTPUT_TYPE] = "json" if kind in ("json_object", "json_schema") else "text"
    elif endpoint == "images":
        out[names.OUTPUT_TYPE] = "image"
    elif endpoint == "embeddings" and isinstance(body.get("encoding_format"), str):
        out[names.REQUEST_ENCODING_FORMATS] = [body["encoding_format"]]
    return out


def _encodable(value: Any) -> bool:
    """A number OTLP can carry: an int within int64 or a finite float (the exporter logs a traceback for
    any other, per attribute, and drops it). The chat request's ranges are checked before; this is for the
    endpoints and dialects whose bodies carry the same names unchecked."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and math.isfinite(value)
