"""Long windows on both backends: the four-week roll-ups, and a window's last part read from its bucket's roll-up
row when nothing started after the window's end. The figures stay exact to the call whatever the window."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from relaygate.store import Bucket, CallRecord, Dimension, Store
from relaygate.store._sql import SQLStore
from relaygate.store.rollups import FOUR_WEEKS, WEEK, Segment, bucket_of, extend, latency_bin, segments
from tests.store.conftest import T0, make_call
from tests.store.test_store import expected_figures

pytestmark = pytest.mark.anyio

MONDAY = datetime(1970, 1, 5, tzinfo=UTC)


def long_ledger() -> list[CallRecord]:
    """90 calls over 120 days, in two projects, four users and three models, latencies over three decades."""
    rng = random.Random(7)
    calls = []
    for i in range(90):
        at = T0 + timedelta(hours=32 * i, minutes=rng.randrange(60), microseconds=rng.randrange(1_000_000))
        calls.append(
            make_call(
                "proj-b" if i % 5 == 0 else "proj-a",
                at,
                user_id=None if i % 7 == 0 else f"u{i % 4}",
                model=("gpt-4o", "gpt-4.1", "o3")[i % 3],
                requested_model="upstream/x",
                prompt_tokens=10 + i,
                total_tokens=15 + i,
                cost_usd=(i % 9) / 1e5 or None,
                status=500 if i % 11 == 3 else 200,
                latency_ms=rng.choice([3.25, 48.0, 250.0, 1234.5, 9876.0]) + i,
                ttft_ms=12.5 + i if i % 2 else None,
            )
        )
    return calls


CALLS = long_ledger()
LAST = CALLS[-1].started_at
VALUES: dict[Dimension, Callable[[CallRecord], str | None]] = {
    Dimension.ALL: lambda c: None,
    Dimension.USER: lambda c: c.user_id,
    Dimension.MODEL: lambda c: f"{c.provider}/{c.model}",
}
WINDOWS = [
    (T0 - timedelta(days=400), LAST + timedelta(days=400)),  # everything, both ends past the data
    (T0 + timedelta(days=3, minutes=17), LAST + timedelta(microseconds=1)),  # up to just after the last call
    (T0 + timedelta(days=30, hours=5), LAST),  # the last call is left out
    (T0 + timedelta(days=9, hours=1, minutes=2), T0 + timedelta(days=100, minutes=41)),
    (LAST - timedelta(days=365), LAST + timedelta(hours=1)),  # a year up to now, as the dashboard reads one
    (LAST - timedelta(hours=20), LAST + timedelta(minutes=3)),
]


def test_four_week_buckets_start_on_mondays_and_a_window_is_cut_into_them() -> None:
    start, end = T0 + timedelta(days=3, minutes=17), T0 + timedelta(days=100, minutes=41)
    parts = segments(start, end, coarsest=FOUR_WEEKS)
    assert parts[0].start == start and parts[-1].end == end
    assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))
    blocks = [p for p in parts if p.source == "4week"]
    assert len(blocks) == 1 and blocks[0].end - blocks[0].start == 3 * FOUR_WEEKS
    assert (blocks[0].start - MONDAY) % FOUR_WEEKS == timedelta(0)
    assert [p.source for p in parts] == ["calls", "hour", "day", "week", "4week", "day", "hour", "calls"]
    assert segments(start, end) == segments(start, end, coarsest=WEEK)  # the default is unchanged
    assert extend(end, FOUR_WEEKS) == blocks[0].end + FOUR_WEEKS
    assert extend(blocks[0].end, FOUR_WEEKS) == blocks[0].end
    assert segments(blocks[0].start, blocks[0].end, coarsest=FOUR_WEEKS) == [
        Segment("4week", blocks[0].start, blocks[0].end)
    ]


@pytest.mark.parametrize("window", WINDOWS)
async def test_long_windows_are_exact(store: Store, window: tuple[datetime, datetime]) -> None:
    await store.write(CALLS[:50])
    await store.write(CALLS[50:])
    projects = ["proj-a", "proj-b"]
    calls = [c for c in CALLS if window[0] <= c.started_at < window[1]]
    together = await store.rollups(projects, *window, [*VALUES, Dimension.LATENCY])
    for dim, value_of in VALUES.items():
        groups: dict[str | None, list[CallRecord]] = defaultdict(list)
        for call in calls:
            groups[value_of(call)].append(call)
        assert {r.value: r.figures for r in together[dim]} == {v: expected_figures(g) for v, g in groups.items()}
    bins: dict[str, int] = defaultdict(int)
    for call in calls:
        bins[latency_bin(round(call.latency_ms * 1000))] += 1
    assert {r.value: r.figures.calls for r in together[Dimension.LATENCY]} == bins
    series = await store.rollups(projects, *window, [Dimension.ALL], Bucket.DAY)
    days: dict[datetime, list[CallRecord]] = defaultdict(list)
    for call in calls:
        days[call.started_at.replace(hour=0, minute=0, second=0, microsecond=0)].append(call)
    assert {r.bucket_start: r.figures for r in series[Dimension.ALL]} == {
        d: expected_figures(g) for d, g in days.items()
    }


async def test_four_week_rollups_hold_every_call(store: Store) -> None:
    await store.write(CALLS)
    assert isinstance(store, SQLStore)
    rows = await store._fetch("SELECT SUM(calls), COUNT(*) FROM call_rollups WHERE span = '4week' AND dim = 'all'", [])
    blocks = {(c.project_id, bucket_of(c.started_at, FOUR_WEEKS)) for c in CALLS}
    assert (int(rows[0][0]), int(rows[0][1])) == (len(CALLS), len(blocks))
