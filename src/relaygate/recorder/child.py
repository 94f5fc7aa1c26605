"""The recorder process: takes batches of finished calls from the gateway and does what they left to do.

It runs as ``python -m relaygate.recorder FD``, a child process the gateway started, reading
pickled messages from its end of a socket pair (file descriptor ``FD``): first its
:class:`RecorderConfig`, then

- ``("batch", spans, calls, measurements)``: spans go to the :class:`~relaygate.recorder.sink.SpanSink`
  (OTLP export in a thread of its own); calls (records with their thread messages, packed by
  :func:`~relaygate.recorder.records.pack_call`) to a :class:`~relaygate.store.BatchWriter` on the
  recorder's own connection to the ledger's database, and are written before the next batch is read, so
  that what the recorder holds is one batch; the histograms' measurements to the
  :class:`~relaygate.recorder.metrics.MetricSink` (aggregated here, exported by the SDK's periodic reader);
- ``("stop",)``: write and export everything (metrics included), answer ``("stopped", ...)`` and exit.

After each batch it answers ``("progress", batches, resolved, dropped_calls, dropped_spans)``: the batches
done and the calls stored or given up so far, for the gateway's flow control, its ``flush`` and its drop
metric. When the pipe closes (the gateway went away without a stop) it writes what it received and exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from relaygate.telemetry.otlp import Otlp

__all__ = ["RecorderConfig", "main"]

logger = logging.getLogger("relaygate.recorder")


@dataclass(frozen=True)
class RecorderConfig:
    """What the recorder process needs to know (it is pickled to it): plain values only, so that the recorder
    imports neither the settings (pydantic) nor the gateway to read it."""

    database: str | None = None
    traces_endpoint: str | None = None
    metrics_endpoint: str | None = None
    otlp: Otlp = field(default_factory=Otlp)
    resource: dict[str, Any] = field(default_factory=dict)
    writer_options: dict[str, Any] = field(default_factory=dict)
    max_spans: int = 8192
    close_timeout: float = 20.0
    # Run at idle priority (SCHED_IDLE, Linux): see _idle_priority.
    idle_priority: bool = True


def main(conn: Connection, config: RecorderConfig) -> None:
    # Ctrl-C in a terminal reaches the whole process group, and so does a stop by systemd (its default
    # KillMode sends SIGTERM to every process of the service), timeout or `kill -- -PGID`: the gateway stops
    # the recorder itself, after handing it everything, so the recorder does not stop on its own. Should the
    # gateway die without stopping it, its end of the pipe closes and the recorder writes what it has and exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if config.idle_priority:
        _idle_priority()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    asyncio.run(_run(conn, config))


async def _run(conn: Connection, config: RecorderConfig) -> None:
    loop = asyncio.get_running_loop()
    # Two messages at most wait in the recorder: when it falls behind (a database that is down), the pipe
    # fills and the gateway counts and drops what it cannot hand over, so no process grows without bound.
    inbox: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=2)

    writer: Any = None

    def read() -> None:
        while True:
            try:
                data: bytes | None = conn.recv_bytes()
            except (EOFError, OSError):
                data = None
                if writer is not None:
                    # The gateway is gone: a write being retried gives up after close_timeout, so that the
                    # recorder exits rather than retry for ever.
                    asyncio.run_coroutine_threadsafe(writer.aclose(), loop)
            asyncio.run_coroutine_threadsafe(inbox.put(data), loop).result()
            if data is None:
                return

    threading.Thread(target=read, name="relaygate-recorder-read", daemon=True).start()
    sink = _sink(config)
    metric_sink = _metric_sink(config)
    received = 0
    batches = 0
    stopped = False
    async with AsyncExitStack() as stack:
        if config.database is not None:
            from relaygate.store import BatchWriter, open_store

            store = await stack.enter_async_context(open_store(config.database))
            options = {"close_timeout": config.close_timeout, **config.writer_options}
            writer = await stack.enter_async_context(BatchWriter(store, **options))

        def report(kind: str) -> None:
            resolved = received - (writer.pending if writer is not None else 0)
            dropped = (writer.dropped + writer.stats.rejected) if writer is not None else 0
            try:
                spans = sink.dropped if sink is not None else 0
                conn.send_bytes(pickle.dumps((kind, batches, resolved, dropped, spans)))
            except OSError:
                pass  # the gateway is gone

        while True:
            data = await inbox.get()
            if data is None:
                break
            message = pickle.loads(data)
            if message[0] == "stop":
                stopped = True
                break
            _, spans, calls, measurements = message
            if spans and sink is not None:
                sink.add(spans)
            if measurements and metric_sink is not None:
                metric_sink.add(measurements)
            if calls:
                received += len(calls)
                if writer is not None:
                    _submit_calls(writer, calls)
                    await writer.flush()
            batches += 1
            report("progress")
        if writer is not None:
            await writer.aclose()
    if sink is not None:
        await asyncio.to_thread(sink.close, config.close_timeout)
    if metric_sink is not None:
        await asyncio.to_thread(metric_sink.close, config.close_timeout)
    if stopped:
        report("stopped")


def _idle_priority() -> None:
    """The recorder takes only CPU time nothing else wants (SCHED_IDLE; threads started later inherit it).

    Sharing a core with the serving process at normal priority, the recorder's batches (a few tens of
    milliseconds of encoding and writing) held back the requests that arrived meanwhile until the scheduler
    switched: several milliseconds at p99 with one connection. An idle-priority task gives way at once to a
    waking one. When requests leave it no time at all, the recorder falls behind, and the gateway then holds
    new requests back until it has caught up (``Recorder.room``), so nothing is dropped for want of CPU. An
    unprivileged process cannot raise its priority again, so this is set once, in the recorder only."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or a policy the system refuses: normal priority
        logger.debug("recorder: idle priority is not available here")


def _sink(config: RecorderConfig) -> Any:
    if config.traces_endpoint is None:
        return None
    from opentelemetry.sdk.resources import Resource

    from relaygate.recorder.sink import SpanSink
    from relaygate.telemetry.export import span_exporter

    exporter = span_exporter(config.otlp, config.traces_endpoint, dict(config.otlp.headers))
    return SpanSink(exporter, Resource(config.resource), max_queue=config.max_spans)


def _metric_sink(config: RecorderConfig) -> Any:
    if config.metrics_endpoint is None:
        return None
    from opentelemetry.sdk.resources import Resource

    from relaygate.recorder.metrics import MetricSink
    from relaygate.telemetry.export import metric_exporter

    exporter = metric_exporter(config.otlp, config.metrics_endpoint, dict(config.otlp.headers))
    return MetricSink(exporter, Resource(config.resource))


def _submit_calls(writer: Any, calls: list[Any]) -> None:
    from relaygate.recorder.records import unpack_call

    for packed in calls:
        writer.submit(*unpack_call(packed))


def run_from_fd(fd: int) -> None:
    """``python -m relaygate.recorder FD``: the config first, then :func:`main`."""
    connection = Connection(fd)
    main(connection, pickle.loads(connection.recv_bytes()))
