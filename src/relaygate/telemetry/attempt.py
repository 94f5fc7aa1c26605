"""The GenAI CLIENT span of one upstream attempt, and the metrics it records when it ends: its duration,
its tokens by type and its time to the first chunk (the semantic conventions' ``gen_ai.client.*``)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from relaygate.answers import AnswerCollector
from relaygate.telemetry import names
from relaygate.telemetry.content import output_message

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.telemetry.spans import Telemetry

__all__ = ["NOT_THE_PROVIDERS", "AttemptSpan"]


NOT_THE_PROVIDERS = frozenset({"guard_violation", "guard_error", "client_disconnected"})


class AttemptSpan:
    """One attempt's CLIENT span: follows its answer on the request context, then ends the span and
    records the metrics; or ends them at once when the attempt fails and another may follow."""

    __slots__ = ("_answer", "_started", "_truncated", "attributes", "operation", "span", "stream", "telemetry")

    def __init__(
        self, telemetry: Telemetry, span: Span, operation: str, attributes: Mapping[str, Any], stream: bool
    ) -> None:
        self.telemetry = telemetry
        self.span = span
        self.operation = operation
        self.stream = stream
        # The metric dimensions the conventions name, taken from the span's own attributes.
        self.attributes = {
            key: attributes[key]
            for key in (names.OPERATION, names.PROVIDER, names.REQUEST_MODEL, names.SERVER_ADDRESS)
            if key in attributes
        }
        self._started = time.perf_counter()
        self._truncated = list(attributes.get(names.CONTENT_TRUNCATED, ()))
        # The answer, put together only when content is captured.
        self._answer = AnswerCollector() if telemetry.capture_content else None

    @contextmanager
    def current(self) -> Iterator[None]:
        """The span as the current one, while the request goes out."""
        token = otel_context.attach(trace.set_span_in_context(self.span))
        try:
            yield
        finally:
            otel_context.detach(token)

    def fail(self, ctx: RequestContext, error_type: str) -> None:
        """The attempt failed: its span ends now, with ``error.type``, whatever the request does next."""
        ctx.observers.remove(self)
        self.telemetry.duration.record(
            time.perf_counter() - self._started, {**self.attributes, names.ERROR_TYPE: error_type}
        )
        if self.span.is_recording():
            self.span.set_attribute(names.ERROR_TYPE, error_type)
            self.span.set_status(Status(StatusCode.ERROR, error_type))
            self.span.end()

    def on_response(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        if self._answer is not None:
            self._answer.add_response(body)

    def on_chunk(self, ctx: RequestContext, chunk: dict[str, Any]) -> None:
        if self._answer is not None:
            self._answer.add_chunk(chunk)

    def on_model_call_done(self, ctx: RequestContext) -> None:
        """A tool loop's model call is over and another follows: its span ends now, with what it answered."""
        ctx.observers.remove(self)
        self.on_end(ctx)

    def on_end(self, ctx: RequestContext) -> None:
        ended = time.perf_counter()
        span = self.span
        error = None if ctx.error in NOT_THE_PROVIDERS else ctx.error
        failed = error is not None or (ctx.status or 0) >= 400
        error_type = (error or str(ctx.status)) if failed else None
        metric_attributes = dict(self.attributes)
        if ctx.response_model:
            metric_attributes[names.RESPONSE_MODEL] = ctx.response_model
        if error_type is not None:
            metric_attributes[names.ERROR_TYPE] = error_type
        self.telemetry.duration.record(ended - self._started, metric_attributes)
        usage = ctx.usage
        if usage is not None:
            self.telemetry.token_usage.record(usage.prompt_tokens, {**metric_attributes, names.TOKEN_TYPE: "input"})
            self.telemetry.token_usage.record(
                usage.completion_tokens, {**metric_attributes, names.TOKEN_TYPE: "output"}
            )
        first_chunk = ctx.first_chunk_at - self._started if self.stream and ctx.first_chunk_at else None
        if first_chunk is not None:
            self.telemetry.time_to_first_chunk.record(first_chunk, metric_attributes)
        if not span.is_recording():
            return
        attributes: dict[str, Any] = {}
        if ctx.response_id:
            attributes[names.RESPONSE_ID] = ctx.response_id
        if ctx.response_model:
            attributes[names.RESPONSE_MODEL] = ctx.response_model
        if ctx.finish_reasons:
            attributes[names.RESPONSE_FINISH_REASONS] = list(ctx.finish_reasons)
        if usage is not None:
            attributes[names.USAGE_INPUT_TOKENS] = usage.prompt_tokens
            attributes[names.USAGE_OUTPUT_TOKENS] = usage.completion_tokens
            if usage.cached_tokens:
                attributes[names.USAGE_CACHE_READ] = usage.cached_tokens
            if usage.cache_write_tokens:
                attributes[names.USAGE_CACHE_CREATION] = usage.cache_write_tokens
            if usage.reasoning_tokens:
                attributes[names.USAGE_REASONING] = usage.reasoning_tokens
        if first_chunk is not None:
            attributes[names.RESPONSE_TIME_TO_FIRST_CHUNK] = first_chunk
        if ctx.cost_usd is not None:
            attributes[names.COST_USD] = ctx.cost_usd
        answer = self._answer
        if answer is not None and self.operation == "chat" and (answer.text or answer.tool_calls):
            finish = ctx.finish_reasons[0] if ctx.finish_reasons else None
            if self._truncated:  # the request's own, set when the span started, are kept
                attributes[names.CONTENT_TRUNCATED] = self._truncated
            self.telemetry.put_content(
                attributes, names.OUTPUT_MESSAGES, output_message(answer.text, answer.tool_calls, finish)
            )
        if error_type is not None:
            attributes[names.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error))
        span.set_attributes(attributes)
        span.end()
