"""The :class:`BatchWriter`: takes call records off the request's path and writes them in batches.

``submit()`` is synchronous and constant-time: it appends to a bounded in-memory queue and returns. A
background task writes what is queued every ``flush_interval`` seconds, or as soon as ``max_batch``
records wait, each batch in one :meth:`Store.write` transaction.

Failures:

- A write that fails for any other reason than the data (database down, locked, connection lost) is
  retried with exponential backoff (``retry_initial`` doubling up to ``retry_max``), keeping the batch and
  its order. Meanwhile new records keep queueing.
- A batch the database refuses (:class:`RecordRejectedError`) is split in halves and retried, so one bad
  record costs only itself: it is counted in ``rejected`` and logged, and the rest is written.
- When ``max_pending`` records wait (queued plus the batch being written), a new record is *dropped*:
  counted in ``dropped`` and logged as a warning (the first drop, then every ``DROP_LOG_EVERY``th). The
  newest is dropped rather than the oldest so the request path never does more than an append or a
  count, and what was queued first is written first.

``await aclose()`` (or leaving ``async with``) stops accepting, writes everything still queued and only
then returns: a clean stop loses nothing. If the database stays unreachable for ``close_timeout``
seconds during close, the rest is counted as dropped and logged as an error, so a shutdown cannot hang
for ever.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import anyio
import anyio.abc

from relaygate.store.base import CallRecord, MessageRecord, RecordRejectedError, Store

__all__ = ["BatchWriter", "WriterStats"]

logger = logging.getLogger("relaygate.store")

DROP_LOG_EVERY = 1000

_Entry = tuple[CallRecord, tuple[MessageRecord, ...]]


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters of a :class:`BatchWriter` (calls; their messages ride along and are counted apart)."""

    submitted: int  # accepted by submit()
    written: int  # calls stored
    written_messages: int
    dropped: int  # refused by submit() (queue full or writer closed), or given up at close
    rejected: int  # refused by the database (bad data), after isolating them
    retries: int  # failed write attempts that were retried
    pending: int  # accepted and not yet stored


class _GaveUp(Exception):
    """The close deadline passed with the database still failing."""


