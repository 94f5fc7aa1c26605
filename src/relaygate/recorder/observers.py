"""What the existing observers hand to the recorder: a span processor for the tracer, a writer for the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from relaygate.recorder.wire import pack_span

if TYPE_CHECKING:
    from relaygate.recorder.client import Recorder
    from relaygate.store import CallRecord, MessageRecord

__all__ = ["RecorderSpanProcessor", "RecorderWriter"]


class RecorderSpanProcessor(SpanProcessor):
    """In place of the batch span processor: each sampled span, once ended, goes to the recorder as a
    compact tuple; the recorder encodes and exports it."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.recorder.submit_span(pack_span(span))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RecorderWriter:
    """The ledger's writer when a recorder writes its rows: what :class:`~relaygate.store.BatchWriter` offers the
    ledger (``submit``, ``pending``, ``flush``), handing the records to the recorder."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def submit(self, call: CallRecord, messages: Sequence[MessageRecord] = ()) -> bool:
        return self.recorder.submit_call(call, messages)

    @property
    def pending(self) -> int:
        return self.recorder.pending

    async def flush(self) -> None:
        await self.recorder.flush()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
