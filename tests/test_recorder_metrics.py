"""The calls' histograms aggregated and exported by the recorder process: what reaches the collector is what the
serving process's own meter provider exported, their drops are counted, and a clean stop exports them.

Each test runs a real gateway in process (the fake OpenAI server upstream) with a real recorder process and
the real OTLP receiver as collector; what is compared is the protobuf the collector received.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from relaygate import Gateway
from relaygate.recorder import METRIC_DROPPED, Recorder, RecorderConfig, RecordingTracerProvider
from relaygate.telemetry import names
from relaygate.telemetry.histograms import HISTOGRAMS, RecordedHistogram
from tests.conftest import KEY_A, make_settings
from tests.otlp import METRICS_PATH, OtlpReceiver, attributes

pytestmark = pytest.mark.anyio

RESOURCE = {"service.name": "relaygate-recorder-metrics-test"}
HEADERS = {"authorization": f"Bearer {KEY_A}"}
HISTOGRAM_NAMES = {spec.name for spec in HISTOGRAMS}
# Nothing is exported on a timer during a test (here or in the recorder): only the flush at the stop delivers.
NEVER = "600000"


@pytest.fixture(autouse=True)
def _no_periodic_export(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", NEVER)  # the recorder process inherits it


@asynccontextmanager
async def _served(
    upstream_url: str,
    receiver: OtlpReceiver,
    *,
    recorder: bool,
    metrics: MetricReader | None = None,
    **options: Any,
) -> AsyncIterator[tuple[Recorder | None, httpx.AsyncClient]]:
    """A gateway as ``relaygate serve`` builds it: spans and metrics to ``receiver``, by a recorder or in process."""
    readers: list[MetricReader] = [metrics] if metrics is not None else []
    the_recorder = None
    tracer_provider: TracerProvider | RecordingTracerProvider
    if recorder:
        config = RecorderConfig(
            traces_endpoint=receiver.traces_url, metrics_endpoint=receiver.metrics_url, resource=RESOURCE
        )
        # The serving process's own provider keeps the rare counters (the recorder's drops).
        meter_provider = MeterProvider(resource=Resource(RESOURCE), metric_readers=readers)
        the_recorder = Recorder(config, meter=meter_provider.get_meter("relaygate"), **options)
        tracer_provider = RecordingTracerProvider(the_recorder, resource=Resource(RESOURCE))
    else:
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=receiver.metrics_url)))
        meter_provider = MeterProvider(resource=Resource(RESOURCE), metric_readers=readers)
        tracer_provider = TracerProvider(resource=Resource(RESOURCE))
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_url)))
    settings = make_settings(upstream_url, database=None)
    gateway = Gateway(settings, tracer_provider=tracer_provider, meter_provider=meter_provider)
    if the_recorder is not None:
        gateway.use_recorder(the_recorder)
        assert gateway.telemetry is not None and isinstance(gateway.telemetry.duration, RecordedHistogram)
    transport = httpx.ASGITransport(app=gateway.app)
    try:
        async with (
            gateway.lifespan(),
            httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=HEADERS) as client,
        ):
            yield the_recorder, client
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


async def _calls(client: httpx.AsyncClient) -> None:
    """Whole answers, a streamed one (the time to its first chunk) and a failed one (``error.type``)."""
    chat = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "Hi there"}]}
    for _ in range(3):
        assert (await client.post("/v1/chat/completions", json=chat)).status_code == 200
    async with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as streamed:
        assert streamed.status_code == 200
        assert [line async for line in streamed.aiter_lines() if line.startswith("data: ")][-1] == "data: [DONE]"
    failed = await client.post("/v1/chat/completions", json={**chat, "model": "upstream/status-500"})
    assert failed.status_code == 500


def _histograms(receiver: OtlpReceiver) -> dict[str, Any]:
    """The calls' histograms as the collector last received them (they are cumulative), without what differs
    between two runs of the same calls: times, durations, ids (an exemplar's span is named by its name and kind)."""
    spans = {bytes.fromhex(span.span_id): (span.kind, span.name) for span in receiver.spans}
    found: dict[str, Any] = {}
    for request in receiver.requests:
        if request.path != METRICS_PATH:
            continue
        export = ExportMetricsServiceRequest()
        export.ParseFromString(request.body)
        for resource_metrics in export.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name not in HISTOGRAM_NAMES:
                        continue
                    exact = metric.name == names.METRIC_TOKEN_USAGE  # durations vary from run to run
                    points = []
                    for point in metric.histogram.data_points:
                        # One exemplar per bucket that has values: where durations fall varies, whose span they
                        # name does not.
                        exemplars = sorted(
                            {
                                (
                                    spans.get(exemplar.span_id, ("not exported", exemplar.span_id.hex())),
                                    tuple(sorted(attributes(exemplar.filtered_attributes).items())),
                                    getattr(exemplar, exemplar.WhichOneof("value") or "as_double") if exact else None,
                                )
                                for exemplar in point.exemplars
                            }
                        )
                        figures = (point.sum, point.min, point.max, list(point.bucket_counts)) if exact else ()
                        points.append(
                            (attributes(point.attributes), point.count, list(point.explicit_bounds), figures, exemplars)
                        )
                    found[metric.name] = (
                        attributes(resource_metrics.resource.attributes),
                        (scope_metrics.scope.name, scope_metrics.scope.version),
                        metric.unit,
                        metric.description,
                        metric.histogram.aggregation_temporality,
                        sorted(points, key=repr),
                    )
    return found


async def test_the_recorders_histograms_are_those_the_serving_process_exported(upstream_url: str) -> None:
    results = {}
    for recorder in (False, True):
        with OtlpReceiver() as receiver:
            async with _served(upstream_url, receiver, recorder=recorder) as (the_recorder, client):
                await _calls(client)
            # The stop exported them (nothing is exported on a timer here).
            results[recorder] = _histograms(receiver)
    assert set(results[False]) == HISTOGRAM_NAMES
    tokens = results[False][names.METRIC_TOKEN_USAGE]
    assert tokens[2] == "{token}" and tokens[5][0][4], "token usage with exemplars"
    durations = {str(point[0].get("error.type")): point[1] for point in results[False][names.METRIC_DURATION][5]}
    assert durations == {"None": 4, "fake_500": 1}
    assert results[True] == results[False]


async def test_measurements_the_recorder_cannot_take_are_counted_as_dropped(
    upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reader = InMemoryMetricReader()
    with OtlpReceiver() as receiver, caplog.at_level(logging.WARNING, logger="relaygate.recorder"):
        # A queue of 4 records that nothing empties before the stop (requests do not wait for the recorder
        # either): the first call's spans fill it.
        options = {"max_pending": 4, "interval": 30.0, "high_water": 0}
        async with _served(upstream_url, receiver, recorder=True, metrics=reader, **options) as (
            recorder,
            client,
        ):
            await _calls(client)
            assert recorder is not None and recorder.dropped_metrics > 0
            dropped = _dropped(reader)
        assert dropped["metric"] == recorder.dropped_metrics
        assert "metric records dropped" in caplog.text
        exported = _histograms(receiver)
    # What the queue took was exported; together with the drops, every measurement (four durations, eight
    # token counts, a time to first chunk) is accounted for.
    taken = sum(point[1] for metric in exported.values() for point in metric[5])
    assert taken + dropped["metric"] == 4 + 1 + 8 + 1


def _dropped(reader: InMemoryMetricReader) -> dict[str, int]:
    out: dict[str, int] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == METRIC_DROPPED:
                    for point in metric.data.data_points:
                        out[str(dict(point.attributes or {})["relaygate.record"])] = int(getattr(point, "value", 0))
    return out


async def test_a_clean_stop_exports_the_measurements_still_queued(upstream_url: str) -> None:
    with OtlpReceiver() as receiver:
        # A long interval: the measurements are still queued in the gateway when the stop begins.
        async with _served(upstream_url, receiver, recorder=True, interval=30.0) as (recorder, client):
            await _calls(client)
            assert recorder is not None and len(recorder._queue) > 0
            assert not receiver.metrics
        exported = _histograms(receiver)
    assert sum(point[1] for point in exported[names.METRIC_DURATION][5]) == 5
    assert sum(point[1] for point in exported[names.METRIC_TOKEN_USAGE][5]) == 8
    assert sum(point[1] for point in exported[names.METRIC_TIME_TO_FIRST_CHUNK][5]) == 1
