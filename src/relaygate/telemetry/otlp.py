"""Where and how OTLP exports go, as plain values: what the recorder process is handed.

:class:`Otlp` is what the exporters need of :class:`~relaygate.settings.TelemetrySettings` (the protocol, the
endpoints, the headers with their secrets revealed), in a frozen dataclass of strings: it pickles without
pydantic, so the recorder process (``python -m relaygate.recorder``) never imports the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from relaygate.settings import TelemetrySettings

__all__ = ["Otlp"]


@dataclass(frozen=True)
class Otlp:
    """The OTLP export options of :class:`~relaygate.settings.TelemetrySettings`, as plain values."""

    endpoint: str | None = None
    traces_endpoint: str | None = None
    metrics_endpoint: str | None = None
    protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, settings: TelemetrySettings) -> Otlp:
        return cls(
            endpoint=settings.endpoint,
            traces_endpoint=settings.traces_endpoint,
            metrics_endpoint=settings.metrics_endpoint,
            protocol=settings.protocol,
            headers={key: value.get_secret_value() for key, value in settings.headers.items()},
        )
