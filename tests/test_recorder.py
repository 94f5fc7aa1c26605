"""The recorder: spans exported and ledger rows written by a child process, and what happens when it fails.

Each test runs a real gateway in process (the fake OpenAI server upstream, a real SQLite or PostgreSQL
ledger, the real OTLP receiver as collector) with a real recorder process, as ``relaygate serve`` runs it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from relaygate import Gateway
from relaygate.recorder import METRIC_DROPPED, Recorder, RecorderConfig, RecordingTracerProvider
from relaygate.settings import Settings
from tests.conftest import KEY_A, make_settings
from tests.otlp import OtlpReceiver

pytestmark = pytest.mark.anyio

RESOURCE = {"service.name": "relaygate-recorder-test"}
HEADERS = {"authorization": f"Bearer {KEY_A}", "x-thread-id": "thread-1", "x-run-id": "run-1", "x-label": "l"}


def _chat(content: str) -> dict[str, Any]:
    return {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": content}]}


@asynccontextmanager
async def _served(
    settings: Settings,
    *,
    traces_url: str | None = None,
    recorder: bool = True,
    metrics: InMemoryMetricReader | None = None,
    **options: Any,
) -> AsyncIterator[tuple[Gateway, Recorder | None, httpx.AsyncClient]]:
    """A gateway as ``relaygate serve`` builds it, with or without a recorder, spans going to ``traces_url``."""
    tracer_provider: TracerProvider | RecordingTracerProvider = TracerProvider(resource=Resource(RESOURCE))
    meter_provider = MeterProvider(metric_readers=[metrics] if metrics is not None else [])
    the_recorder = None
    if recorder:
        config = RecorderConfig(
            **{
                "database": settings.database,
                "traces_endpoint": traces_url,
                "resource": RESOURCE,
                **options.pop("config", {}),
            }
        )
        the_recorder = Recorder(config, meter=meter_provider.get_meter("relaygate"), **options)
        if traces_url is not None:
            tracer_provider = RecordingTracerProvider(the_recorder, resource=Resource(RESOURCE))
    elif traces_url is not None:
        assert isinstance(tracer_provider, TracerProvider)
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
    gateway = Gateway(settings, tracer_provider=tracer_provider, meter_provider=meter_provider)
    if the_recorder is not None:
        gateway.use_recorder(the_recorder)
    transport = httpx.ASGITransport(app=gateway.app)
    try:
        async with (
            gateway.lifespan(),
            httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=HEADERS) as client,
        ):
            yield gateway, the_recorder, client
    finally:
        tracer_provider.shutdown()


async def _traces(client: httpx.AsyncClient, count: int, start: int = 0) -> list[str]:
    ids = []
    for index in range(start, start + count):
        response = await client.post("/v1/chat/completions", json=_chat(f"call {index}"))
        assert response.status_code == 200, response.text
        ids.append(response.headers["x-trace-id"])
    return ids


async def _stored(gateway: Gateway, trace_ids: list[str]) -> list[str]:
    assert gateway.ledger is not None
    found = []
    for trace_id in trace_ids:
        if await gateway.ledger.store.calls_of_trace("proj-a", trace_id):
            found.append(trace_id)
    return found


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _dropped(reader: InMemoryMetricReader) -> dict[str, int]:
    out: dict[str, int] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == METRIC_DROPPED:
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes or {})
                        out[str(attributes["relaygate.record"])] = int(getattr(point, "value", 0))
    return out


def _comparable(spans: list[Any]) -> list[tuple[str, str, dict[str, Any], list[Any]]]:
    """Spans without what differs between two runs of the same calls (ids, times, durations)."""
    varying = {"gen_ai.response.time_to_first_chunk", "relaygate.guard.duration"}
    return sorted(
        (
            span.name,
            span.kind,
            {k: v for k, v in span.attributes.items() if k not in varying},
            [(name, {k: v for k, v in attrs.items() if k not in varying}) for name, attrs in span.events],
        )
        for span in spans
    )


async def test_spans_and_rows_come_out_of_the_recorder_as_they_do_in_process(
    upstream_url: str, database_url: str, tmp_path: Path
) -> None:
    results = {}
    for recorder in (False, True):
        url = database_url if recorder else f"sqlite:///{tmp_path / 'in-process.db'}"
        with OtlpReceiver() as receiver:
            async with _served(
                make_settings(upstream_url, database=url), traces_url=receiver.traces_url, recorder=recorder
            ) as (
                gateway,
                the_recorder,
                client,
            ):
                traces = await _traces(client, 5)
                await gateway.ledger.writer.flush()  # type: ignore[union-attr]
                if the_recorder is not None:
                    assert the_recorder.pid is not None and the_recorder.pid != os.getpid()
                assert await _stored(gateway, traces) == traces
                rows = [(await gateway.ledger.store.calls_of_trace("proj-a", t))[0] for t in traces]  # type: ignore[union-attr]
            # The stop flushed every span before the gateway's lifespan ended.
            spans = [span for span in receiver.spans if span.trace_id in traces]
            assert len(spans) == 10  # the request's span and its attempt's, for each call
            assert all(span.resource["service.name"] == RESOURCE["service.name"] for span in spans)
        results[recorder] = (_comparable(spans), [(r.model, r.prompt_tokens, r.cost_nanos, r.thread_id) for r in rows])
    assert results[True] == results[False]


async def test_a_clean_stop_writes_and_exports_every_record(upstream_url: str, tmp_path: Path) -> None:
    settings = make_settings(upstream_url, database=f"sqlite:///{tmp_path / 'ledger.db'}")
    with OtlpReceiver() as receiver:
        # A long interval: the records are still queued in the gateway when the stop begins.
        async with _served(settings, traces_url=receiver.traces_url, interval=30.0) as (gateway, recorder, client):
            traces = await _traces(client, 20)
            assert recorder is not None and recorder.pending == 20
        assert len({span.trace_id for span in receiver.spans} & set(traces)) == 20
    async with _served(settings, recorder=False) as (gateway, _, client):
        assert await _stored(gateway, traces) == traces


async def test_a_killed_recorder_is_noticed_and_restarted_and_loses_no_more_than_it_held(
    upstream_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(upstream_url, database=f"sqlite:///{tmp_path / 'ledger.db'}")
    with OtlpReceiver() as receiver:
        async with _served(settings, traces_url=receiver.traces_url) as (gateway, recorder, client):
            assert recorder is not None
            before = await _traces(client, 5)
            await recorder.flush()
            first = recorder.pid
            assert first is not None
            with caplog.at_level(logging.ERROR, logger="relaygate.recorder"):
                os.kill(first, signal.SIGKILL)
                # The new recorder's pid is set just after the restart is counted.
                await anyio.to_thread.run_sync(
                    _wait_for, lambda: recorder.restarts == 1 and recorder.pid not in (None, first)
                )
            assert "the recorder process exited" in caplog.text
            after = await _traces(client, 5, start=5)
            await recorder.flush()
            assert await _stored(gateway, before + after) == before + after
        exported = {span.trace_id for span in receiver.spans}
        assert set(after) <= exported


class _SlowCollector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes ``delay`` seconds to accept each export."""

    delay = 3.0
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.delay)
        type(self).received += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def slow_collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowCollector)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    server.shutdown()
    server.server_close()


