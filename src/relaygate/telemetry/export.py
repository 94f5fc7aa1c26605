"""OTLP export for ``relaygate serve``: set up only when the host (or the environment) has not.

A library must not install a TracerProvider behind its host's back, so :class:`~relaygate.Gateway`
never calls this; the ``relaygate serve`` command does, for the process it owns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import metrics, trace

from relaygate.telemetry.otlp import Otlp

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from relaygate.recorder import Recorder, RecordingTracerProvider
    from relaygate.settings import TelemetrySettings

__all__ = ["Export", "Otlp", "configure_export", "metric_exporter", "span_exporter"]

logger = logging.getLogger("relaygate")


@dataclass
class Export:
    """The providers relaygate installed; :meth:`shutdown` flushes what is still queued."""

    tracer_provider: TracerProvider | RecordingTracerProvider | None = None
    meter_provider: MeterProvider | None = None

    def shutdown(self) -> None:
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is None:
                continue
            try:
                provider.shutdown()
            except Exception:  # an exporter that cannot flush must not stop the shutdown
                logger.exception("telemetry shutdown failed")


def _endpoint(settings: TelemetrySettings | Otlp, signal: str) -> str | None:
    given = settings.traces_endpoint if signal == "traces" else settings.metrics_endpoint
    if given:
        return given
    if settings.endpoint:
        base = settings.endpoint.rstrip("/")
        return base if settings.protocol == "grpc" else f"{base}/v1/{signal}"
    return None


def configure_export(settings: TelemetrySettings, *, recorder: Recorder | None = None) -> Export:
    """Install OTLP-exporting tracer and meter providers, unless one is already set or none is wanted.

    With a ``recorder``, finished spans go to it (a child process encodes and exports them) instead of a
    batch processor in this process, and so do the calls' histograms' measurements (it aggregates and
    exports them). Logs where spans and where metrics go (endpoints without their
    credentials), or why they go nowhere.
    """
    export = Export()
    if not settings.enabled:
        logger.info("telemetry: off (OTEL_SDK_DISABLED=true or telemetry.enabled: false); spans and metrics go nowhere")
        return export
    traces_endpoint = _endpoint(settings, "traces") if settings.traces else None
    metrics_endpoint = _endpoint(settings, "metrics") if settings.metrics else None
    if traces_endpoint is None and metrics_endpoint is None and settings.traces and settings.metrics:
        logger.info(
            "telemetry: spans and metrics go nowhere: no OTLP endpoint is set "
            "(OTEL_EXPORTER_OTLP_ENDPOINT or telemetry.endpoint)"
        )
        return export
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": settings.service_name, **settings.resource_attributes})
    headers = {key: value.get_secret_value() for key, value in settings.headers.items()}
    if traces_endpoint is None:
        logger.info("telemetry: spans go nowhere (%s)", _why_not("traces", settings))
    elif not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        logger.info("telemetry: spans go to the TracerProvider this process had already set")
    else:
        tracer_provider: TracerProvider | RecordingTracerProvider
        if recorder is not None:
            from relaygate.recorder import RecordingTracerProvider

            # Spans are recorded as plain values and handed to the recorder as they end: the SDK's per-span
            # work (attribute cleaning, limits, the processors' copy) happens in the recorder, before encoding.
            tracer_provider = RecordingTracerProvider(recorder, resource=resource)
            recorder.config = replace(
                recorder.config,
                traces_endpoint=traces_endpoint,
                otlp=Otlp.of(settings),
                resource=dict(tracer_provider.resource.attributes),
            )
        else:
            from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider = SdkTracerProvider(resource=resource)
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter(settings, traces_endpoint, headers)))
        trace.set_tracer_provider(tracer_provider)
        export.tracer_provider = tracer_provider
        logger.info("telemetry: spans go to %s (OTLP %s)", _shown(traces_endpoint), settings.protocol)
        if recorder is not None:
            logger.info("telemetry: spans are encoded and exported by the recorder process (server.recorder)")
    if metrics_endpoint is None:
        logger.info("telemetry: metrics go nowhere (%s)", _why_not("metrics", settings))
    elif not _no_meter_provider():
        logger.info("telemetry: metrics go to the MeterProvider this process had already set")
    else:
        from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(metric_exporter(settings, metrics_endpoint, headers))
        meter_provider = SdkMeterProvider(resource=resource, metric_readers=[reader])
        metrics.set_meter_provider(meter_provider)
        export.meter_provider = meter_provider
        logger.info("telemetry: metrics go to %s (OTLP %s)", _shown(metrics_endpoint), settings.protocol)
        if recorder is not None:
            # The call's histograms are aggregated and exported by the recorder (Gateway.use_recorder switches
            # them, see Telemetry.record_in); the rare counters stay on this process's provider.
            recorder.config = replace(
                recorder.config,
                metrics_endpoint=metrics_endpoint,
                otlp=Otlp.of(settings),
                resource=dict(resource.attributes),
            )
            logger.info("telemetry: the calls' histograms are aggregated and exported by the recorder process")
    return export


def _why_not(signal: str, settings: TelemetrySettings) -> str:
    if not getattr(settings, signal):
        return f"OTEL_{signal.upper()}_EXPORTER=none or telemetry.{signal}: false"
    return (
        f"no endpoint for them: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT, "
        f"telemetry.endpoint or telemetry.{signal}_endpoint"
    )


def _no_meter_provider() -> bool:
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    return isinstance(metrics.get_meter_provider(), _ProxyMeterProvider)


def span_exporter(settings: TelemetrySettings | Otlp, endpoint: str, headers: dict[str, str]) -> SpanExporter:
    """An OTLP span exporter of ``settings.protocol`` (the recorder process passes an :class:`Otlp`)."""
    if settings.protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
        except ImportError as exc:
            raise RuntimeError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc installed"
            ) from exc
        exporter: SpanExporter = GrpcSpanExporter(endpoint=endpoint, headers=headers)
        return exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, headers=headers)


def metric_exporter(settings: TelemetrySettings | Otlp, endpoint: str, headers: dict[str, str]) -> MetricExporter:
    if settings.protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
        except ImportError as exc:
            raise RuntimeError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc installed"
            ) from exc
        metric_exporter: MetricExporter = GrpcMetricExporter(endpoint=endpoint, headers=headers)
        return metric_exporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=endpoint, headers=headers)


def _shown(endpoint: str) -> str:
    """The endpoint as a log line may show it: credentials in its URL (user:token@host) left out."""
    parts = urlsplit(endpoint)
    if parts.username is None and parts.password is None:
        return endpoint
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
