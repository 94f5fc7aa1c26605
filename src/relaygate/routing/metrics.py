"""Live figures per target for the ``optimized`` strategy: latency, time to first token, error rate.

Every attempt adds to its target's sums in the bucket of the current ``BUCKET_SECONDS`` of wall-clock
time; a figure is the mean over the last ``WINDOW_BUCKETS`` buckets (a minute), so it follows the target
as it is now and is forgotten when the target gets no traffic (it is then measured afresh). Latency is
the whole call (a stream until its end), time to first token the wait for a stream's first chunk (or
for a whole answer), error rate the share of attempts that failed.

Buckets are aligned on wall-clock time so that gateway processes can add theirs up:
:class:`relaygate.routing.shared.RedisMetricsSync` pushes what a process recorded and pulls the totals
of all of them into :meth:`TargetMetrics.set_shared`, which then take the place of the process's own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

from relaygate.settings import Metric

__all__ = ["BUCKET_SECONDS", "FIELDS", "WINDOW_BUCKETS", "TargetMetrics"]

BUCKET_SECONDS = 10
WINDOW_BUCKETS = 6
# The sums kept per target and bucket, in this order.
FIELDS = ("attempts", "failures", "latency_sum", "latency_count", "ttft_sum", "ttft_count")

Sums = list[float]


class TargetMetrics:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._local: dict[str, dict[int, Sums]] = {}
        self._pending: dict[tuple[str, int], Sums] = {}
        self._shared: dict[str, Sums] | None = None
        self._swept = 0
        # Set by whoever shares the figures; until then nothing waits to be pushed.
        self.sharing = False

    def bucket(self) -> int:
        return int(self._clock() // BUCKET_SECONDS)

    def record(
        self,
        key: str,
        *,
        failed: bool,
        latency: float | None = None,
        ttft: float | None = None,
        elapsed: float = 0.0,
    ) -> None:
        """One attempt's outcome: the figures it measured, and ``elapsed``, its time in all, which counts
        against each figure it did not measure (a failure before the answer: both; a stream that broke
        after its first chunk: latency)."""
        bucket = self.bucket()
        sample = [
            1.0,
            float(failed),
            elapsed if latency is None else latency,
            float(latency is not None),
            elapsed if ttft is None else ttft,
            float(ttft is not None),
        ]
        if bucket != self._swept:
            self._sweep(bucket)
        buckets = self._local.setdefault(key, {})
        _add(buckets.setdefault(bucket, [0.0] * len(FIELDS)), sample)
        if self.sharing:
            _add(self._pending.setdefault((key, bucket), [0.0] * len(FIELDS)), sample)

    def figure(self, key: str, metric: Metric) -> float | None:
        """The target's current figure of ``metric`` (lower is better): ``None`` when it made no attempt
        in the window, infinite when no attempt gave what the figure measures."""
        sums = self._totals(key)
        if sums is None:
            return None
        attempts, failures, latency_sum, latency_count, ttft_sum, ttft_count = sums
        if not attempts:
            return None
        if metric == "error_rate":
            return failures / attempts
        if metric == "ttft":
            return ttft_sum / ttft_count if ttft_count else math.inf
        return latency_sum / latency_count if latency_count else math.inf

    def keys(self) -> list[str]:
        return list(self._local)

    def take_pending(self) -> dict[tuple[str, int], Sums]:
        """What was recorded since the last call, by target and bucket (for :mod:`.shared`)."""
        pending, self._pending = self._pending, {}
        return pending

    def set_shared(self, totals: Mapping[str, Sums] | None) -> None:
        """The window's totals of every process, by target; ``None`` goes back to this process's own."""
        self._shared = dict(totals) if totals is not None else None

    def _sweep(self, bucket: int) -> None:
        """Drop buckets that left the window, and targets left without any (clients may invent model
        names: only the last minute's are kept)."""
        self._swept = bucket
        oldest = bucket - WINDOW_BUCKETS
        for key in list(self._local):
            live = {b: sums for b, sums in self._local[key].items() if b > oldest}
            if live:
                self._local[key] = live
            else:
                del self._local[key]

    def _totals(self, key: str) -> Sums | None:
        if self._shared is not None and key in self._shared:
            return self._shared[key]
        buckets = self._local.get(key)
        if not buckets:
            return None
        oldest = self.bucket() - WINDOW_BUCKETS
        live = [sums for bucket, sums in buckets.items() if bucket > oldest]
        return [sum(column) for column in zip(*live, strict=True)] if live else None


def _add(sums: Sums, sample: Sums) -> None:
    for index, value in enumerate(sample):
        sums[index] += value
