"""How the gateway runs as a service: the server and OpenTelemetry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from relaygate.settings.base import SettingsModel

__all__ = ["ServerSettings", "TelemetrySettings"]


class ServerSettings(SettingsModel):
    """How ``relaygate serve`` runs uvicorn; command-line options override these."""

    # The address to bind (--host).
    host: str = "127.0.0.1"
    # The port to bind (--port).
    port: int = Field(8080, ge=0, le=65535)
    # Worker processes (--workers); they share limits only through counters: redis://...
    workers: int = Field(1, ge=1)
    # The path prefix a reverse proxy serves the gateway under and strips (--root-path).
    root_path: str = ""
    # Comma-separated proxy addresses whose X-Forwarded-For and X-Forwarded-Proto are trusted
    # (--forwarded-allow-ips).
    forwarded_allow_ips: str = "127.0.0.1"
    # Log every request (--access-log).
    access_log: bool = False
    # Once the gateway has started, its start-up's objects are moved out of the garbage collector's sight
    # (gc.freeze) and the collector runs less often (gc.set_threshold with these three numbers): a request
    # allocates a few hundred short-lived objects, and Python's defaults (700, 10, 10) would run a
    # generation-1 pass of several milliseconds every few dozen requests. null leaves the collector alone.
    # Only `relaygate serve` does this; a gateway mounted in a host app leaves the host's collector as it is.
    gc_thresholds: tuple[int, int, int] | None = (50_000, 50, 1_000)
    # Run a child process, the recorder, that exports spans and writes the ledger's rows, so that the
    # serving process does not encode or write them (see docs/guides/performance.md). false does that work
    # in the serving process itself, as a gateway mounted in a host app always does.
    recorder: bool = True
    # The recorder's CPU priority. idle (SCHED_IDLE, Linux): it runs only when the serving process leaves the
    # core free, and gives way at once when a request arrives; when requests keep the core busy and it falls
    # behind, new requests wait until it has caught up (nothing is dropped for want of CPU). normal: it
    # competes with the serving process like any other process (a request arriving during one of its batches
    # waits for the scheduler; one connection's p99 is several milliseconds higher on a shared core). Choose
    # normal where other programs keep the machine's cores busy: an idle-priority recorder yields to them too.
    recorder_priority: Literal["idle", "normal"] = "idle"
    # Seconds a client has to send a request's line and headers, from when it connects or starts the
    # request; then the connection is closed (with a 408 when part of the head came).
    header_timeout: float = Field(10.0, gt=0)
    # Seconds a client has to send a request's whole body once its headers are in; then 408
    # request_timeout, and the connection is closed.
    body_timeout: float = Field(60.0, gt=0)
    # Seconds an idle keep-alive connection stays open between requests.
    keep_alive_timeout: float = Field(5.0, gt=0)
    # Open connections per worker; more are closed as soon as they are accepted. Never more than three
    # quarters of the process's open-file limit (ulimit -n), so that upstream calls keep descriptors.
    max_connections: int = Field(1000, ge=1)


class TelemetrySettings(SettingsModel):
    """OpenTelemetry. The standard ``OTEL_*`` variables override these when the config is loaded.

    relaygate always records through the global (or an injected) TracerProvider; a host that set one
    up keeps it. ``relaygate serve`` installs an OTLP exporter only when no provider exists and an
    endpoint is given, so that a gateway without a collector does not log export failures.
    """

    enabled: bool = True  # OTEL_SDK_DISABLED=true turns it off
    service_name: str = "relaygate"  # OTEL_SERVICE_NAME
    resource_attributes: dict[str, str] = Field(default_factory=dict)  # OTEL_RESOURCE_ATTRIBUTES
    endpoint: str | None = None  # OTEL_EXPORTER_OTLP_ENDPOINT; /v1/traces and /v1/metrics are added
    traces_endpoint: str | None = None  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as given
    metrics_endpoint: str | None = None  # OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, used as given
    protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"  # OTEL_EXPORTER_OTLP_PROTOCOL
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # OTEL_EXPORTER_OTLP_HEADERS
    traces: bool = True  # export spans; OTEL_TRACES_EXPORTER=none turns it off
    metrics: bool = True  # record and export metrics; OTEL_METRICS_EXPORTER=none turns it off
    # Prompts and answers on the spans (gen_ai.input.messages, ...); off unless asked for, also by
    # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY|SPAN_AND_EVENT|true.
    capture_content: bool = False
    # The most bytes of one captured attribute (a prompt, the system instructions, an answer); what is
    # beyond is cut and marked "…[truncated N bytes]", and the span lists the attribute in
    # relaygate.content.truncated. 0: no cap (collectors refuse exports of many megabytes).
    capture_content_max_bytes: int = Field(default=65536, ge=0)
    # Also emit LangDB's names (langdb.thread_id, langdb.run_id, langdb.label).
    langdb_attributes: bool = False
