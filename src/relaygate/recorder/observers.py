"""What the ledger hands to the recorder: a writer in place of its batch writer (spans go through
:class:`~relaygate.recorder.tracer.RecordingTracerProvider`)."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from relaygate.recorder.client import Recorder
    from relaygate.store import CallRecord, MessageRecord

__all__ = ["RecorderWriter"]


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