class BatchWriter:
    """Writes :class:`CallRecord` s (with their messages) to a :class:`Store` in the background.

    Use ``async with BatchWriter(store) as writer:`` (it runs its own task), or start :meth:`run` in
    your task group and ``await writer.aclose()`` at the end. :meth:`submit` must be called from the
    event loop's thread (it is not thread-safe), which is where request handlers run.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_pending: int = 10_000,
        max_batch: int = 500,
        flush_interval: float = 0.5,
        retry_initial: float = 0.1,
        retry_max: float = 10.0,
        close_timeout: float = 60.0,
    ) -> None:
        if max_pending < 1 or max_batch < 1:
            raise ValueError("max_pending and max_batch must be at least 1")
        self.store = store
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.close_timeout = close_timeout

        self._queue: deque[_Entry] = deque()
        # The batch being written: out of the queue, but kept until it is stored (or rejected).
        self._inflight: list[_Entry] = []
        self._closing = False
        self._close_deadline: float | None = None
        self._running = False
        # anyio primitives need a running event loop, so they are made in run(), not here.
        self._wake: anyio.Event | None = None
        self._progress: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

        self._submitted = 0
        self._resolved = 0  # entries stored, rejected or given up, in submission order
        self._written = 0
        self._written_messages = 0
        self._dropped = 0
        self._rejected = 0
        self._retries = 0

    # -- counters --------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._inflight)

    @property
    def written(self) -> int:
        return self._written

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def stats(self) -> WriterStats:
        return WriterStats(
            submitted=self._submitted,
            written=self._written,
            written_messages=self._written_messages,
            dropped=self._dropped,
            rejected=self._rejected,
            retries=self._retries,
            pending=self.pending,
        )

    # -- the request path ------------------------------------------------------------------------------

    def submit(self, call: CallRecord, messages: Sequence[MessageRecord] = ()) -> bool:
        """Queue a call and its messages; ``False`` when it was dropped (queue full, or writer closed)."""
        if self._closing:
            self._drop("the writer is closed")
            return False
        if self.pending >= self.max_pending:
            self._drop(f"{self.max_pending} records are waiting to be written")
            return False
        self._queue.append((call, tuple(messages)))
        self._submitted += 1
        if len(self._queue) >= self.max_batch and self._wake is not None:
            self._wake.set()
        return True

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        if (self._dropped - 1) % DROP_LOG_EVERY == 0:
            logger.warning("ledger: a call record was dropped (%s); %d dropped so far", reason, self._dropped)

    # -- the background task ---------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write queued records until :meth:`aclose` is called and everything is written."""
        if self._running:
            raise RuntimeError("BatchWriter.run() is already running")
        self._running = True
        self._wake = anyio.Event()
        self._progress = anyio.Event()
        self._stopped = anyio.Event()
        task_status.started()
        try:
            while not (self._closing and not self.pending):
                if not self._closing and len(self._queue) < self.max_batch:
                    with anyio.move_on_after(self.flush_interval):
                        await self._wake.wait()
                if self._wake.is_set():
                    self._wake = anyio.Event()
                await self._drain()
        finally:
            self._running = False
            if self.pending:
                # Only reached when the task is cancelled instead of closed.
                logger.warning("ledger: the batch writer was cancelled with %d records not written", self.pending)
            self._stopped.set()
            self._progress.set()

    async def _drain(self) -> None:
        """Write everything queued now, in batches of at most ``max_batch``."""
        try:
            while self.pending:
                if not self._inflight:
                    count = min(self.max_batch, len(self._queue))
                    self._inflight = [self._queue.popleft() for _ in range(count)]
                await self._write(list(self._inflight))
        except _GaveUp:
            lost = self.pending
            self._dropped += lost
            self._queue.clear()
            self._inflight = []
            self._advance(lost)
            logger.error("ledger: gave up writing at close after %.0fs; %d records lost", self.close_timeout, lost)

    async def _write(self, entries: list[_Entry]) -> None:
        """Store ``entries`` (the head of the in-flight batch), retrying until done."""
        delay = self.retry_initial
        while True:
            try:
                await self.store.write([c for c, _ in entries], [m for _, ms in entries for m in ms])
            except RecordRejectedError as exc:
                if len(entries) > 1:
                    # Halve until the bad record is alone; the good ones around it are written.
                    middle = len(entries) // 2
                    await self._write(entries[:middle])
                    await self._write(entries[middle:])
                    return
                self._rejected += 1
                logger.error("ledger: call %s rejected by the database, not stored: %s", entries[0][0].id, exc)
                self._done(entries)
                return
            except Exception as exc:
                self._retries += 1
                wait = delay
                if self._closing:
                    now = anyio.current_time()
                    if self._close_deadline is None:
                        self._close_deadline = now + self.close_timeout
                    if now >= self._close_deadline:
                        raise _GaveUp from exc
                    wait = min(wait, self._close_deadline - now)
                logger.warning(
                    "ledger: writing %d records failed (attempt %d), retrying in %.2fs: %r",
                    len(entries),
                    self._retries,
                    wait,
                    exc,
                )
                await anyio.sleep(wait)
                delay = min(delay * 2, self.retry_max)
            else:
                self._written += len(entries)
                self._written_messages += sum(len(ms) for _, ms in entries)
                self._done(entries)
                return

    def _done(self, entries: list[_Entry]) -> None:
        # Entries finish in order, so they are always the head of the in-flight batch.
        del self._inflight[: len(entries)]
        self._advance(len(entries))

    def _advance(self, count: int) -> None:
        self._resolved += count
        if self._progress is not None:
            self._progress.set()
            self._progress = anyio.Event()

    # -- flushing and closing --------------------------------------------------------------------------

    async def flush(self) -> None:
        """Return once every record submitted before this call is stored (or rejected)."""
        target = self._submitted
        if not self._running:
            await self._drain()  # no background task: write in the caller's task
            return
        assert self._wake is not None
        self._wake.set()
        while self._resolved < target and self._running:
            assert self._progress is not None
            await self._progress.wait()

    async def aclose(self) -> None:
        """Stop accepting records and write every queued one before returning."""
        self._closing = True
        if self._running:
            assert self._wake is not None and self._stopped is not None
            self._wake.set()
            await self._stopped.wait()
        else:
            await self._drain()

    async def __aenter__(self) -> Self:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            await task_group.start(self.run)
        except BaseException as exc:
            await task_group.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._task_group = task_group
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._task_group is not None
        task_group, self._task_group = self._task_group, None
        try:
            # Shielded: a shutdown that cancels the lifespan still writes what was accepted (bounded by
            # close_timeout when the database is down).
            with anyio.CancelScope(shield=True):
                await self.aclose()
        finally:
            handled = await task_group.__aexit__(exc_type, exc, tb)
        return handled
