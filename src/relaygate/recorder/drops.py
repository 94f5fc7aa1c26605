"""What the recorder dropped, counted by kind: in the ``relaygate.recorder.dropped`` metric and in the log
(the first drop of a kind, then every ``DROP_LOG_EVERY``-th), never silently."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

__all__ = ["CALL", "DROP_LOG_EVERY", "KINDS", "METRIC", "METRIC_DROPPED", "SPAN", "Drops"]

logger = logging.getLogger("relaygate.recorder")

DROP_LOG_EVERY = 1000
METRIC_DROPPED = "relaygate.recorder.dropped"
SPAN = 0
CALL = 1
METRIC = 2
KINDS = ("span", "call", "metric")


class Drops:
    """Records dropped here (by kind: ``SPAN``, ``CALL``, ``METRIC``), and what the recorder process reported it
    dropped itself (its span queue, calls the database refused), added to the same metric."""

    def __init__(self, meter: Meter | None) -> None:
        self.counts = [0, 0, 0]
        # What the current recorder process reported: its calls and spans dropped, since it started.
        self._child = (0, 0)
        self._metric = (
            meter.create_counter(
                METRIC_DROPPED, unit="{record}", description="Records the recorder dropped (calls and spans)"
            )
            if meter is not None
            else None
        )

    def add(self, kind: int, count: int, reason: str) -> None:
        if count <= 0:
            return
        name = KINDS[kind]
        before = self.counts[kind]
        self.counts[kind] = before + count
        if before == 0 or before // DROP_LOG_EVERY != (before + count) // DROP_LOG_EVERY:
            logger.warning("recorder: %d %s records dropped (%s); %d so far", count, name, reason, before + count)
        if self._metric is not None:
            self._metric.add(count, {"relaygate.record": name})

    def new_child(self) -> None:
        self._child = (0, 0)

    def child_reported(self, calls: int, spans: int) -> None:
        """The recorder process's own drop counts (running totals since it started)."""
        before_calls, before_spans = self._child
        self._child = (calls, spans)
        if self._metric is not None:
            if calls > before_calls:
                self._metric.add(calls - before_calls, {"relaygate.record": "call"})
            if spans > before_spans:
                self._metric.add(spans - before_spans, {"relaygate.record": "span"})
