"""The recorder: what a call triggers but does not wait for, done in a child process.

A finished call leaves the serving process as compact records (its spans as tuples of plain values, its
ledger record and thread messages), queued and handed over in batches by a thread
(:class:`~relaygate.recorder.client.Recorder`). The recorder process encodes and exports the spans over
OTLP and builds and writes the ledger's rows (:mod:`relaygate.recorder.child`). The tracer feeds it
through :class:`RecordingTracerProvider` (spans recorded as plain values, handed over when they end), the
ledger through :class:`RecorderWriter`.

``relaygate serve`` runs one per worker (``server.recorder``, on by default); a gateway mounted in a host
app does the work in process, as it always did.

The names below are imported when first used (PEP 562): the recorder process (``python -m
relaygate.recorder``) imports this package, and needs none of what the serving process uses of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relaygate.recorder.child import RecorderConfig
    from relaygate.recorder.client import METRIC_DROPPED, Recorder
    from relaygate.recorder.observers import RecorderWriter
    from relaygate.recorder.tracer import RecordingTracerProvider

__all__ = ["METRIC_DROPPED", "Recorder", "RecorderConfig", "RecorderWriter", "RecordingTracerProvider"]

_MODULES = {
    "RecorderConfig": "relaygate.recorder.child",
    "METRIC_DROPPED": "relaygate.recorder.client",
    "Recorder": "relaygate.recorder.client",
    "RecorderWriter": "relaygate.recorder.observers",
    "RecordingTracerProvider": "relaygate.recorder.tracer",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'relaygate.recorder' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
