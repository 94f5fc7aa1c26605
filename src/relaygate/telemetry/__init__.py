"""OpenTelemetry traces and metrics of every call (GenAI semantic conventions v1.41).

The names below are imported when first used (PEP 562): the recorder process imports the OTLP exporter's
part (:mod:`relaygate.telemetry.export`, :mod:`relaygate.telemetry.otlp`) without the tracing of calls, which
imports the request context and the settings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relaygate.telemetry.export import Export, configure_export
    from relaygate.telemetry.spans import AttemptSpan, Telemetry

__all__ = ["AttemptSpan", "Export", "Telemetry", "configure_export"]

_MODULES = {
    "AttemptSpan": "relaygate.telemetry.spans",
    "Telemetry": "relaygate.telemetry.spans",
    "Export": "relaygate.telemetry.export",
    "configure_export": "relaygate.telemetry.export",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'relaygate.telemetry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
