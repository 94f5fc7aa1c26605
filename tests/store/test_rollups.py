"""The dashboard's reads on both backends: roll-ups against figures computed by hand over the same calls (and
against the management API's own queries), the calls list's filters and pages, the threads list across projects.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from relaygate.store import (
    Bucket,
    CallCursor,
    CallFilter,
    CallRecord,
    Dimension,
    GroupBy,
    Store,
    ThreadCursor,
)
from relaygate.store._sql import CALL_COLUMNS, SQLStore
from relaygate.store.migrations import DASHBOARD_MIGRATION, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from relaygate.store.rollups import DAY, HOUR, Segment, latency_bin, percentile, segments
from tests.store.conftest import T0, StoreFactory
from tests.store.test_store import CALLS, EVER, MESSAGES, expected_figures, load

pytestmark = pytest.mark.anyio

PROJECTS = ["proj-a", "proj-b"]
# The steps before the one that adds the roll-ups.
ROLLUPS_STEP = next(m.version for m in SQLITE_MIGRATIONS if m.description == DASHBOARD_MIGRATION) - 1
# Aligned and ragged windows, short and over several days, inside and around the data.
WINDOWS = [
    EVER,
    (T0, T0 + timedelta(days=8)),
    (T0 + timedelta(minutes=17), T0 + timedelta(days=3, hours=5, minutes=3)),
    (T0 + timedelta(hours=1, minutes=30), T0 + timedelta(hours=2, minutes=1)),
    (T0 + timedelta(hours=4, minutes=29), T0 + timedelta(hours=9, microseconds=71)),
    (T0 + timedelta(days=1, hours=1, microseconds=1), T0 + timedelta(days=6)),
]
VALUES: dict[Dimension, Callable[[CallRecord], str | None]] = {
    Dimension.ALL: lambda c: None,
    Dimension.PROVIDER: lambda c: c.provider,
    Dimension.MODEL: lambda c: f"{c.provider}/{c.model}",
    Dimension.USER: lambda c: c.user_id,
    Dimension.LABEL: lambda c: c.label,
    Dimension.KEY: lambda c: c.key_id,
}


def calls_in(projects: Sequence[str], start: datetime, end: datetime) -> list[CallRecord]:
    return [c for c in CALLS if c.project_id in projects and start <= c.started_at < end]


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("dim", list(VALUES))
async def test_rollups_equal_the_figures_of_the_calls_in_any_window(
    store: Store, window: tuple[datetime, datetime], dim: Dimension
) -> None:
    await load(store)
    for projects in (["proj-a"], PROJECTS):
        calls = calls_in(projects, *window)
        groups: dict[str | None, list[CallRecord]] = defaultdict(list)
        for call in calls:
            groups[VALUES[dim](call)].append(call)
        rows = await store.rollup(projects, *window, dim)
        assert [(r.value, r.figures) for r in rows] == [
            (value, expected_figures(groups[value])) for value in sorted(groups, key=lambda v: (v is not None, v))
        ]


@pytest.mark.parametrize("window", WINDOWS[1:])
async def test_rollup_totals_equal_the_management_apis(store: Store, window: tuple[datetime, datetime]) -> None:
    await load(store)
    for project in PROJECTS:
        rows = await store.rollup([project], *window)
        total = await store.usage_total(project, *window)
        assert [r.figures for r in rows] == ([total] if total.calls else [])
        summary = await store.analytics_summary(project, *window, [GroupBy.USER])
        by_user = await store.rollup([project], *window, Dimension.USER)
        assert [(r.value, r.figures) for r in by_user] == [(s.group["user"], s.figures) for s in summary]


@pytest.mark.parametrize("bucket", [Bucket.HOUR, Bucket.DAY])
@pytest.mark.parametrize("window", WINDOWS[1:])
async def test_series_equal_the_analytics_of_the_same_window(
    store: Store, bucket: Bucket, window: tuple[datetime, datetime]
) -> None:
    await load(store)
    points = await store.analytics("proj-a", *window, bucket)
    rows = await store.rollup(["proj-a"], *window, bucket=bucket)
    assert [(r.bucket_start, r.figures) for r in rows] == [(p.bucket_start, p.figures) for p in points]
    models = await store.rollup(["proj-a"], *window, Dimension.MODEL, bucket)
    usage = await store.usage_by_model("proj-a", *window, bucket)
    assert sorted((r.bucket_start, r.value, r.figures) for r in models) == sorted(
        (u.bucket_start, f"{u.provider}/{u.model}", u.figures) for u in usage
    )


async def test_latency_histogram_gives_percentiles_within_a_bin(store: Store) -> None:
    await load(store)
    window = (T0 + timedelta(minutes=17), T0 + timedelta(days=5, minutes=3))
    rows = await store.rollup(PROJECTS, *window, Dimension.LATENCY)
    latencies = sorted(round(c.latency_ms * 1000) for c in calls_in(PROJECTS, *window))
    assert sum(r.figures.calls for r in rows) == len(latencies)
    histogram = [(r.value or "", r.figures.calls) for r in rows]
    assert sorted(histogram) == sorted(
        (bin_, sum(1 for v in latencies if latency_bin(v) == bin_)) for bin_ in {latency_bin(v) for v in latencies}
    )
    for fraction in (0.5, 0.95):
        exact = latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] / 1000
        estimate = percentile(histogram, fraction)
        assert estimate is not None and abs(estimate - exact) <= exact * 0.1


async def test_rollups_count_a_call_once_when_its_batch_is_written_again(store: Store) -> None:
    await load(store)
    await store.write(CALLS[:20], MESSAGES[:10])  # a retried batch whose first commit went through
    rows = await store.rollup(PROJECTS, *EVER)
    assert rows[0].figures == expected_figures(CALLS)
    threads = await store.recent_threads(PROJECTS, limit=100)
    assert sum(t.calls for t in threads) == sum(1 for c in CALLS if c.thread_id is not None)


async def test_calls_are_listed_newest_first_across_projects_and_paged_by_cursor(store: Store) -> None:
    await load(store)
    expected = sorted(CALLS, key=lambda c: (c.started_at, c.id.hex), reverse=True)
    seen: list[CallRecord] = []
    cursor: CallCursor | None = None
    while True:
        page = await store.recent_calls(PROJECTS, limit=7, before=cursor)
        seen += page
        if len(page) < 7:
            break
        cursor = CallCursor(page[-1].started_at, page[-1].id)
    assert [c.id for c in seen] == [c.id for c in expected]
    assert cursor is not None and CallCursor.decode(cursor.encode()) == cursor
    only_b = await store.recent_calls(["proj-b"], limit=100)
    assert [c.id for c in only_b] == [c.id for c in expected if c.project_id == "proj-b"]


async def test_calls_at_the_same_instant_are_paged_by_id(store: Store) -> None:
    same = [dataclasses.replace(CALLS[0], id=uuid.uuid4(), trace_id=f"{i}") for i in range(5)]
    await store.write(same)
    first = await store.recent_calls(["proj-a"], limit=2)
    rest = await store.recent_calls(["proj-a"], limit=10, before=CallCursor(first[-1].started_at, first[-1].id))
    assert [c.id for c in first + rest] == sorted((c.id for c in same), key=lambda i: i.hex, reverse=True)


FILTERS: list[tuple[CallFilter, Callable[[CallRecord], bool]]] = [
    (CallFilter(model="openai/gpt-4o"), lambda c: (c.provider, c.model) == ("openai", "gpt-4o")),
    (CallFilter(model="anthropic/gpt-4o"), lambda c: False),
    (CallFilter(status="error"), lambda c: c.status >= 400 or c.error is not None),
    (CallFilter(status="ok"), lambda c: c.status < 400 and c.error is None),
    (CallFilter(status="500"), lambda c: c.status == 500),
    (CallFilter(status="200"), lambda c: c.status == 200),
    (CallFilter(user="u1"), lambda c: c.user_id == "u1"),
    (CallFilter(thread="t2"), lambda c: c.thread_id == "t2"),
    (CallFilter(label="batch"), lambda c: c.label == "batch"),
    (
        CallFilter(start=T0 + timedelta(days=1), end=T0 + timedelta(days=3)),
        lambda c: T0 + timedelta(days=1) <= c.started_at < T0 + timedelta(days=3),
    ),
    (
        CallFilter(model="openai/gpt-4o-mini", status="ok", user="u2", start=T0 + timedelta(days=2)),
        lambda c: c.model == "gpt-4o-mini" and c.status < 400 and not c.error and c.user_id == "u2"
        and c.started_at >= T0 + timedelta(days=2),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("filters", "test"), FILTERS)
async def test_calls_are_filtered(store: Store, filters: CallFilter, test: Callable[[CallRecord], bool]) -> None:
    await load(store)
    listed = await store.recent_calls(PROJECTS, filters, limit=100)
    expected = sorted((c for c in CALLS if test(c)), key=lambda c: (c.started_at, c.id.hex), reverse=True)
    assert [c.id for c in listed] == [c.id for c in expected]


async def test_threads_are_listed_across_projects_as_each_projects_list(store: Store) -> None:
    await load(store)
    listed = []
    cursor: ThreadCursor | None = None
    while True:
        page = await store.recent_threads(PROJECTS, limit=2, before=cursor)
        listed += page
        if len(page) < 2:
            break
        last = page[-1]
        assert last.project_id is not None
        cursor = ThreadCursor(last.last_seen, last.project_id, last.thread_id)
    assert [(t.last_seen, t.project_id, t.thread_id) for t in listed] == sorted(
        ((t.last_seen, t.project_id, t.thread_id) for t in listed), key=lambda k: (-k[0].timestamp(), k[1], k[2])
    )
    for project in PROJECTS:
        threads = (await store.list_threads(project, limit=100)).items
        assert [t for t in listed if t.project_id == project] == threads
        assert {t.thread_id for t in threads} == {c.thread_id for c in CALLS if c.project_id == project} - {None}


async def test_projects_and_calls_are_found_only_in_the_projects_named(store: Store) -> None:
    await load(store)
    assert await store.ledger_projects() == PROJECTS
    call = next(c for c in CALLS if c.project_id == "proj-b")
    assert await store.find_call(["proj-a"], call.id) is None
    found = await store.find_call(PROJECTS, call.id)
    assert found is not None and found.id == call.id and found.project_id == "proj-b"


def test_windows_are_cut_into_raw_edges_hours_and_days() -> None:
    start = T0 + timedelta(minutes=17)  # 22:47 on day 0
    end = T0 + timedelta(days=2, hours=3, minutes=5)  # 01:35 on day 2+1
    hour = T0.replace(minute=0)
    assert segments(start, end) == [
        Segment("calls", start, hour + timedelta(hours=1)),
        Segment("hour", hour + timedelta(hours=1), hour + timedelta(hours=2)),
        Segment("day", hour + timedelta(hours=2), hour + timedelta(days=2, hours=2)),
        Segment("hour", hour + timedelta(days=2, hours=2), hour + timedelta(days=2, hours=3)),
        Segment("calls", hour + timedelta(days=2, hours=3), end),
    ]
    assert [s.source for s in segments(start, end, coarsest=HOUR)] == ["calls", "hour", "calls"]
    # A whole week (Monday to Monday) inside the window is read as one.
    later = T0 + timedelta(days=8, hours=9, minutes=5)  # 07:35 on Tuesday 2024-03-12
    monday = datetime(2024, 3, 4, tzinfo=UTC)
    assert segments(start, later) == [
        Segment("calls", start, hour + timedelta(hours=1)),
        Segment("hour", hour + timedelta(hours=1), monday),
        Segment("week", monday, monday + timedelta(days=7)),
        Segment("day", monday + timedelta(days=7), monday + timedelta(days=8)),
        Segment("hour", monday + timedelta(days=8), monday + timedelta(days=8, hours=7)),
        Segment("calls", monday + timedelta(days=8, hours=7), later),
    ]
    assert [s.source for s in segments(start, later, coarsest=DAY)] == ["calls", "hour", "day", "hour", "calls"]
    assert segments(start, start + timedelta(minutes=5)) == [Segment("calls", start, start + timedelta(minutes=5))]
    assert segments(end, start) == []


def test_latency_bins_and_percentiles() -> None:
    assert latency_bin(123_456) == "6:12"
    assert latency_bin(7) == "1:7"
    assert percentile([], 0.5) is None
    assert percentile([("6:12", 1)], 0.5) == pytest.approx(125.0)  # the middle of 120-130 ms
    assert percentile([("4:10", 50), ("6:50", 50)], 0.95) == pytest.approx(545.0)  # 500 to 550 ms
    assert latency_bin(25_999) == "5:24" and latency_bin(99_999) == "5:95" and latency_bin(19_999) == "5:19"


async def test_calls_stored_before_the_rollups_are_rolled_up_by_the_migration(
    store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as before:
        before.setattr("relaygate.store.sqlite.SQLITE_MIGRATIONS", SQLITE_MIGRATIONS[:ROLLUPS_STEP])
        before.setattr("relaygate.store.postgres.POSTGRES_MIGRATIONS", POSTGRES_MIGRATIONS[:ROLLUPS_STEP])
        async with store_factory() as old:
            assert await old.schema_version() == ROLLUPS_STEP and isinstance(old, SQLStore)
            rows = [old._call_row(c) for c in CALLS]
            marks = ", ".join("?" for _ in rows[0])
            await old._transaction([(f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({marks})", rows)])
    async with store_factory() as upgraded:
        for dim in VALUES:
            for window in WINDOWS:
                for project in PROJECTS:
                    rows_now = await upgraded.rollup([project], *window, dim)
                    groups: dict[str | None, list[CallRecord]] = defaultdict(list)
                    for call in calls_in([project], *window):
                        groups[VALUES[dim](call)].append(call)
                    assert {r.value: r.figures for r in rows_now} == {v: expected_figures(g) for v, g in groups.items()}
        for project in PROJECTS:
            assert (await upgraded.list_threads(project, limit=100)).items == await upgraded.recent_threads(
                [project], limit=100
            )
        # Calls written after the upgrade add to the same roll-ups.
        later = dataclasses.replace(CALLS[0], id=uuid.uuid4(), trace_id="later")
        await upgraded.write([later])
        total = await upgraded.rollup(["proj-a"], *EVER)
        assert total[0].figures == expected_figures([c for c in CALLS if c.project_id == "proj-a"] + [later])


async def test_a_call_repeated_in_one_batch_counts_once(store: Store) -> None:
    call = CALLS[0]
    await store.write([call, call, CALLS[1], call])
    rows = await store.rollup(PROJECTS, *EVER)
    assert rows[0].figures == expected_figures([call, CALLS[1]])
    assert [c.id for c in await store.recent_calls(PROJECTS)] == sorted(
        [call.id, CALLS[1].id], key=lambda i: next(c.started_at for c in CALLS if c.id == i), reverse=True
    )


@pytest.mark.parametrize("bucket", [None, Bucket.HOUR, Bucket.DAY])
async def test_several_dimensions_read_at_once_equal_each_read_alone(store: Store, bucket: Bucket | None) -> None:
    await load(store)
    dims = [*VALUES, Dimension.LATENCY]
    for window in WINDOWS[1:]:
        together = await store.rollups(PROJECTS, *window, dims, bucket)
        assert list(together) == dims
        for dim in dims:
            assert together[dim] == await store.rollup(PROJECTS, *window, dim, bucket)
    with pytest.raises(ValueError, match="hour or day"):
        await store.rollups(PROJECTS, *EVER, dims, Bucket.WEEK)
