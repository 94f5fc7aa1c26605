"""The OTLP/HTTP test receiver, driven by the real OpenTelemetry SDK and OTLP/HTTP exporters."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from tests.otlp import OtlpReceiver, RecordedSpan, any_value

SECRET = "sk-should-be-findable-in-raw-exports"


@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    # The exporter uses requests, which honours proxy variables.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def tracer_provider(receiver: OtlpReceiver, compression: Compression | None = None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "relaygate-test", "deployment.id": 7}))
    exporter = OTLPSpanExporter(endpoint=receiver.traces_url, compression=compression, timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def export_parent_and_child(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("relaygate.tests", "1.2.3")
    with tracer.start_as_current_span(
        "POST /v1/chat/completions",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "POST", "http.response.status_code": 200},
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.provider.name": "openai",
                "gen_ai.request.temperature": 0.5,
                "gen_ai.request.stream": True,
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.response.finish_reasons": ("stop", "length"),
                "test.secret": SECRET,
            },
        ) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(StatusCode.ERROR, "upstream timed out")
    assert provider.force_flush(5_000)


def assert_parent_and_child(receiver: OtlpReceiver) -> tuple[RecordedSpan, RecordedSpan]:
    spans = receiver.wait_for_spans(count=2)
    assert len(spans) == 2
    server = receiver.span("POST /v1/chat/completions")
    client = receiver.span("chat gpt-4o")

    assert server.kind == "SERVER"
    assert client.kind == "CLIENT"
    assert server.parent_span_id == ""
    assert client.parent_span_id == server.span_id
    assert client.trace_id == server.trace_id
    assert len(client.trace_id) == 32 and len(client.span_id) == 16
    assert client.trace_id == client.trace_id.lower() and int(client.trace_id, 16) != 0

    assert server.attributes == {"http.request.method": "POST", "http.response.status_code": 200}
    assert client.attributes == {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.stream": True,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.response.finish_reasons": ["stop", "length"],
        "test.secret": SECRET,
    }
    assert type(client.attributes["gen_ai.usage.input_tokens"]) is int
    assert type(client.attributes["gen_ai.request.stream"]) is bool

    assert server.status_code == "UNSET"
    assert (client.status_code, client.status_message) == ("ERROR", "upstream timed out")
    assert client.events == [("retry", {"attempt": 2})]

    for span in (server, client):
        assert span.resource["service.name"] == "relaygate-test"
        assert span.resource["deployment.id"] == 7
        assert (span.scope_name, span.scope_version) == ("relaygate.tests", "1.2.3")
        assert 0 < span.start_time_unix_nano <= span.end_time_unix_nano
    assert server.start_time_unix_nano <= client.start_time_unix_nano
    assert client.end_time_unix_nano <= server.end_time_unix_nano
    return server, client


def test_decodes_spans_exported_by_the_sdk(receiver: OtlpReceiver) -> None:
    provider = tracer_provider(receiver)
    try:
        export_parent_and_child(provider)
        assert_parent_and_child(receiver)
    finally:
        provider.shutdown()

    assert receiver.errors == []
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/v1/traces")
    assert request.headers["content-type"] == "application/x-protobuf"
    assert "content-encoding" not in request.headers
    assert receiver.raw_exports == [request.body]
    assert receiver.contains(SECRET) and receiver.contains(SECRET.encode())
    assert receiver.contains("OTel-OTLP-Exporter-Python")  # the User-Agent header is searched too
    assert not receiver.contains("sk-never-exported")
    assert receiver.metrics == []


def test_decodes_gzip_compressed_spans(receiver: OtlpReceiver) -> None:
    provider = tracer_provider(receiver, compression=Compression.Gzip)
    try:
        export_parent_and_child(provider)
        assert_parent_and_child(receiver)
    finally:
        provider.shutdown()

    [request] = receiver.requests
    assert request.headers["content-encoding"] == "gzip"
    assert receiver.contains(SECRET)  # bodies are kept decompressed
    parsed = ExportTraceServiceRequest()
    parsed.ParseFromString(receiver.raw_exports[0])
    assert len(parsed.resource_spans) == 1


def test_decodes_metrics_exported_by_the_sdk(receiver: OtlpReceiver) -> None:
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=receiver.metrics_url, timeout=5), export_interval_millis=3_600_000
    )
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "relaygate-test"}))
    try:
        meter = provider.get_meter("relaygate.tests")
        duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
        for value in (0.2, 0.7, 3.0):
            duration.record(value, {"gen_ai.request.model": "gpt-4o"})
        duration.record(1.5, {"gen_ai.request.model": "gpt-4o-mini"})
        meter.create_counter("relaygate.requests", unit="{request}").add(3, {"route": "chat"})
        meter.create_gauge("relaygate.inflight").set(2.5)
        assert provider.force_flush(5_000)

        receiver.wait_for_metrics(lambda metric: metric.name == "gen_ai.client.operation.duration")
        histogram = receiver.metric("gen_ai.client.operation.duration")
        assert (histogram.kind, histogram.unit, histogram.scope_name) == ("histogram", "s", "relaygate.tests")
        assert histogram.resource["service.name"] == "relaygate-test"
        assert histogram.aggregation_temporality == "CUMULATIVE"
        points = {point.attributes["gen_ai.request.model"]: point for point in histogram.points}
        assert set(points) == {"gpt-4o", "gpt-4o-mini"}
        gpt4o = points["gpt-4o"]
        assert gpt4o.count == 3
        assert gpt4o.sum == pytest.approx(3.9)
        assert (gpt4o.min, gpt4o.max) == (0.2, 3.0)
        assert gpt4o.explicit_bounds and gpt4o.explicit_bounds == sorted(gpt4o.explicit_bounds)
        assert len(gpt4o.bucket_counts) == len(gpt4o.explicit_bounds) + 1
        assert sum(gpt4o.bucket_counts) == 3
        assert gpt4o.value is None
        assert 0 < gpt4o.start_time_unix_nano <= gpt4o.time_unix_nano
        assert points["gpt-4o-mini"].count == 1

        counter = receiver.metric("relaygate.requests")
        assert (counter.kind, counter.unit, counter.is_monotonic) == ("sum", "{request}", True)
        [point] = counter.points
        assert (point.attributes, point.value, point.count) == ({"route": "chat"}, 3, None)
        assert type(point.value) is int

        gauge = receiver.metric("relaygate.inflight")
        assert (gauge.kind, gauge.aggregation_temporality) == ("gauge", "")
        assert [point.value for point in gauge.points] == [2.5]
    finally:
        provider.shutdown()

    assert receiver.errors == []
    assert {request.path for request in receiver.requests} == {"/v1/metrics"}
    assert receiver.spans == []


def test_answers_like_a_collector(receiver: OtlpReceiver) -> None:
    body = ExportTraceServiceRequest().SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    response = httpx.post(receiver.traces_url, content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(response.content)
    assert not parsed.HasField("partial_success")

    assert receiver.endpoint.startswith("http://127.0.0.1:")
    assert receiver.traces_url == receiver.endpoint + "/v1/traces"
    assert receiver.metrics_url == receiver.endpoint + "/v1/metrics"
    assert httpx.post(receiver.endpoint + "/v1/logs", content=body, headers=headers).status_code == 404
    assert httpx.get(receiver.traces_url).status_code == 404
    assert httpx.put(receiver.metrics_url, content=body, headers=headers).status_code == 404
    assert [request.path for request in receiver.requests] == ["/v1/traces", "/v1/logs"]  # every POST is kept
    assert receiver.errors == []


def one_span_request(name: str) -> bytes:
    span = Span(name=name, trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), kind=Span.SPAN_KIND_INTERNAL)
    span.attributes.append(KeyValue(key="k", value=AnyValue(string_value="v")))
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    data: bytes = request.SerializeToString()
    return data


def test_refuses_what_a_collector_would_refuse(receiver: OtlpReceiver) -> None:
    protobuf = {"Content-Type": "application/x-protobuf"}
    assert httpx.post(receiver.traces_url, content=b"\xff\xff\xff", headers=protobuf).status_code == 400
    body = one_span_request("x")
    json = {"Content-Type": "application/json"}
    assert httpx.post(receiver.traces_url, content=body, headers=json).status_code == 415
    brotli = {**protobuf, "Content-Encoding": "br"}
    assert httpx.post(receiver.traces_url, content=body, headers=brotli).status_code == 415
    bad_gzip = {**protobuf, "Content-Encoding": "gzip"}
    assert httpx.post(receiver.traces_url, content=body, headers=bad_gzip).status_code == 400
    assert len(receiver.errors) == 4
    assert receiver.spans == []

    receiver.status_code = 400  # a collector rejecting well-formed exports
    assert httpx.post(receiver.traces_url, content=body, headers=protobuf).status_code == 400
    assert receiver.spans == []
    assert len(receiver.requests) == 5  # every POST is kept, including refused ones
    assert receiver.requests[3].body == body  # a body that could not be decompressed is kept as received
    receiver.status_code = 200
    gzipped = {**protobuf, "Content-Encoding": "gzip"}
    assert httpx.post(receiver.traces_url, content=gzip.compress(body), headers=gzipped).status_code == 200
    deflated = {**protobuf, "Content-Encoding": "deflate"}
    assert httpx.post(receiver.traces_url, content=zlib.compress(body), headers=deflated).status_code == 200
    assert receiver.raw_exports[-2:] == [body, body]
    assert receiver.errors[-1].startswith("POST /v1/traces: cannot decompress the gzip body")
    span, _ = receiver.spans
    assert (span.name, span.kind, span.attributes, span.parent_span_id) == ("x", "INTERNAL", {"k": "v"}, "")
    assert span.trace_id == "0102030405060708090a0b0c0d0e0f10"
    assert span.span_id == "0102030405060708"


def test_span_and_wait_helpers(receiver: OtlpReceiver) -> None:
    with pytest.raises(AssertionError, match="expected exactly one span named 'x', got 0"):
        receiver.span("x")
    with pytest.raises(AssertionError, match="within 0.05s, got 0"):
        receiver.wait_for_spans(timeout=0.05)
    with pytest.raises(AssertionError, match="no metric named"):
        receiver.metric("m")

    headers = {"Content-Type": "application/x-protobuf"}
    # Spans arriving from another thread while wait_for_spans is waiting wake it up.
    timer = threading.Timer(
        0.1, lambda: httpx.post(receiver.traces_url, content=one_span_request("x"), headers=headers)
    )
    timer.start()
    try:
        [span] = receiver.wait_for_spans(lambda span: span.name == "x", timeout=3)
    finally:
        timer.join()
    assert receiver.span("x") is span

    httpx.post(receiver.traces_url, content=one_span_request("x"), headers=headers)
    httpx.post(receiver.traces_url, content=one_span_request("y"), headers=headers)
    assert len(receiver.wait_for_spans(lambda span: span.name == "x", count=2)) == 2
    assert len(receiver.spans_named("x")) == 2
    with pytest.raises(AssertionError, match="expected exactly one span named 'x', got 2"):
        receiver.span("x")
    with pytest.raises(AssertionError, match="got 2; received: INTERNAL 'x', INTERNAL 'x', INTERNAL 'y'$"):
        receiver.wait_for_spans(lambda span: span.name == "x", count=3, timeout=0.05)
    assert receiver.span("y").name == "y"

    receiver.clear()
    assert (receiver.spans, receiver.requests, receiver.raw_exports, receiver.errors) == ([], [], [], [])


def test_any_value_conversion() -> None:
    kvlist = AnyValue()
    kvlist.kvlist_value.values.append(KeyValue(key="n", value=AnyValue(int_value=1)))
    nested = AnyValue()
    nested.array_value.values.extend([AnyValue(double_value=1.5), kvlist, AnyValue(bool_value=False)])
    assert any_value(nested) == [1.5, {"n": 1}, False]
    assert any_value(AnyValue(bytes_value=b"\x00\x01")) == b"\x00\x01"
    assert any_value(AnyValue()) is None


def test_stops_cleanly() -> None:
    receiver = OtlpReceiver()
    with pytest.raises(RuntimeError, match="not running"):
        _ = receiver.endpoint
    with receiver:
        url = receiver.traces_url
        with pytest.raises(RuntimeError, match="already running"):
            receiver.start()
    with pytest.raises(httpx.TransportError):
        httpx.post(url, content=b"", timeout=1)
