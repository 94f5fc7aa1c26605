"""The figures of a set of calls as SQL sums them (:data:`AGGREGATES`) and as Python adds them up (:class:`Totals`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relaygate.store.records import Figures

__all__ = ["AGGREGATES", "UNPRICED", "Totals", "figures_of"]

# A call that answered without a known price (the roll-ups of the dashboard do not count these).
UNPRICED = "CASE WHEN cost_nanos IS NULL AND status < 400 AND error IS NULL THEN 1 ELSE 0 END"
# Partial aggregates of a set of calls, in the order Totals.add reads them. Sums stay integers (tokens,
# nano-dollars, microseconds); averages are divided in Python, so both backends agree to the last bit.
AGGREGATES = (
    "COUNT(*), "
    "COALESCE(SUM(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0), "
    "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), "
    "COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(latency_us), 0), COALESCE(SUM(ttft_us), 0), COUNT(ttft_us), "
    f"COALESCE(SUM({UNPRICED}), 0)"
)


@dataclass(slots=True)
class Totals:
    """A running sum of partial aggregates (rows of AGGREGATES), mergeable across SQL groups."""

    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nanos: int = 0
    latency_us: int = 0
    ttft_us: int = 0
    ttft_count: int = 0
    unpriced: int = 0

    def add(self, row: Sequence[Any]) -> None:
        # int(): PostgreSQL returns SUM(bigint) as numeric (Decimal). The roll-ups' rows have no unpriced count.
        (c, e, p, co, t, ca, cw, r, cost, lat, ttft, ttft_n) = (int(v) for v in row[:12])
        self.unpriced += int(row[12]) if len(row) > 12 else 0
        self.calls += c
        self.errors += e
        self.prompt_tokens += p
        self.completion_tokens += co
        self.total_tokens += t
        self.cached_tokens += ca
        self.cache_write_tokens += cw
        self.reasoning_tokens += r
        self.cost_nanos += cost
        self.latency_us += lat
        self.ttft_us += ttft
        self.ttft_count += ttft_n

    def figures(self) -> Figures:
        return Figures(
            calls=self.calls,
            errors=self.errors,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.total_tokens,
            cached_tokens=self.cached_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
            cost_nanos=self.cost_nanos,
            unpriced=self.unpriced,
            avg_latency_ms=self.latency_us / self.calls / 1000 if self.calls else None,
            avg_ttft_ms=self.ttft_us / self.ttft_count / 1000 if self.ttft_count else None,
        )


def figures_of(row: Sequence[Any]) -> Figures:
    totals = Totals()
    totals.add(row)
    return totals.figures()