async def test_a_slow_collector_costs_spans_counted_in_a_metric_not_memory(
    upstream_url: str, tmp_path: Path, slow_collector: str
) -> None:
    settings = make_settings(upstream_url, database=f"sqlite:///{tmp_path / 'ledger.db'}")
    reader = InMemoryMetricReader()
    async with _served(
        settings, traces_url=slow_collector, metrics=reader, config={"max_spans": 4, "close_timeout": 5.0}
    ) as (gateway, recorder, client):
        assert recorder is not None
        traces = await _traces(client, 30)
        await recorder.flush()  # the calls are written though the spans wait for the collector
        assert await _stored(gateway, traces) == traces
        await anyio.to_thread.run_sync(_wait_for, lambda: _dropped(reader).get("span", 0) > 0)
    dropped = _dropped(reader)["span"]
    # Every span was either exported or counted as dropped: the recorder held at most its 4.
    assert 0 < dropped <= 60


class _Forwarder:
    """A TCP forwarder to PostgreSQL that can be cut (the database is then down for the gateway) and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = True
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.AbstractServer | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    async def _start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut(self) -> None:
        def close_all() -> None:
            self.up = False
            for writer in self.writers:
                writer.transport.abort()
            self.writers.clear()

        self.loop.call_soon_threadsafe(close_all)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        async def shut() -> None:
            assert self.server is not None
            self.server.close()
            for writer in self.writers:
                writer.transport.abort()
            await asyncio.sleep(0.1)

        self.up = False
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


async def test_a_database_that_is_down_costs_calls_counted_in_a_metric_and_bounded_memory(
    upstream_url: str, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from urllib.parse import urlsplit

    from tests.databases import drop_schemas, new_schema

    parts = urlsplit(postgres_url)
    forwarder = _Forwarder((parts.hostname or "127.0.0.1", parts.port or 5432))
    schema = new_schema()
    # The recorder reaches the database through the forwarder; the gateway reads it directly.
    forwarded = f"postgresql://{parts.username}@127.0.0.1:{forwarder.port}{parts.path}?schema={schema}"
    reader = InMemoryMetricReader()
    settings = make_settings(upstream_url, database=f"{postgres_url}?schema={schema}")
    try:
        async with _served(settings, metrics=reader, max_pending=10, batch=2, config={"database": forwarded}) as (
            gateway,
            recorder,
            client,
        ):
            assert recorder is not None
            first = await _traces(client, 3)
            await recorder.flush()
            forwarder.cut()
            with caplog.at_level(logging.WARNING, logger="relaygate.recorder"):
                # The recorder retries the write; the pipe fills; the gateway's queue holds at most 10.
                down = await _traces(client, 200, start=3)
                assert len(recorder._queue) <= 10
                await anyio.to_thread.run_sync(_wait_for, lambda: _dropped(reader).get("call", 0) > 0)
            assert "call records dropped" in caplog.text
            forwarder.restore()
            await recorder.flush()  # what waited is written once the database is back
            later = await _traces(client, 3, start=203)
            await recorder.flush()
            stored = await _stored(gateway, first + down + later)
            assert stored[:3] == first and stored[-3:] == later
            dropped = _dropped(reader)["call"]
            # Every call is either stored or counted as dropped.
            assert len(stored) + dropped == len(first + down + later)
    finally:
        forwarder.close()
        await drop_schemas(schema)
