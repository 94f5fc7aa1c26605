"""The recorder's metric sink: the call's histograms, aggregated by an SDK meter provider of the recorder's own
and exported over OTLP as the serving process would have exported them.

The serving process queues each measurement as a tuple (:mod:`relaygate.telemetry.histograms`); here it is
recorded in the same instrument (name, unit, description, bucket boundaries) of a meter of the same name
and version, under the same resource, with the span that was current as the exemplar's context. The
reader is the SDK's periodic one, so the export interval (``OTEL_METRIC_EXPORT_INTERVAL``) and the exemplar
filter (``OTEL_METRICS_EXEMPLAR_FILTER``) are read as the serving process's provider would read them.
An exemplar's timestamp is when the recorder records it (within a batch interval of the call's end).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from relaygate.telemetry.histograms import create_histograms

if TYPE_CHECKING:
    from relaygate.telemetry.histograms import MeasurementTuple

__all__ = ["MetricSink"]

logger = logging.getLogger("relaygate.recorder")


class MetricSink:
    """Records the serving process's measurements in its own histograms; :meth:`close` exports what is left."""

    def __init__(self, exporter: MetricExporter, resource: Resource) -> None:
        from relaygate import __version__
        from relaygate.telemetry.names import INSTRUMENTATION

        self.reader = PeriodicExportingMetricReader(exporter)
        self.provider = MeterProvider(resource=resource, metric_readers=[self.reader], shutdown_on_exit=False)
        self.histograms = create_histograms(self.provider.get_meter(INSTRUMENTATION, __version__))
        self.recorded = 0

    def add(self, measurements: list[MeasurementTuple]) -> None:
        histograms = self.histograms
        for index, value, attributes, span in measurements:
            context = None
            if span is not None:
                span_context = SpanContext(span[0], span[1], is_remote=False, trace_flags=TraceFlags(span[2]))
                context = trace.set_span_in_context(NonRecordingSpan(span_context), Context())
            histograms[index].record(value, dict(attributes), context=context)
        self.recorded += len(measurements)

    def close(self, timeout: float) -> None:
        """Export what was recorded since the last export (for at most ``timeout`` seconds) and stop."""
        try:
            self.provider.shutdown(timeout_millis=timeout * 1000)
        except Exception:  # a collector that cannot take them must not stop the recorder's own shutdown
            logger.exception("recorder: exporting the last metrics failed")
