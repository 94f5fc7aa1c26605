"""OpenTelemetry traces and metrics of every call (GenAI semantic conventions v1.41)."""

from __future__ import annotations

from relaygate.telemetry.export import Export, configure_export
from relaygate.telemetry.spans import AttemptSpan, Telemetry

__all__ = ["AttemptSpan", "Export", "Telemetry", "configure_export"]
