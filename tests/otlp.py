"""A real OTLP/HTTP (protobuf) receiver for tests: a stand-in for an OpenTelemetry collector.

Point an ``OTLPSpanExporter`` / ``OTLPMetricExporter`` (or the gateway's own OTLP export) at
``receiver.traces_url`` / ``receiver.metrics_url`` and assert on what actually went over the wire:

    with OtlpReceiver() as receiver:
        provider = TracerProvider(resource=Resource.create({"service.name": "relaygate"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_url)))
        ...
        provider.force_flush()
        client = receiver.span("chat gpt-4o")
        assert client.kind == "CLIENT"
        assert not receiver.contains("sk-upstream-secret")

The receiver is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a daemon thread. It accepts
``POST /v1/traces`` and ``POST /v1/metrics`` with ``Content-Type: application/x-protobuf``, optionally gzip- or
deflate-compressed, and answers 200 with an empty ``Export*ServiceResponse`` like a collector does. Every POST is
kept verbatim (headers and decompressed body) so tests can search the whole export for secrets; spans and metrics
are also decoded into plain dataclasses with Python values, which are easy to assert on.

``requests`` (used by the OTLP/HTTP exporter) honours proxy environment variables: tests that export to the
receiver should make sure ``NO_PROXY`` covers ``127.0.0.1``.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar, cast

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = [
    "OtlpReceiver",
    "RecordedMetric",
    "RecordedPoint",
    "RecordedRequest",
    "RecordedSpan",
    "any_value",
    "attributes",
]

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"
PROTOBUF = "application/x-protobuf"

_T = TypeVar("_T")


@dataclass(frozen=True)
class RecordedRequest:
    """One POST: ``headers`` with lower-cased names; ``body`` decompressed (as received when that failed)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class RecordedSpan:
    """A decoded span. Ids are lower-case hex (``parent_span_id`` is "" for a root span)."""

    name: str
    kind: str  # "SERVER", "CLIENT", "INTERNAL", "PRODUCER", "CONSUMER" or "UNSPECIFIED"
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status_code: str  # "UNSET", "OK" or "ERROR"
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope_name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    trace_state: str = ""
    scope_version: str = ""
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (trace_id, span_id, attributes)


@dataclass(frozen=True)
class RecordedPoint:
    """A decoded data point: ``value`` for sums and gauges; ``count``, ``sum``, buckets, min and max for histograms."""

    attributes: dict[str, Any]
    start_time_unix_nano: int
    time_unix_nano: int
    value: int | float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class RecordedMetric:
    """A decoded metric from one export; a cumulative metric shows up again in every later export."""

    name: str
    description: str
    unit: str
    kind: str  # "histogram", "sum", "gauge", "exponential_histogram" or "summary"
    points: list[RecordedPoint]
    resource: dict[str, Any]
    scope_name: str
    aggregation_temporality: str = ""  # "DELTA" or "CUMULATIVE" for sums and histograms, else ""
    is_monotonic: bool | None = None  # for sums only


