"""The recorder's tracer provider produces, once the recorder unpacks its spans, exactly what the SDK's would.

Each scenario runs twice: through the SDK's ``TracerProvider`` with an in-memory exporter, and through
:class:`RecordingTracerProvider` whose tuples are unpacked as the recorder does. Both are encoded as OTLP
protobuf (what goes to the collector) and compared, ids and times aside (each run has its own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, TraceIdRatioBased
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from relaygate.recorder.tracer import RecordingTracerProvider
from relaygate.recorder.wire import SpanTuple, unpack_span

RESOURCE = Resource({"service.name": "relaygate-test"})
Scenario = Callable[[trace.TracerProvider], None]


class Sink:
    """What the tracer hands spans to: the recorder's ``submit_span``, here keeping them."""

    def __init__(self) -> None:
        self.spans: list[SpanTuple] = []

    def submit_span(self, span: SpanTuple) -> None:
        self.spans.append(span)


class CountingIds(IdGenerator):
    """Ids in order, so that both runs of a scenario have the same."""

    def __init__(self) -> None:
        self.next = 0

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return self.next << 64


def _times(span: ReadableSpan) -> ReadableSpan:
    """``span`` with fixed start, end and event times, and an exception's stack trace checked, then left out
    (its frames differ from one run to the other)."""
    for event in span.events:
        event._timestamp = 7
        if event.attributes and "exception.stacktrace" in event.attributes:
            assert str(event.attributes["exception.stacktrace"]).startswith("Traceback")
            attributes = {key: value for key, value in event.attributes.items() if key != "exception.stacktrace"}
            event._attributes = attributes
    span._start_time, span._end_time = 1, 2
    return span


def _both(scenario: Scenario, limits: SpanLimits | None = None, **options: Any) -> tuple[bytes, bytes]:
    limits = limits or SpanLimits()
    exporter = InMemorySpanExporter()
    sdk = TracerProvider(
        resource=RESOURCE, id_generator=CountingIds(), span_limits=limits, shutdown_on_exit=False, **options
    )
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    scenario(sdk)
    sink = Sink()
    ours = RecordingTracerProvider(sink, resource=RESOURCE, id_generator=CountingIds(), **options)  # type: ignore[arg-type]
    scenario(ours)
    expected = [_times(span) for span in exporter.get_finished_spans()]
    got = [_times(unpack_span(span, RESOURCE, limits)) for span in sink.spans]
    assert [span.name for span in got] == [span.name for span in expected]
    return encode_spans(got).SerializeToString(), encode_spans(expected).SerializeToString()


def _call(provider: trace.TracerProvider) -> None:
    tracer = provider.get_tracer("relaygate", "1.0")
    with tracer.start_as_current_span("POST /v1/chat/completions", kind=SpanKind.SERVER, attributes={"a": 1}) as root:
        root.set_attribute("gen_ai.request.model", "gpt-4o")
        root.set_attributes({"tags": ["x", "y"], "ratio": 0.5, "ok": True})
        root.set_attribute("a", 2)  # set again: moves to the end, as in the SDK
        root.add_event("guard", {"relaygate.guard": "regex", "hits": [1, 2]})
        root.update_name("POST /v1/responses")
        child = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={"gen_ai.system": "openai"})
        child.set_status(Status(StatusCode.ERROR, "upstream_error"))
        child.set_status(StatusCode.UNSET)  # ignored
        child.end()
        child.set_attribute("late", 1)  # after end: ignored
        tool = tracer.start_span("execute_tool lookup", links=[Link(child.get_span_context(), {"why": "follows"})])
        tool.add_link(root.get_span_context())
        tool.set_status(StatusCode.OK)
        tool.set_status(StatusCode.ERROR, "too late")  # OK stays
        tool.end()


def _scope_attributes(provider: trace.TracerProvider) -> None:
    tracer = provider.get_tracer("instrumentation", "2.0", "https://example.com/schema", {"scope.kind": "test"})
    tracer.start_span("scoped").end()


def _exception(provider: trace.TracerProvider) -> None:
    tracer = provider.get_tracer("relaygate")
    with pytest.raises(ValueError), tracer.start_as_current_span("failing"):
        raise ValueError("boom")


def _remote_parent(provider: trace.TracerProvider) -> None:
    tracer = provider.get_tracer("relaygate")
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "k=v"}
    parent = TraceContextTextMapPropagator().extract(carrier)
    token = context_api.attach(parent)
    try:
        tracer.start_span("under a remote parent").end()
    finally:
        context_api.detach(token)


def _many_attributes(provider: trace.TracerProvider) -> None:
    span = provider.get_tracer("relaygate").start_span("big")
    for index in range(10):
        span.set_attribute(f"k{index}", "v" * 40)
    span.set_attribute("bad", {"not": "allowed"})
    for index in range(6):
        span.add_event(f"e{index}")
    span.end()


@pytest.mark.parametrize(
    "scenario",
    [_call, _exception, _remote_parent, _scope_attributes],
    ids=["call", "exception", "remote-parent", "scope-attributes"],
)
def test_spans_encode_as_the_sdks(scenario: Scenario) -> None:
    got, expected = _both(scenario)
    assert got == expected


def test_span_limits_apply_in_the_recorder_as_in_the_sdk() -> None:
    limits = SpanLimits(max_span_attributes=4, max_attribute_length=8, max_events=3)
    got, expected = _both(_many_attributes, limits)
    assert got == expected


def test_a_sampler_from_the_settings_is_asked() -> None:
    got, expected = _both(_call, sampler=TraceIdRatioBased(1.0))
    assert got == expected
    sink = Sink()
    provider = RecordingTracerProvider(sink, sampler=ALWAYS_OFF)  # type: ignore[arg-type]
    span = provider.get_tracer("relaygate").start_span("dropped")
    assert not span.is_recording()
    span.end()
    assert sink.spans == []


def test_an_unsampled_parent_is_followed_and_nothing_is_handed_over() -> None:
    sink = Sink()
    provider = RecordingTracerProvider(sink)  # type: ignore[arg-type]
    parent = trace.NonRecordingSpan(SpanContext(1 << 70, 5, is_remote=True, trace_flags=TraceFlags(0)))
    span = provider.get_tracer("relaygate").start_span("child", context=trace.set_span_in_context(parent))
    assert not span.get_span_context().trace_flags.sampled
    assert span.get_span_context().trace_id == 1 << 70
    span.end()
    assert sink.spans == []


def test_tracers_are_kept_per_scope() -> None:
    provider = RecordingTracerProvider(Sink())  # type: ignore[arg-type]
    assert provider.get_tracer("a", "1") is provider.get_tracer("a", "1")
    assert provider.get_tracer("a", "1") is not provider.get_tracer("a", "2")
