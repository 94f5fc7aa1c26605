"""The call's three histograms (tokens, duration, time to the first chunk), and stand-ins that have the recorder
aggregate them.

In process, each is the SDK's histogram: a record finds the series of its attributes under a lock, adds the
value to its buckets and offers the current span as an exemplar (about 30 µs for a call's three records).
With a recorder (``relaygate serve``), :meth:`~relaygate.telemetry.Telemetry.record_in` puts
:class:`RecordedHistogram` in their place: a record appends one tuple to the recorder's queue, and the
recorder process records it in the same histograms of an SDK meter provider of its own
(:class:`~relaygate.recorder.metrics.MetricSink`), with the same context for its exemplar.

A measurement's tuple: ``(histogram, value, attributes, span)``, where ``histogram`` is the index of its
:data:`HISTOGRAMS` entry, ``attributes`` a tuple of ``(key, value)`` pairs and ``span`` the current span's
``(trace_id, span_id, trace_flags)``, ``None`` without a valid one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.trace import get_current_span

from relaygate.telemetry import names

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Histogram, Meter
    from opentelemetry.util.types import Attributes

__all__ = [
    "HISTOGRAMS",
    "HistogramLike",
    "HistogramSpec",
    "MeasurementTuple",
    "RecordedHistogram",
    "create_histograms",
    "recorded_histograms",
]

MeasurementTuple = tuple[int, float, tuple[tuple[str, Any], ...], tuple[int, int, int] | None]


@dataclass(frozen=True)
class HistogramSpec:
    name: str
    unit: str
    description: str
    buckets: Sequence[float]


# In the order of Telemetry's attributes: token_usage, duration, time_to_first_chunk.
HISTOGRAMS = (
    HistogramSpec(names.METRIC_TOKEN_USAGE, "{token}", "Tokens used by a GenAI call", names.TOKEN_BUCKETS),
    HistogramSpec(names.METRIC_DURATION, "s", "Duration of a GenAI call", names.DURATION_BUCKETS),
    HistogramSpec(
        names.METRIC_TIME_TO_FIRST_CHUNK,
        "s",
        "Time to the first chunk of a streamed GenAI call",
        names.DURATION_BUCKETS,
    ),
)


class HistogramLike(Protocol):
    """What the call records on a histogram: the API's :class:`~opentelemetry.metrics.Histogram` or a stand-in."""

    def record(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None: ...


def create_histograms(meter: Meter) -> list[Histogram]:
    """The :data:`HISTOGRAMS` on ``meter``, in their order."""
    return [
        meter.create_histogram(
            spec.name, unit=spec.unit, description=spec.description, explicit_bucket_boundaries_advisory=spec.buckets
        )
        for spec in HISTOGRAMS
    ]


class RecordedHistogram:
    """A histogram whose measurements go to ``submit`` as :data:`MeasurementTuple` (see the module docstring)."""

    __slots__ = ("index", "submit")

    def __init__(self, index: int, submit: Callable[[MeasurementTuple], object]) -> None:
        self.index = index
        self.submit = submit

    def record(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        # The span an exemplar would name: the recorder's exemplar filter decides (trace-based by default: a
        # sampled span's), as the SDK's would have here.
        span = get_current_span(context).get_span_context()
        ids = (span.trace_id, span.span_id, span.trace_flags) if span.is_valid else None
        self.submit((self.index, amount, tuple(attributes.items()) if attributes else (), ids))


def recorded_histograms(submit: Callable[[MeasurementTuple], object]) -> list[RecordedHistogram]:
    return [RecordedHistogram(index, submit) for index in range(len(HISTOGRAMS))]
