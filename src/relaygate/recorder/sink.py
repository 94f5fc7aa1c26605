"""The recorder's span sink: a bounded queue of spans that one thread exports to the OTLP collector in batches."""

from __future__ import annotations

import logging
import threading
from collections import deque

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from relaygate.recorder.wire import SpanTuple, unpack_span

__all__ = ["SpanSink"]

logger = logging.getLogger("relaygate.recorder")

DROP_LOG_EVERY = 1000


class SpanSink:
    """Exports spans in batches of ``batch`` every ``interval`` seconds (or as soon as a batch waits).

    At most ``max_queue`` spans wait: a collector too slow to keep up costs the newest spans, counted in
    :attr:`dropped` and logged (the first, then every thousandth), never the recorder's memory.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        resource: Resource,
        *,
        max_queue: int = 8192,
        batch: int = 512,
        interval: float = 0.2,
    ) -> None:
        self.exporter = exporter
        self.resource = _HashedResource(resource)
        # The limits the SDK's tracer would have applied in the serving process (OTEL_SPAN_*_LIMIT).
        self.limits = SpanLimits()
        self.max_queue = max_queue
        self.batch = batch
        self.interval = interval
        self.exported = 0
        self.dropped = 0
        self._queue: deque[SpanTuple] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="relaygate-span-export", daemon=True)
        self._thread.start()

    def add(self, spans: list[SpanTuple]) -> None:
        room = self.max_queue - len(self._queue)
        if room < len(spans):
            self._drop(len(spans) - max(room, 0), f"{self.max_queue} spans are waiting for the collector")
            spans = spans[: max(room, 0)]
        self._queue.extend(spans)
        if len(self._queue) >= self.batch:
            self._wake.set()

    def _drop(self, count: int, reason: str) -> None:
        before = self.dropped
        self.dropped += count
        if before // DROP_LOG_EVERY != self.dropped // DROP_LOG_EVERY or before == 0:
            logger.warning("recorder: %d spans dropped (%s); %d dropped so far", count, reason, self.dropped)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            closing = self._closing
            while self._queue:
                packed = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
                try:
                    result = self.exporter.export([unpack_span(span, self.resource, self.limits) for span in packed])
                except Exception:
                    logger.exception("recorder: exporting spans failed")
                    result = SpanExportResult.FAILURE
                if result is SpanExportResult.SUCCESS:
                    self.exported += len(packed)
                else:
                    self._drop(len(packed), "the collector did not take them")
            if closing:
                return

    def close(self, timeout: float) -> None:
        """Export what waits (for at most ``timeout`` seconds), then shut the exporter down."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._drop(len(self._queue), "the recorder stopped before the collector took them")
            self._queue.clear()
        self.exporter.shutdown()


class _HashedResource(Resource):
    """The spans' resource, its hash worked out once: the OTLP encoder groups a batch's spans by resource and
    hashes it for every span (a JSON dump of its attributes each time)."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash
