"""The overview: the period's totals, its series (cost, requests, errors, tokens, p50/p95 latency), breakdowns by
model, provider, user, label and key, and every limit of the projects in view with what is used and left."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.responses import Response

from relaygate.limits.usage import LimitUse, limit_usage
from relaygate.store import Bucket, Dimension, Figures, RollupRow
from relaygate.store.rollups import bucket_of, percentile
from relaygate.ui.sources import Sources
from relaygate.ui.viewer import UiRequest
from relaygate.ui.views.common import partial_or_page, window
from relaygate.ui.windows import Window

__all__ = ["BREAKDOWNS", "overview"]

# Dimension, title, the calls list's filter its values link to.
BREAKDOWNS = [
    (Dimension.MODEL, "Model", "model"),
    (Dimension.PROVIDER, "Provider", None),
    (Dimension.USER, "User", "user"),
    (Dimension.LABEL, "Label", "label"),
    (Dimension.KEY, "Key", None),
]
TOP = 15


@dataclass(frozen=True, slots=True)
class Totals:
    figures: Figures
    p50_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.figures.errors / self.figures.calls if self.figures.calls else 0.0


@dataclass(frozen=True, slots=True)
class Breakdown:
    title: str
    filter: str | None
    rows: list[RollupRow]
    more: int
    total_cost: float
    total_calls: int


async def overview(req: UiRequest, src: Sources) -> Response:
    win = window(req)
    projects = req.projects()
    store = await src.store()
    # Two reads: the period's figures by every dimension at once (the totals read on their own, not added up
    # from the series, so they are the API's for the same window), and its series.
    dims = [Dimension.ALL, Dimension.LATENCY, *(dim for dim, _, _ in BREAKDOWNS)]
    whole = await store.rollups(projects, win.start, win.end, dims)
    over_time = await store.rollups(projects, win.start, win.end, [Dimension.ALL, Dimension.LATENCY], win.bucket)
    series, latency = over_time[Dimension.ALL], over_time[Dimension.LATENCY]
    totals = _totals(whole[Dimension.ALL], whole[Dimension.LATENCY])
    breakdowns = [_breakdown(whole[dim], title, link) for dim, title, link in BREAKDOWNS]
    limits: list[tuple[str, list[LimitUse]]] = []
    if src.limiter is not None:
        for project in projects:
            used = await limit_usage(src.limiter, project, src.project_keys.get(project, ()))
            if used:
                limits.append((project, used))
    return partial_or_page(
        req,
        src,
        "overview",
        nav="overview",
        window=win,
        totals=totals,
        chart=chart_data(win, series, latency),
        breakdowns=breakdowns,
        limits=limits,
        buckets=[Bucket.HOUR.value, Bucket.DAY.value],
    )


def _totals(total: Sequence[RollupRow], latency: Sequence[RollupRow]) -> Totals:
    histogram: dict[str, int] = {}
    for row in latency:
        histogram[row.value or ""] = histogram.get(row.value or "", 0) + row.figures.calls
    figures = total[0].figures if total else Figures()
    return Totals(figures, percentile(histogram.items(), 0.5), percentile(histogram.items(), 0.95))


def _breakdown(rows: list[RollupRow], title: str, link: str | None) -> Breakdown:
    rows = sorted(rows, key=lambda r: (-r.figures.cost_nanos, -r.figures.calls, r.value is not None, r.value or ""))
    return Breakdown(
        title=title,
        filter=link,
        rows=rows[:TOP],
        more=max(0, len(rows) - TOP),
        total_cost=sum(r.figures.cost_usd for r in rows),
        total_calls=sum(r.figures.calls for r in rows),
    )


def chart_data(win: Window, series: Sequence[RollupRow], latency: Sequence[RollupRow]) -> dict[str, Any]:
    """Columns for the charts, one entry per bucket of the window (empty buckets as zeros)."""
    size = timedelta(hours=1) if win.bucket is Bucket.HOUR else timedelta(days=1)
    buckets: list[datetime] = []
    at = bucket_of(win.start, size)
    while at < win.end:
        buckets.append(at)
        at += size
    by_bucket = {row.bucket_start: row.figures for row in series}
    histograms: dict[datetime | None, dict[str, int]] = {}
    for row in latency:
        histograms.setdefault(row.bucket_start, {})[row.value or ""] = row.figures.calls
    empty = Figures()
    figures = [by_bucket.get(b, empty) for b in buckets]
    p50 = [percentile(histograms.get(b, {}).items(), 0.5) for b in buckets]
    p95 = [percentile(histograms.get(b, {}).items(), 0.95) for b in buckets]
    return {
        "bucket": win.bucket.value,
        "t": [int(b.timestamp()) for b in buckets],
        "cost": [round(f.cost_usd, 9) for f in figures],
        "requests": [f.calls for f in figures],
        "errors": [f.errors for f in figures],
        "input_tokens": [f.prompt_tokens for f in figures],
        "output_tokens": [f.completion_tokens for f in figures],
        "p50": [None if v is None else round(v, 1) for v in p50],
        "p95": [None if v is None else round(v, 1) for v in p95],
    }
