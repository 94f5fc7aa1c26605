"""The gateway's side of the recorder: a bounded queue of finished calls and spans, handed in batches to a
child process (:mod:`relaygate.recorder.child`) by a thread, and that child watched and restarted.

The request's path only appends to the queue (:meth:`Recorder.submit_call`, :meth:`Recorder.submit_span`,
:meth:`Recorder.submit_metric`); a sender thread pickles what waits every ``interval`` seconds (or as soon as
``batch`` records wait) and writes it to the recorder's pipe, each call packed as a tuple of plain values
(:mod:`relaygate.recorder.records`).

Faults:

- **The recorder dies** (killed, out of memory): the sender notices (its write fails, or the process is
  found dead), counts what the recorder had received and not yet stored as dropped, logs an error, and
  starts a new recorder; what waits in the queue goes to the new one. The recorder is handed at most
  ``IN_FLIGHT`` (2) batches it has not finished, so a crash loses at most those.
- **The collector or the database is slow or down**: the recorder finishes no batch while it retries,
  no further batch is handed over, and the queue here grows up to ``max_pending`` records; beyond that
  new records are dropped, counted in the ``relaygate.recorder.dropped`` metric (by kind: ``call``,
  ``span`` or ``metric``, a histogram's measurement) and logged (the first, then every thousandth). The
  recorder's own drops (its span queue, calls the database refused) are added to the same metric.
- **The recorder falls behind for want of CPU** (it runs at idle priority, ``SCHED_IDLE``, so that it
  never delays a request on a shared core; see :mod:`relaygate.recorder.child`): once ``high_water``
  records wait here, requests entering the gateway first wait (:meth:`Recorder.room`, the
  :class:`~relaygate.recorder.gate.Gate`) until the recorder has caught up, which frees the core for it, and
  only while it keeps finishing batches (a stuck recorder is as above).
- **A clean stop** (:meth:`Recorder.stop`) hands over everything queued, then asks the recorder to write
  and export all of it and waits for its answer (at most ``close_timeout`` seconds plus a margin).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from relaygate.recorder.child import RecorderConfig
from relaygate.recorder.drops import CALL as _CALL
from relaygate.recorder.drops import METRIC as _METRIC
from relaygate.recorder.drops import METRIC_DROPPED, Drops
from relaygate.recorder.drops import SPAN as _SPAN
from relaygate.recorder.gate import Gate
from relaygate.recorder.process import Child
from relaygate.recorder.records import pack_call

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

    from relaygate.store import CallRecord, MessageRecord
    from relaygate.telemetry.histograms import MeasurementTuple

__all__ = ["METRIC_DROPPED", "Recorder"]

logger = logging.getLogger("relaygate.recorder")

# Batches handed to the recorder and not yet done: what a crash of the recorder can lose.
IN_FLIGHT = 2


class Recorder:
    """See the module docstring. ``start()`` on the event loop that serves; ``stop()`` at shutdown."""

    def __init__(
        self,
        config: RecorderConfig,
        *,
        max_pending: int = 20_000,
        batch: int = 512,
        interval: float = 0.2,
        high_water: int | None = None,
        stall: float = 0.2,
        meter: Meter | None = None,
    ) -> None:
        self.config = config
        self.max_pending = max_pending
        self.batch = batch
        self.interval = interval
        high_water = min(4 * batch, max_pending) if high_water is None else high_water
        high_water = high_water if high_water > 0 else max_pending + 1
        self.gate = Gate(high_water=high_water, low_water=min(batch, high_water // 2), stall=stall)
        self._queue: deque[tuple[int, Any]] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._process: Child | None = None
        self._conn: Connection | None = None
        self._sender: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._progress: list[tuple[int, asyncio.Future[None]]] = []
        self._stopped = threading.Event()
        self._abandoned = False
        self._acked = threading.Event()
        self._batches_sent = self._batches_done = 0
        self._lock = threading.Lock()
        # Calls: accepted into the queue, and resolved (stored, refused or dropped) since the start.
        self.accepted = 0
        self.resolved = 0
        self.restarts = 0
        # What the current recorder process was sent, and what it reported back.
        self._sent = 0
        self._child_resolved = 0
        self._drops = Drops(meter)

    # --- the request's path ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Calls accepted and not yet stored (or given up)."""
        return self.accepted - self.resolved

    @property
    def congested(self) -> bool:
        """Whether the recorder is behind: ``high_water`` records wait to be handed over."""
        return len(self._queue) >= self.gate.high_water and not self._closing

    async def room(self) -> None:
        """Wait while the recorder is behind and catching up (see :mod:`relaygate.recorder.gate`)."""
        if self._loop is not None:
            await self.gate.wait(self._loop, lambda: self.congested, self._wake.set)

    def submit_span(self, span: tuple[Any, ...]) -> None:
        if self._closing or len(self._queue) >= self.max_pending:
            self._drop(_SPAN, 1, "the recorder is stopped" if self._closing else "its queue is full")
            return
        self._queue.append((_SPAN, span))
        if len(self._queue) >= self.batch and not self._wake.is_set():
            self._wake.set()

    def submit_call(self, call: CallRecord, messages: Sequence[MessageRecord] = ()) -> bool:
        if self._closing or len(self._queue) >= self.max_pending:
            with self._lock:
                self.accepted += 1
                self.resolved += 1
            self._drop(_CALL, 1, "the recorder is stopped" if self._closing else "its queue is full")
            return False
        with self._lock:
            self.accepted += 1
        self._queue.append((_CALL, (call, tuple(messages))))
        if len(self._queue) >= self.batch and not self._wake.is_set():
            self._wake.set()
        return True

    def submit_metric(self, measurement: MeasurementTuple) -> None:
        """A histogram's measurement, for the recorder's meter provider (see :mod:`relaygate.telemetry.histograms`)."""
        if self._closing or len(self._queue) >= self.max_pending:
            self._drop(_METRIC, 1, "the recorder is stopped" if self._closing else "its queue is full")
            return
        self._queue.append((_METRIC, measurement))
        if len(self._queue) >= self.batch and not self._wake.is_set():
            self._wake.set()

    def _drop(self, kind: int, count: int, reason: str) -> None:
        self._drops.add(kind, count, reason)

    @property
    def dropped_calls(self) -> int:
        return self._drops.counts[_CALL]

    @property
    def dropped_spans(self) -> int:
        return self._drops.counts[_SPAN]

    @property
    def dropped_metrics(self) -> int:
        return self._drops.counts[_METRIC]

    # --- start, flush, stop ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        if self._sender is not None:
            return
        self._loop = asyncio.get_running_loop()
        # The sender thread starts the recorder process: the gateway's start-up does not wait for it, and what
        # the first calls record waits in the queue meanwhile.
        self._sender = threading.Thread(target=self._send_loop, name="relaygate-recorder-send", daemon=True)
        self._sender.start()

    async def flush(self) -> None:
        """Return once every call accepted before this one is stored (or given up)."""
        target = self.accepted
        if self.resolved >= target or self._sender is None:
            return
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            self._progress.append((target, future))
        self._wake.set()
        await future

    async def stop(self) -> None:
        """Hand over everything queued, have the recorder write and export it, and wait for it."""
        if self._sender is None:
            return
        self._closing = True
        self._wake.set()
        sender, self._sender = self._sender, None
        # The recorder has close_timeout to finish; a sender still blocked after that (a recorder that stopped
        # reading: its database is down) is released by stopping the recorder, and what it held is lost.
        await asyncio.to_thread(sender.join, self.config.close_timeout + 10)
        if sender.is_alive():
            self._abandoned = True
            process = self._process
            if process is not None and process.is_alive():
                process.kill()
            await asyncio.to_thread(sender.join)
        self._settle_waiters(force=True)

    # --- the sender thread ----------------------------------------------------------------------------

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        # A fresh interpreter that imports only the recorder (multiprocessing's spawn would import the
        # serving process's __main__, the whole gateway, and start a resource tracker besides).
        process = Child(
            subprocess.Popen(
                [sys.executable, "-m", "relaygate.recorder", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        )
        theirs.close()
        conn = Connection(ours.detach())
        conn.send_bytes(pickle.dumps(self.config, protocol=pickle.HIGHEST_PROTOCOL))
        self._process, self._conn = process, conn
        self._sent = self._child_resolved = 0
        self._batches_sent = self._batches_done = 0
        self._drops.new_child()
        threading.Thread(target=self._receive, args=(conn,), name="relaygate-recorder-receive", daemon=True).start()
        logger.info("recorder: started (pid %s)", process.pid)

    def _send_loop(self) -> None:
        self._spawn()
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            closing = self._closing
            while self._queue and not self._abandoned and self._can_send():
                self._send_batch()
            if self._abandoned:
                self._give_up()
                return
            if not self._alive():
                self._restart()
                continue
            if closing and not self._queue:
                self._stop_child()
                return

    def _send_batch(self) -> None:
        spans: list[Any] = []
        calls: list[Any] = []
        measurements: list[Any] = []
        kinds = (spans, calls, measurements)
        for _ in range(min(self.batch, len(self._queue))):
            kind, item = self._queue.popleft()
            kinds[kind].append(item)
        self.gate.release(len(self._queue), self._loop)
        calls[:] = [pack_call(call, messages) for call, messages in calls]
        data = pickle.dumps(("batch", spans, calls, measurements), protocol=pickle.HIGHEST_PROTOCOL)
        self._sent += len(calls)
        self._batches_sent += 1
        try:
            assert self._conn is not None
            self._conn.send_bytes(data)
        except (OSError, AssertionError):
            # The recorder is gone: this batch goes with it (counted as the crash's loss).
            self._restart()

    def _can_send(self) -> bool:
        """Whether the recorder has room for another batch: it holds at most ``IN_FLIGHT`` batches (the pipe's
        own buffer would otherwise hide a recorder that fell behind, and a crash would lose all of it)."""
        if self._batches_sent - self._batches_done < IN_FLIGHT:
            return True
        self._acked.wait(self.interval)
        self._acked.clear()
        return self._batches_sent - self._batches_done < IN_FLIGHT

    def _alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _give_up(self) -> None:
        """The stop's deadline passed: what the recorder held and what still waits here is lost."""
        queued = [item for kind, item in self._queue if kind == _CALL]
        measurements = sum(1 for kind, _ in self._queue if kind == _METRIC)
        spans = len(self._queue) - len(queued) - measurements
        self._queue.clear()
        lost = self._sent - self._child_resolved + len(queued)
        with self._lock:
            self.resolved += lost
        self._drop(_CALL, lost, "the recorder did not finish before the stop's deadline")
        self._drop(_SPAN, spans, "the recorder did not finish before the stop's deadline")
        self._drop(_METRIC, measurements, "the recorder did not finish before the stop's deadline")
        if self._process is not None:
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()

    def _restart(self) -> None:
        if self._abandoned:
            return
        process = self._process
        code = process.exitcode if process is not None else None
        if process is not None:
            process.join(1)
            if process.is_alive():
                process.kill()
                process.join()
            code = process.exitcode
        lost = self._sent - self._child_resolved
        with self._lock:
            self.resolved += lost
        self._drop(_CALL, lost, "the recorder died before storing them")
        self.restarts += 1
        logger.error("recorder: the recorder process exited (code %s); %d calls lost; starting a new one", code, lost)
        if self._conn is not None:
            self._conn.close()
        self._spawn()
        self._settle_waiters()

    def _stop_child(self) -> None:
        conn, process = self._conn, self._process
        assert conn is not None and process is not None
        try:
            conn.send_bytes(pickle.dumps(("stop",)))
        except OSError:
            pass
        if not self._stopped.wait(self.config.close_timeout + 10):
            logger.error("recorder: the recorder did not finish within %.0f s; stopping it", self.config.close_timeout)
            process.kill()
            lost = self._sent - self._child_resolved
            with self._lock:
                self.resolved += lost
            self._drop(_CALL, lost, "the recorder did not finish in time")
        process.join(10)
        conn.close()

    # --- the receiver thread --------------------------------------------------------------------------

    def _receive(self, conn: Connection) -> None:
        while True:
            try:
                kind, batches, resolved, dropped_calls, dropped_spans = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                self._wake.set()  # the sender finds the process dead and restarts it
                self._acked.set()
                return
            if conn is not self._conn:
                return
            self._batches_done = batches
            self.gate.progress()
            self._acked.set()
            with self._lock:
                self.resolved += resolved - self._child_resolved
                self._child_resolved = resolved
            # Drops the recorder counted (its span queue, calls the database refused) go to the same metric.
            self._drops.child_reported(dropped_calls, dropped_spans)
            self._settle_waiters()
            if kind == "stopped":
                self._stopped.set()
                return

    def _settle_waiters(self, *, force: bool = False) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            ready = [future for target, future in self._progress if force or self.resolved >= target]
            self._progress = [(t, f) for t, f in self._progress if not (force or self.resolved >= t)]
        for future in ready:
            loop.call_soon_threadsafe(_done, future)


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