class _ExportError(Exception):
    """A request the receiver refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: OtlpReceiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no handler thread outlives the receiver waiting on a keep-alive socket.
    protocol_version = "HTTP/1.0"
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        receiver = cast(_Server, self.server).receiver
        path = self.path.split("?", 1)[0]
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = headers.get("content-length", "")
        if not length.isdigit():
            receiver._record_error(f"POST {self.path}: missing or invalid Content-Length")
            self._reply(411, b"", "text/plain")
            return
        body = self.rfile.read(int(length))
        try:
            body = _decompress(body, headers.get("content-encoding", ""))
        except _ExportError as error:
            receiver._record_request(RecordedRequest("POST", path, headers, body))  # kept as received
            receiver._record_error(f"POST {path}: {error}")
            self._reply(error.status, b"", "text/plain")
            return
        receiver._record_request(RecordedRequest("POST", path, headers, body))
        if path not in (TRACES_PATH, METRICS_PATH):
            self._reply(404, b"", "text/plain")
            return
        try:
            if headers.get("content-type", "").split(";", 1)[0].strip().lower() != PROTOBUF:
                raise _ExportError(415, f"unsupported Content-Type {headers.get('content-type')!r}")
            if path == TRACES_PATH:
                spans = _decode_traces(body)
                response = ExportTraceServiceResponse().SerializeToString()
            else:
                metrics = _decode_metrics(body)
                response = ExportMetricsServiceResponse().SerializeToString()
        except _ExportError as error:
            receiver._record_error(f"POST {path}: {error}")
            self._reply(error.status, b"", "text/plain")
            return
        status = receiver.status_code
        if status != 200:
            self._reply(status, b"", "text/plain")
            return
        if path == TRACES_PATH:
            receiver._record_spans(spans)
        else:
            receiver._record_metrics(metrics)
        self._reply(200, response, PROTOBUF)

    def _not_found(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            self.rfile.read(int(length))
        self._reply(404, b"", "text/plain")

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_found

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class OtlpReceiver:
    """An OTLP/HTTP collector stand-in on 127.0.0.1; use as a context manager (or ``start()`` / ``stop()``).

    ``status_code`` (default 200) is the status answered to well-formed exports; set it to e.g. 400 to make the
    receiver reject exports (they are still kept in ``requests`` but not decoded into ``spans`` / ``metrics``).
    Requests the receiver cannot understand are answered 4xx and described in ``errors``.
    """

    def __init__(self) -> None:
        self.status_code = 200
        self._condition = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._spans: list[RecordedSpan] = []
        self._metrics: list[RecordedMetric] = []
        self._errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> OtlpReceiver:
        if self._server is not None:
            raise RuntimeError("the OTLP receiver is already running")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(10)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234`` (what ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes)."""
        if self._server is None:
            raise RuntimeError("the OTLP receiver is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def traces_url(self) -> str:
        return self.endpoint + TRACES_PATH

    @property
    def metrics_url(self) -> str:
        return self.endpoint + METRICS_PATH

    # -- what was received (copies, safe to use while exports keep arriving)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every POST received, on any path, with decompressed bodies."""
        with self._condition:
            return list(self._requests)

    @property
    def raw_exports(self) -> list[bytes]:
        """The decompressed body of every POST received, on any path."""
        with self._condition:
            return [request.body for request in self._requests]

    @property
    def spans(self) -> list[RecordedSpan]:
        with self._condition:
            return list(self._spans)

    @property
    def metrics(self) -> list[RecordedMetric]:
        with self._condition:
            return list(self._metrics)

    @property
    def errors(self) -> list[str]:
        """Requests the receiver refused as malformed (bad encoding, content type, protobuf...)."""
        with self._condition:
            return list(self._errors)

    def contains(self, needle: str | bytes) -> bool:
        """Whether ``needle`` appears in any received body or request header value (e.g. to look for secrets)."""
        data = needle.encode() if isinstance(needle, str) else needle
        text = data.decode(errors="replace")
        with self._condition:
            return any(
                data in request.body or any(text in value for value in request.headers.values())
                for request in self._requests
            )

    def clear(self) -> None:
        """Forget everything received so far."""
        with self._condition:
            self._requests.clear()
            self._spans.clear()
            self._metrics.clear()
            self._errors.clear()

    # -- waiting and picking

    def wait_for_spans(
        self, predicate: Callable[[RecordedSpan], bool] | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[RecordedSpan]:
        """Wait until at least ``count`` received spans match ``predicate`` (any span when None); return them all.

        Raises ``AssertionError`` listing what arrived when ``timeout`` seconds pass first.
        """
        return self._wait(self._spans, predicate, count, timeout, "spans", lambda span: f"{span.kind} {span.name!r}")

    def wait_for_metrics(
        self, predicate: Callable[[RecordedMetric], bool] | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[RecordedMetric]:
        """Like ``wait_for_spans``, for metrics."""
        return self._wait(self._metrics, predicate, count, timeout, "metrics", lambda metric: metric.name)

    def span(self, name: str) -> RecordedSpan:
        """The one span received with this name; ``AssertionError`` when there are none or several."""
        matches = [span for span in self.spans if span.name == name]
        assert len(matches) == 1, (
            f"expected exactly one span named {name!r}, got {len(matches)}; received: {self._span_names() or 'nothing'}"
        )
        return matches[0]

    def spans_named(self, name: str) -> list[RecordedSpan]:
        return [span for span in self.spans if span.name == name]

    def metric(self, name: str) -> RecordedMetric:
        """The latest export of the metric with this name (cumulative metrics repeat in every export)."""
        matches = [metric for metric in self.metrics if metric.name == name]
        received = ", ".join(sorted({metric.name for metric in self.metrics})) or "nothing"
        assert matches, f"no metric named {name!r}; received: {received}"
        return matches[-1]

    # -- internals, called from the handler threads

    def _wait(
        self,
        items: list[_T],
        predicate: Callable[[_T], bool] | None,
        count: int,
        timeout: float,
        what: str,
        describe: Callable[[_T], str],
    ) -> list[_T]:
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                matches = [item for item in items if predicate is None or predicate(item)]
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    received = ", ".join(describe(item) for item in items) or "nothing"
                    raise AssertionError(
                        f"expected at least {count} matching {what} within {timeout}s, got {len(matches)}; "
                        f"received: {received}"
                    )
                self._condition.wait(remaining)

    def _span_names(self) -> str:
        return ", ".join(f"{span.kind} {span.name!r}" for span in self.spans)

    def _record_request(self, request: RecordedRequest) -> None:
        with self._condition:
            self._requests.append(request)
            self._condition.notify_all()

    def _record_spans(self, spans: Iterable[RecordedSpan]) -> None:
        with self._condition:
            self._spans.extend(spans)
            self._condition.notify_all()

    def _record_metrics(self, metrics: Iterable[RecordedMetric]) -> None:
        with self._condition:
            self._metrics.extend(metrics)
            self._condition.notify_all()

    def _record_error(self, message: str) -> None:
        with self._condition:
            self._errors.append(message)
            self._condition.notify_all()


# -- protobuf to Python


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as Python: str, int, float, bool, bytes, list (arrays), dict (kvlists) or None."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return bytes(value.bytes_value)
    return getattr(value, which)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}


def _decompress(body: bytes, content_encoding: str) -> bytes:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise _ExportError(415, f"unsupported Content-Encoding {encoding!r}")
    try:
        return gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as error:
        raise _ExportError(400, f"cannot decompress the {encoding} body: {error}") from error


def _enum_name(name: Callable[[Any], str], value: int, prefix: str) -> str:
    try:
        return name(value).removeprefix(prefix)
    except ValueError:
        return str(value)


def _parse(message: Any, body: bytes) -> None:
    try:
        message.ParseFromString(body)
    except Exception as error:  # google.protobuf.message.DecodeError, which has no stubs here
        raise _ExportError(400, f"cannot parse {type(message).__name__}: {error}") from error


def _decode_traces(body: bytes) -> list[RecordedSpan]:
    request = ExportTraceServiceRequest()
    _parse(request, body)
    spans: list[RecordedSpan] = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    RecordedSpan(
                        name=span.name,
                        kind=_enum_name(Span.SpanKind.Name, span.kind, "SPAN_KIND_"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=attributes(span.attributes),
                        status_code=_enum_name(Status.StatusCode.Name, span.status.code, "STATUS_CODE_"),
                        status_message=span.status.message,
                        events=[(event.name, attributes(event.attributes)) for event in span.events],
                        resource=resource,
                        scope_name=scope_spans.scope.name,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        trace_state=span.trace_state,
                        scope_version=scope_spans.scope.version,
                        links=[
                            (link.trace_id.hex(), link.span_id.hex(), attributes(link.attributes))
                            for link in span.links
                        ],
                    )
                )
    return spans


def _decode_metrics(body: bytes) -> list[RecordedMetric]:
    request = ExportMetricsServiceRequest()
    _parse(request, body)
    metrics: list[RecordedMetric] = []
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                metrics.append(_decode_metric(metric, resource, scope_metrics.scope.name))
    return metrics


def _temporality(value: int) -> str:
    return _enum_name(AggregationTemporality.Name, value, "AGGREGATION_TEMPORALITY_")


def _decode_metric(metric: Metric, resource: dict[str, Any], scope_name: str) -> RecordedMetric:
    kind = metric.WhichOneof("data") or ""
    temporality = ""
    is_monotonic: bool | None = None
    points: list[RecordedPoint] = []
    if kind == "histogram":
        temporality = _temporality(metric.histogram.aggregation_temporality)
        points = [_histogram_point(point) for point in metric.histogram.data_points]
    elif kind == "sum":
        temporality = _temporality(metric.sum.aggregation_temporality)
        is_monotonic = metric.sum.is_monotonic
        points = [_number_point(point) for point in metric.sum.data_points]
    elif kind == "gauge":
        points = [_number_point(point) for point in metric.gauge.data_points]
    elif kind == "exponential_histogram":
        temporality = _temporality(metric.exponential_histogram.aggregation_temporality)
        points = [
            RecordedPoint(
                attributes=attributes(point.attributes),
                start_time_unix_nano=point.start_time_unix_nano,
                time_unix_nano=point.time_unix_nano,
                count=point.count,
                sum=point.sum if point.HasField("sum") else None,
                min=point.min if point.HasField("min") else None,
                max=point.max if point.HasField("max") else None,
            )
            for point in metric.exponential_histogram.data_points
        ]
    elif kind == "summary":
        points = [
            RecordedPoint(
                attributes=attributes(point.attributes),
                start_time_unix_nano=point.start_time_unix_nano,
                time_unix_nano=point.time_unix_nano,
                count=point.count,
                sum=point.sum,
            )
            for point in metric.summary.data_points
        ]
    return RecordedMetric(
        name=metric.name,
        description=metric.description,
        unit=metric.unit,
        kind=kind,
        points=points,
        resource=resource,
        scope_name=scope_name,
        aggregation_temporality=temporality,
        is_monotonic=is_monotonic,
    )


def _number_point(point: NumberDataPoint) -> RecordedPoint:
    which = point.WhichOneof("value")
    value: int | float | None = None
    if which == "as_int":
        value = point.as_int
    elif which == "as_double":
        value = point.as_double
    return RecordedPoint(
        attributes=attributes(point.attributes),
        start_time_unix_nano=point.start_time_unix_nano,
        time_unix_nano=point.time_unix_nano,
        value=value,
    )


def _histogram_point(point: HistogramDataPoint) -> RecordedPoint:
    return RecordedPoint(
        attributes=attributes(point.attributes),
        start_time_unix_nano=point.start_time_unix_nano,
        time_unix_nano=point.time_unix_nano,
        count=point.count,
        sum=point.sum if point.HasField("sum") else None,
        bucket_counts=list(point.bucket_counts),
        explicit_bounds=list(point.explicit_bounds),
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
    )
