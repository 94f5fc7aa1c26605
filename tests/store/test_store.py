"""The store on both backends: schema and migrations, restarts, and every query against figures computed
by hand (in plain Python) over a fixed dataset of calls across projects, threads, users, models and days.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

from relaygate.store import (
    AnalyticsPoint,
    Bucket,
    CallRecord,
    Figures,
    GroupBy,
    MessageRecord,
    ModelEntry,
    ModelPrices,
    ModelUsage,
    Page,
    PostgresStore,
    RecordRejectedError,
    SchemaVersionError,
    SpendKind,
    SpendScope,
    SQLiteStore,
    Store,
    SummaryRow,
    open_store,
)
from relaygate.store._sql import CALL_COLUMNS, SQLStore, title_of
from relaygate.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, Migration, pending_migrations
from tests.databases import SESSION_PREFIX
from tests.store.conftest import T0, StoreFactory, make_call

pytestmark = pytest.mark.anyio

MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4")]
USERS: list[tuple[str | None, str | None, list[str]]] = [
    ("u1", "Ann", ["admin", "beta"]),
    ("u2", "Bob", []),
    (None, None, []),
]
LABELS = ["chat", "batch", None]
TAGS: list[dict[str, str]] = [{"team": "ml", "tier": "gold"}, {"team": "web"}, {}]
THREADS = ["t1", "t2", "t3", None]
START = T0 + timedelta(hours=3)
END = T0 + timedelta(days=5)
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def dataset() -> tuple[list[CallRecord], list[MessageRecord]]:
    """36 calls over ~7 days: projects a and b (b shares thread id t2), three models, users, labels and tag
    sets, streamed and plain, failed with a status or mid-stream, some without a known price."""
    calls: list[CallRecord] = []
    messages: list[MessageRecord] = []
    for i in range(36):
        project = "proj-b" if i % 4 == 3 else "proj-a"
        provider, model = MODELS[i % 3]
        user_id, user_name, user_tags = USERS[(i // 2) % 3]
        stream = i % 2 == 0
        status = 500 if i % 9 == 4 else 429 if i % 11 == 7 else 200
        error = "upstream_error" if status >= 400 else "stream interrupted" if i % 13 == 6 else None
        started = T0 + timedelta(hours=4.5 * i, microseconds=7 * i)
        prompt, completion = 100 + 17 * i, 20 + 3 * i
        call = CallRecord(
            project_id=project,
            trace_id=f"{i:032x}",
            thread_id=THREADS[(i // 2) % 4],
            run_id=f"run-{i // 5}",
            label=LABELS[i % 3 if i % 5 else 2],
            tags=TAGS[(i // 3) % 3],
            key_id=f"key-{i % 2}",
            user_id=user_id,
            user_name=user_name,
            user_tags=user_tags,
            requested_model=f"{provider}/{model}",
            model=model,
            provider=provider,
            provider_kind=provider,
            endpoint="embeddings" if i % 10 == 9 else "chat",
            stream=stream,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cached_tokens=10 * (i % 4),
            cache_write_tokens=5 * (i % 3),
            reasoning_tokens=2 * (i % 5),
            cost_usd=None if i % 7 == 5 else (prompt * 2.5 + completion * 10) / 1e6,
            status=status,
            error=error,
            latency_ms=120.25 + 13.5 * i,
            ttft_ms=40.125 + i if stream else None,
            started_at=started,
            ended_at=started + timedelta(milliseconds=120.25 + 13.5 * i),
        )
        calls.append(call)
        if call.thread_id is None:
            continue
        question: Any = (
            f"  Question   number {i}:\n" + "why? " * 40
            if i % 2
            else [
                {"type": "text", "text": f"Describe picture {i}"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ]
        )
        messages.append(
            MessageRecord(
                project_id=project,
                thread_id=call.thread_id,
                call_id=call.id,
                role="user",
                position=0,
                created_at=call.started_at,
                content=question,
            )
        )
        messages.append(
            MessageRecord(
                project_id=project,
                thread_id=call.thread_id,
                call_id=call.id,
                role="assistant",
                position=1,
                created_at=call.ended_at,
                content=None if i % 6 == 0 else f"answer {i}",
                tool_calls=[{"id": f"call_{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
                if i % 6 == 0
                else None,
                model=model,
                cost_usd=call.cost_usd,
            )
        )
    return calls, messages


CALLS, MESSAGES = dataset()


async def load(store: Store) -> None:
    # Two transactions, to show writes add up.
    await store.write(CALLS[:20], MESSAGES[:10])
    await store.write(CALLS[20:], MESSAGES[10:])


def in_window(calls: Iterable[CallRecord], project: str, start: datetime, end: datetime) -> list[CallRecord]:
    return [c for c in calls if c.project_id == project and start <= c.started_at < end]


def expected_figures(calls: Sequence[CallRecord]) -> Figures:
    """The figures computed by hand: integer sums, averages divided once at the end."""
    ttfts = [round(c.ttft_ms * 1000) for c in calls if c.ttft_ms is not None]
    return Figures(
        calls=len(calls),
        errors=sum(1 for c in calls if c.status >= 400 or c.error is not None),
        prompt_tokens=sum(c.prompt_tokens for c in calls),
        completion_tokens=sum(c.completion_tokens for c in calls),
        total_tokens=sum(c.total_tokens for c in calls),
        cached_tokens=sum(c.cached_tokens for c in calls),
        cache_write_tokens=sum(c.cache_write_tokens for c in calls),
        reasoning_tokens=sum(c.reasoning_tokens for c in calls),
        cost_nanos=sum(round(c.cost_usd * 1e9) for c in calls if c.cost_usd is not None),
        avg_latency_ms=sum(round(c.latency_ms * 1000) for c in calls) / len(calls) / 1000 if calls else None,
        avg_ttft_ms=sum(ttfts) / len(ttfts) / 1000 if ttfts else None,
    )


def bucket_of(value: datetime, bucket: Bucket) -> datetime:
    if bucket is Bucket.MINUTE:
        return value.replace(second=0, microsecond=0)
    if bucket is Bucket.HOUR:
        return value.replace(minute=0, second=0, microsecond=0)
    day = value.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket is Bucket.DAY:
        return day
    if bucket is Bucket.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def expected_series(calls: Sequence[CallRecord], bucket: Bucket) -> list[AnalyticsPoint]:
    groups: dict[datetime, list[CallRecord]] = defaultdict(list)
    for c in calls:
        groups[bucket_of(c.started_at, bucket)].append(c)
    return [AnalyticsPoint(bucket_start=b, figures=expected_figures(groups[b])) for b in sorted(groups)]


# -- schema and migrations -------------------------------------------------------------------------------


async def catalog(store: Store) -> tuple[set[str], set[str]]:
    assert isinstance(store, SQLStore)
    if isinstance(store, SQLiteStore):
        rows = await store._fetch("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'", [])
    else:
        rows = await store._fetch(
            "SELECT 'table', tablename FROM pg_tables WHERE schemaname = current_schema() UNION ALL "
            "SELECT 'index', indexname FROM pg_indexes WHERE schemaname = current_schema()",
            [],
        )
    return {r[1] for r in rows if r[0] == "table"}, {r[1] for r in rows if r[0] == "index"}


async def test_migrations_create_every_table_and_index_and_starting_again_changes_nothing(
    store: Store, store_factory: StoreFactory
) -> None:
    tables, indexes = await catalog(store)
    assert {"schema_version", "calls", "messages", "models", "custom_prices", "call_rollups", "threads"} <= tables
    # Migration 3 replaced calls_project_thread by calls_project_thread_started (it leads with the same columns).
    assert {
        "calls_project_started",
        "calls_project_thread_started",
        "calls_key_started",
        "messages_project_thread",
        "calls_project_model_started",
        "calls_project_user_started",
        "calls_project_label_started",
        "calls_project_failed_started",
        "threads_project_recent",
    } <= indexes
    assert "calls_project_thread" not in indexes
    assert await store.schema_version() == len(SQLITE_MIGRATIONS) == len(POSTGRES_MIGRATIONS)

    await store.start()  # a second start of the same store: nothing to do
    async with store_factory() as again:  # a second process on the same database: nothing to do
        assert await again.schema_version() == len(SQLITE_MIGRATIONS)
        assert await catalog(again) == (tables, indexes)
        assert isinstance(again, SQLStore)
        rows = await again._fetch("SELECT COUNT(*) FROM schema_version", [])
        assert rows[0][0] == len(SQLITE_MIGRATIONS)


async def test_a_database_of_the_first_schema_is_upgraded_keeping_its_calls(
    store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as first_release:
        first_release.setattr("relaygate.store.sqlite.SQLITE_MIGRATIONS", SQLITE_MIGRATIONS[:1])
        first_release.setattr("relaygate.store.postgres.POSTGRES_MIGRATIONS", POSTGRES_MIGRATIONS[:1])
        async with store_factory() as old:
            assert await old.schema_version() == 1
            assert isinstance(old, SQLStore)
            # The first schema's columns: those later migrations added (guards, attempts, overbilled, caller_key)
            # come last.
            first = len(CALL_COLUMNS.split(", ")) - 4
            old_columns = ", ".join(CALL_COLUMNS.split(", ")[:first])
            row = old._call_row(make_call())[:first]
            await old._transaction([(f"INSERT INTO calls ({old_columns}) VALUES ({', '.join('?' * len(row))})", [row])])
    async with store_factory() as upgraded:
        assert await upgraded.schema_version() == len(SQLITE_MIGRATIONS)
        assert (await upgraded.usage_total("proj-a", *EVER)).calls == 1
        call = make_call(
            guards=[{"id": "g", "passed": False}],
            attempts=[{"provider": "a", "status": 500}],
            overbilled=True,
            caller_key="0a1b2c3d",
        )
        await upgraded.write([call])
        stored = await upgraded.get_call("proj-a", call.id)
        assert stored is not None and stored.guards == call.guards and stored.attempts == call.attempts
        assert stored.overbilled is True and stored.caller_key == "0a1b2c3d"


async def test_a_schema_newer_than_the_code_is_refused(store: Store, store_factory: StoreFactory) -> None:
    assert isinstance(store, SQLStore)
    await store._transaction(
        [("INSERT INTO schema_version (version, description) VALUES (?, ?)", [(99, "from the future")])]
        if isinstance(store, PostgresStore)
        else [("INSERT INTO schema_version VALUES (?, ?, ?)", [(99, "from the future", 0)])]
    )
    with pytest.raises(SchemaVersionError, match="version 99"):
        await store_factory().start()


def test_pending_migrations_are_the_missing_steps_in_order() -> None:
    steps = (Migration(1, "a", ("x",)), Migration(2, "b", ("y",)))
    assert pending_migrations(0, steps) == list(steps)
    assert pending_migrations(1, steps) == [steps[1]]
    assert pending_migrations(2, steps) == []
    with pytest.raises(SchemaVersionError):
        pending_migrations(3, steps)
    with pytest.raises(AssertionError):
        pending_migrations(0, (Migration(2, "gap", ()),))


async def test_a_restart_keeps_everything(store: Store, store_factory: StoreFactory) -> None:
    await load(store)
    await store.register_model(ModelEntry(name="upstream/custom", provider="upstream"))
    await store.set_custom_prices("proj-a", {"gpt-4o": ModelPrices(input=2.5, output=10.0)})
    before = (await store.usage_total("proj-a", *EVER), await store.list_threads("proj-a", limit=10))
    await store.close()

    async with store_factory() as reopened:
        after = (await reopened.usage_total("proj-a", *EVER), await reopened.list_threads("proj-a", limit=10))
        assert after == before
        assert after[0].calls == 27
        assert [m.name for m in await reopened.registered_models()] == ["upstream/custom"]
        assert await reopened.custom_prices("proj-a") == {"gpt-4o": ModelPrices(input=2.5, output=10.0)}


# -- calls -----------------------------------------------------------------------------------------------


async def test_a_call_reads_back_exactly_and_only_in_its_project(store: Store) -> None:
    await load(store)
    for call in CALLS:
        assert await store.get_call(call.project_id, call.id) == call
    assert await store.get_call("proj-c", CALLS[0].id) is None
    assert await store.get_call("proj-a", uuid.uuid4()) is None


async def test_writing_the_same_records_again_stores_nothing_twice(store: Store) -> None:
    await load(store)
    await load(store)  # a retried batch whose first commit went through
    assert (await store.usage_total("proj-a", *EVER)).calls == 27
    assert (await store.thread_messages("proj-a", "t1")).total == len(
        [m for m in MESSAGES if m.project_id == "proj-a" and m.thread_id == "t1"]
    )


async def test_refused_data_rolls_back_the_whole_write(store: Store) -> None:
    good = make_call()
    bad = make_call(prompt_tokens=2**70)
    with pytest.raises(RecordRejectedError):
        await store.write([good, bad])
    assert await store.get_call("proj-a", good.id) is None
    await store.write([good])
    assert await store.get_call("proj-a", good.id) == good


async def test_a_field_of_the_wrong_type_is_refused_not_retried(store: Store) -> None:
    with pytest.raises(RecordRejectedError):
        await store.write([make_call(tags={"n": 1})])
    with pytest.raises(RecordRejectedError):
        await store.write([], [MessageRecord(project_id="p", thread_id="t", role="user", created_at=T0, content={1j})])


async def test_gateways_starting_together_migrate_once(store_factory: StoreFactory) -> None:
    stores = [store_factory() for _ in range(3)]
    async with anyio.create_task_group() as tg:
        for s in stores:
            tg.start_soon(s.start)
    try:
        assert [await s.schema_version() for s in stores] == [len(SQLITE_MIGRATIONS)] * 3
        await stores[0].write([make_call()])
        assert (await stores[2].usage_total("proj-a", *EVER)).calls == 1
    finally:
        for s in stores:
            await s.close()


async def test_sqlite_files_opened_at_once_by_several_gateways_all_start(tmp_path: Path) -> None:
    # Fresh files, many times over: the moment one connection switches the file to WAL, another may be
    # told "database is locked" without SQLite's busy handler being asked; the store must wait it out.
    for round_ in range(40):
        stores = [SQLiteStore(tmp_path / f"race-{round_}.db") for _ in range(4)]
        try:
            async with anyio.create_task_group() as tg:
                for s in stores:
                    tg.start_soon(s.start)
            assert [await s.schema_version() for s in stores] == [len(SQLITE_MIGRATIONS)] * 4
        finally:
            for s in stores:
                await s.close()


async def test_text_with_nul_is_stored_the_same_on_both_backends(store: Store) -> None:
    call = make_call(error="bad\x00byte", tags={"k\x00": "v"})
    await store.write([call])
    stored = await store.get_call("proj-a", call.id)
    assert stored is not None
    assert stored.error == "bad\ufffdbyte"
    assert stored.tags == {"k\ufffd": "v"}


def test_records_refuse_naive_times_and_non_finite_costs() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_call(started_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="finite"):
        make_call(cost_usd=float("nan"))
    call = make_call(started_at=datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    assert call.started_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert call.started_at.tzinfo is UTC


# -- threads ---------------------------------------------------------------------------------------------


def expected_threads(project: str) -> list[tuple[str, datetime, datetime, int, int, int, str | None]]:
    threads: dict[str, list[CallRecord]] = defaultdict(list)
    for c in CALLS:
        if c.project_id == project and c.thread_id is not None:
            threads[c.thread_id].append(c)
    rows = []
    for thread_id, calls in threads.items():
        msgs = [m for m in MESSAGES if m.project_id == project and m.thread_id == thread_id]
        first_user = min((m for m in msgs if m.role == "user"), key=lambda m: (m.created_at, m.position))
        rows.append(
            (
                thread_id,
                min(c.started_at for c in calls),
                max(c.ended_at for c in calls),
                len(calls),
                len(msgs),
                sum(c.cost_nanos or 0 for c in calls),
                title_of(first_user.content),
            )
        )
    rows.sort(key=lambda r: r[0])
    rows.sort(key=lambda r: r[2], reverse=True)
    return rows


async def test_threads_list_with_figures_newest_first_and_paginated(store: Store) -> None:
    await load(store)
    expected = expected_threads("proj-a")
    assert [r[0] for r in expected] == ["t2", "t1", "t3"]  # last activity: calls 34, 33 and 29

    page = await store.list_threads("proj-a", limit=10)
    assert page.total == 3
    got = [
        (t.thread_id, t.first_seen, t.last_seen, t.calls, t.message_count, t.cost_nanos, t.title) for t in page.items
    ]
    assert got == expected

    first, second = await store.list_threads("proj-a", limit=2), await store.list_threads("proj-a", limit=2, offset=2)
    assert first.total == second.total == 3
    assert [t.thread_id for t in first.items + second.items] == ["t2", "t1", "t3"]
    assert (await store.list_threads("proj-a", limit=2, offset=3)).items == []


async def test_thread_titles_come_from_the_first_user_message() -> None:
    assert title_of("  Hello\n  there ") == "Hello there"
    assert title_of([{"type": "text", "text": "Look"}, {"type": "image_url"}, {"type": "text", "text": "here"}]) == (
        "Look here"
    )
    long = title_of("word " * 100)
    assert long is not None and len(long) == 100 and long.endswith("…")
    assert title_of(None) is None and title_of("   ") is None
    # Each thread of project a starts with a picture (text and image parts); b's starts with a long string.
    assert {r[0]: r[6] for r in expected_threads("proj-a")} == {
        "t1": "Describe picture 0",
        "t2": "Describe picture 2",
        "t3": "Describe picture 4",
    }
    b_title = expected_threads("proj-b")[0][6]
    assert b_title is not None and b_title.startswith("Question number 3: why? why?") and b_title.endswith("…")


async def test_threads_and_their_messages_never_cross_projects(store: Store) -> None:
    await load(store)
    b_threads = await store.list_threads("proj-b", limit=10)
    assert [t.thread_id for t in b_threads.items] == [r[0] for r in expected_threads("proj-b")] == ["t2"]
    b_t2 = [c for c in CALLS if c.project_id == "proj-b" and c.thread_id == "t2"]
    assert b_threads.items[0].calls == len(b_t2)
    assert b_threads.items[0].cost_nanos == sum(c.cost_nanos or 0 for c in b_t2)

    b_messages = await store.thread_messages("proj-b", "t2")
    assert {m.project_id for m in b_messages.items} == {"proj-b"}
    assert await store.thread_messages("proj-b", "t1") == Page(items=[], total=0)
    assert (await store.list_threads("proj-c")).total == 0
    assert await store.thread_cost("proj-b", "t1") is None
    assert await store.thread_cost("proj-c", "t2") is None


async def test_thread_messages_in_order_and_paginated(store: Store) -> None:
    await load(store)
    expected = sorted(
        (m for m in MESSAGES if m.project_id == "proj-a" and m.thread_id == "t2"),
        key=lambda m: (m.created_at, m.position),
    )
    page = await store.thread_messages("proj-a", "t2", limit=1000)
    assert page.total == len(expected) == 10
    assert page.items == expected
    parts = [await store.thread_messages("proj-a", "t2", limit=4, offset=o) for o in (0, 4, 8)]
    assert [m for p in parts for m in p.items] == expected
    assert [len(p.items) for p in parts] == [4, 4, 2]
    with pytest.raises(ValueError):
        await store.thread_messages("proj-a", "t2", limit=0)
    with pytest.raises(ValueError):
        await store.list_threads("proj-a", offset=-1)


async def test_messages_of_one_call_keep_their_positions(store: Store) -> None:
    at = T0
    call = make_call(thread_id="th")
    msgs = [
        MessageRecord(project_id="proj-a", thread_id="th", role=role, position=p, created_at=at, content=f"m{p}")
        for p, role in [(2, "assistant"), (0, "system"), (1, "user")]
    ]
    await store.write([call], msgs)
    page = await store.thread_messages("proj-a", "th")
    assert [m.content for m in page.items] == ["m0", "m1", "m2"]


async def test_thread_cost_sums_the_threads_calls(store: Store) -> None:
    await load(store)
    for project, thread in [("proj-a", "t1"), ("proj-a", "t2"), ("proj-a", "t3"), ("proj-b", "t2")]:
        calls = [c for c in CALLS if c.project_id == project and c.thread_id == thread]
        assert await store.thread_cost(project, thread) == expected_figures(calls)
    t1 = await store.thread_cost("proj-a", "t1")
    assert t1 is not None and t1.calls == 10 and t1.cost_usd == t1.cost_nanos / 1e9


# -- analytics and usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", list(Bucket))
async def test_analytics_per_bucket_match_the_calls(store: Store, bucket: Bucket) -> None:
    await load(store)
    for project in ("proj-a", "proj-b"):
        expected = expected_series(in_window(CALLS, project, START, END), bucket)
        assert await store.analytics(project, START, END, bucket) == expected
    assert await store.analytics("proj-c", START, END, bucket) == []


async def test_analytics_spot_figures(store: Store) -> None:
    # A few figures worked out from the dataset's formulas, against the reference above.
    await load(store)
    days = await store.analytics("proj-a", *EVER, Bucket.DAY)
    assert [p.bucket_start.day for p in days] == [3, 4, 5, 6, 7, 8, 9, 10]
    # 2024-03-03 holds only call 0 (22:30): streamed, 100 prompt + 20 completion tokens, 120.25 ms, ttft 40.125.
    sunday = days[0].figures
    assert (sunday.calls, sunday.prompt_tokens, sunday.completion_tokens) == (1, 100, 20)
    assert (sunday.avg_latency_ms, sunday.avg_ttft_ms, sunday.cost_nanos) == (120.25, 40.125, 450_000)
    weeks = await store.analytics("proj-a", *EVER, Bucket.WEEK)
    assert [p.bucket_start for p in weeks] == [datetime(2024, 2, 26, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC)]
    assert [p.figures.calls for p in weeks] == [1, 26]


async def test_buckets_split_exactly_at_their_boundaries(store: Store) -> None:
    tick = timedelta(microseconds=1)
    edges = [
        datetime(2024, 3, 4, 10, tzinfo=UTC),  # an hour
        datetime(2024, 3, 5, tzinfo=UTC),  # a day
        datetime(2024, 3, 11, tzinfo=UTC),  # a Monday
        datetime(2024, 3, 1, tzinfo=UTC),  # a month (after a leap day)
    ]
    calls = [make_call(started_at=at, cost_usd=1.0) for edge in edges for at in (edge - tick, edge)]
    await store.write(calls)
    for bucket in (Bucket.MINUTE, Bucket.HOUR, Bucket.DAY, Bucket.WEEK, Bucket.MONTH):
        assert await store.analytics("proj-a", *EVER, bucket) == expected_series(calls, bucket)

    hours = {p.bucket_start: p.figures.calls for p in await store.analytics("proj-a", *EVER, Bucket.HOUR)}
    assert hours[datetime(2024, 3, 4, 9, tzinfo=UTC)] == 1 and hours[datetime(2024, 3, 4, 10, tzinfo=UTC)] == 1
    months = await store.analytics("proj-a", *EVER, Bucket.MONTH)
    assert [(p.bucket_start, p.figures.calls, p.figures.cost_usd) for p in months] == [
        (datetime(2024, 2, 1, tzinfo=UTC), 1, 1.0),
        (datetime(2024, 3, 1, tzinfo=UTC), 7, 7.0),
    ]
    weeks = await store.analytics("proj-a", *EVER, Bucket.WEEK)
    assert [p.bucket_start.weekday() for p in weeks] == [0] * len(weeks)

    # The window is [start, end): a call at `start` counts, one at `end` does not.
    edge = edges[0]
    total = await store.usage_total("proj-a", edge, edge + timedelta(hours=1))
    assert total.calls == 1
    assert (await store.usage_total("proj-a", edge - tick, edge)).calls == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.usage_total("proj-a", datetime(2024, 1, 1), edge)


def expected_summary(calls: Sequence[CallRecord], dims: Sequence[GroupBy]) -> list[SummaryRow]:
    def values(c: CallRecord, dim: GroupBy) -> list[str | None]:
        if dim is GroupBy.TAG:
            return [f"{k}={v}" for k, v in c.tags.items()] or [None]
        return [{"provider": c.provider, "model": c.model, "user": c.user_id, "label": c.label}[dim.value]]

    groups: dict[tuple[str | None, ...], list[CallRecord]] = defaultdict(list)
    for c in calls:
        keys: list[tuple[str | None, ...]] = [()]
        for dim in dims:
            keys = [k + (v,) for k in keys for v in values(c, dim)]
        for key in keys:
            groups[key].append(c)
    order = sorted(groups, key=lambda key: [(v is not None, v or "") for v in key])
    return [
        SummaryRow(group=dict(zip([d.value for d in dims], k, strict=True)), figures=expected_figures(groups[k]))
        for k in order
    ]


@pytest.mark.parametrize(
    "dims",
    [
        [],
        [GroupBy.PROVIDER],
        [GroupBy.MODEL],
        [GroupBy.USER],
        [GroupBy.LABEL],
        [GroupBy.TAG],
        [GroupBy.PROVIDER, GroupBy.MODEL],
        [GroupBy.TAG, GroupBy.USER],
        [GroupBy.LABEL, GroupBy.TAG, GroupBy.PROVIDER],
    ],
    ids=lambda dims: "+".join(d.value for d in dims) or "none",
)
async def test_analytics_summary_per_group(store: Store, dims: list[GroupBy]) -> None:
    await load(store)
    for project in ("proj-a", "proj-b"):
        expected = expected_summary(in_window(CALLS, project, START, END), dims)
        assert await store.analytics_summary(project, START, END, dims) == expected


async def test_summary_by_tag_counts_a_call_once_per_tag(store: Store) -> None:
    await load(store)
    rows = await store.analytics_summary("proj-a", *EVER, [GroupBy.TAG, GroupBy.TAG])  # duplicates ignored
    by_tag = {r.group["tag"]: r.figures.calls for r in rows}
    a = [c for c in CALLS if c.project_id == "proj-a"]
    assert by_tag == {
        None: sum(1 for c in a if not c.tags),
        "team=ml": sum(1 for c in a if c.tags.get("team") == "ml"),
        "team=web": sum(1 for c in a if c.tags.get("team") == "web"),
        "tier=gold": sum(1 for c in a if c.tags.get("tier") == "gold"),
    }
    assert by_tag["team=ml"] == by_tag["tier=gold"] > 0
    empty = await store.analytics_summary("proj-c", *EVER, [])
    assert empty == [SummaryRow(group={}, figures=Figures())]
    assert await store.analytics_summary("proj-c", *EVER, [GroupBy.MODEL]) == []
    with pytest.raises(ValueError):
        await store.analytics_summary("proj-a", *EVER, ["colour"])  # type: ignore[list-item]


async def test_usage_total_and_by_model(store: Store) -> None:
    await load(store)
    for project in ("proj-a", "proj-b", "proj-c"):
        calls = in_window(CALLS, project, START, END)
        assert await store.usage_total(project, START, END) == expected_figures(calls)

        by_model: dict[tuple[str, str], list[CallRecord]] = defaultdict(list)
        for c in calls:
            by_model[(c.provider, c.model)].append(c)
        assert await store.usage_by_model(project, START, END) == [
            ModelUsage(provider=p, model=m, bucket_start=None, figures=expected_figures(by_model[(p, m)]))
            for p, m in sorted(by_model)
        ]

        per_day: dict[tuple[datetime, str, str], list[CallRecord]] = defaultdict(list)
        for c in calls:
            per_day[(bucket_of(c.started_at, Bucket.DAY), c.provider, c.model)].append(c)
        assert await store.usage_by_model(project, START, END, Bucket.DAY) == [
            ModelUsage(provider=p, model=m, bucket_start=d, figures=expected_figures(per_day[(d, p, m)]))
            for d, p, m in sorted(per_day)
        ]
    assert await store.usage_total("proj-c", START, END) == Figures()


@pytest.mark.parametrize(
    ("scope", "matches"),
    [
        (SpendScope(SpendKind.PROJECT, "proj-a"), lambda c: c.project_id == "proj-a"),
        (SpendScope(SpendKind.KEY, "key-1"), lambda c: c.key_id == "key-1"),
        (
            SpendScope(SpendKind.KEY, "key-1", project_id="proj-b"),
            lambda c: c.key_id == "key-1" and c.project_id == "proj-b",
        ),
        (
            SpendScope(SpendKind.USER, "u1", project_id="proj-a"),
            lambda c: c.user_id == "u1" and c.project_id == "proj-a",
        ),
        (SpendScope(SpendKind.MODEL, "gpt-4o"), lambda c: c.model == "gpt-4o"),
        (SpendScope(SpendKind.MODEL, "gpt-4o", project_id="proj-c"), lambda c: False),
        (
            SpendScope(SpendKind.MODEL, "gpt-4o", project_id="proj-a", provider="openai"),
            lambda c: c.model == "gpt-4o" and c.provider == "openai" and c.project_id == "proj-a",
        ),
        (SpendScope(SpendKind.MODEL, "gpt-4o", provider="azure"), lambda c: False),
    ],
    ids=[
        "project",
        "key",
        "key-in-project",
        "user",
        "model",
        "model-in-empty-project",
        "model-on-provider",
        "model-on-another-provider",
    ],  # fmt: skip
)
async def test_spend_per_scope(store: Store, scope: SpendScope, matches: Any) -> None:
    await load(store)
    for start, end in [EVER, (START, END)]:
        expected = sum(c.cost_nanos or 0 for c in CALLS if matches(c) and start <= c.started_at < end)
        assert await store.spend(scope, start, end) == expected
    assert await store.spend(scope, END, END) == 0


# -- model registry and custom prices --------------------------------------------------------------------


async def test_the_model_registry_round_trips_and_is_scoped(store: Store) -> None:
    entry = ModelEntry(
        name="upstream/my-model",
        provider="upstream",
        model_name_in_provider="my-model-v1.2",
        description="A custom model",
        owner_name="openai",
        priority=3,
        context_size=128_000,
        public=True,
        capabilities=["tools"],
        input_types=["text", "image"],
        output_types=["text"],
        tags=["custom"],
        parameters={"top_p": {"default": 1, "min": 0, "max": 1, "step": 0.05, "type": "float"}},
        prices=ModelPrices(input=1.1, output=4.4, cached_input=0.275, cache_write=None, per_image={"1024x1024": 0.04}),
    )
    assert await store.register_model(entry) == entry
    private = ModelEntry(name="upstream/secret", provider="upstream", project_id="proj-a")
    await store.register_model(private)
    assert await store.registered_models() == [entry, private]
    assert await store.registered_models("proj-a") == [entry, private]
    assert await store.registered_models("proj-b") == [entry]

    updated = ModelEntry(name="upstream/my-model", provider="upstream", prices=ModelPrices(input=2.0))
    stored = await store.register_model(updated)
    assert stored.id == entry.id, "an update keeps the model's id"
    assert stored.prices == ModelPrices(input=2.0) and stored.description == ""
    same_name_in_b = await store.register_model(ModelEntry(name="upstream/my-model", provider="x", project_id="proj-b"))
    assert [m.project_id for m in await store.registered_models("proj-b")] == [None, "proj-b"]
    assert same_name_in_b.provider == "x"

    assert await store.delete_model("upstream/secret", "proj-a") is True
    assert await store.delete_model("upstream/secret", "proj-a") is False
    assert await store.registered_models("proj-a") == [stored]


async def test_custom_prices_round_trip_per_project(store: Store) -> None:
    await store.set_custom_prices(
        "proj-a",
        {
            "bedrock/pegasus": ModelPrices(input=1.23, output=2.12),
            "openai/dall-e-3": ModelPrices(per_image={"1024x1024/standard": 0.04, "1024x1792/hd": 0.12}),
        },
    )
    await store.set_custom_prices("proj-b", {"bedrock/pegasus": ModelPrices(input=9.0, output=9.0)})
    await store.set_custom_prices("proj-a", {"bedrock/pegasus": ModelPrices(input=1.5, output=2.5, cached_input=0.1)})
    await store.set_custom_prices("proj-a", {})
    assert await store.custom_prices("proj-a") == {
        "bedrock/pegasus": ModelPrices(input=1.5, output=2.5, cached_input=0.1),
        "openai/dall-e-3": ModelPrices(per_image={"1024x1024/standard": 0.04, "1024x1792/hd": 0.12}),
    }
    assert await store.custom_prices("proj-b") == {"bedrock/pegasus": ModelPrices(input=9.0, output=9.0)}
    assert await store.custom_prices("proj-c") == {}


# -- both backends, one answer ---------------------------------------------------------------------------


async def test_both_backends_give_identical_results(tmp_path: Path, postgres_url: str) -> None:
    schema = f"{SESSION_PREFIX}_{uuid.uuid4().hex[:8]}"
    async with SQLiteStore(tmp_path / "a.db") as lite, PostgresStore(postgres_url, schema=schema) as pg:
        for store in (lite, pg):
            await load(store)

        async def answers(s: Store) -> list[Any]:
            return [
                await s.list_threads("proj-a", limit=10),
                await s.thread_messages("proj-a", "t2"),
                await s.thread_cost("proj-a", "t3"),
                *[await s.analytics("proj-a", *EVER, b) for b in Bucket],
                await s.analytics_summary("proj-a", *EVER, list(GroupBy)),
                await s.usage_by_model("proj-b", *EVER, Bucket.WEEK),
                await s.spend(SpendScope(SpendKind.USER, "u2"), *EVER),
                [await s.get_call(c.project_id, c.id) for c in CALLS],
            ]

        assert await answers(lite) == await answers(pg)
    # The schema is dropped with the session's others (see conftest).


# -- URLs ------------------------------------------------------------------------------------------------


def test_open_store_picks_the_backend_from_the_url() -> None:
    relative = open_store("sqlite:///data/relaygate.db")
    assert isinstance(relative, SQLiteStore) and relative.path == "data/relaygate.db"
    absolute = open_store("sqlite:////var/lib/relaygate.db")
    assert isinstance(absolute, SQLiteStore) and absolute.path == "/var/lib/relaygate.db"
    memory = open_store("sqlite:///:memory:")
    assert isinstance(memory, SQLiteStore) and memory.path == ":memory:"
    pg = open_store("postgresql://user:secret@db:5432/ledger?schema=gw&sslmode=disable")
    assert isinstance(pg, PostgresStore)
    assert (pg.dsn, pg.schema) == ("postgresql://user:secret@db:5432/ledger?sslmode=disable", "gw")
    assert "secret" not in repr(pg)
    assert isinstance(open_store("postgres://db/ledger"), PostgresStore)
    for bad in ("mysql://db/x", "sqlite://relative.db", "sqlite:///"):
        with pytest.raises(ValueError):
            open_store(bad)
    with pytest.raises(ValueError, match="identifier"):
        PostgresStore("postgresql://db/x", schema="a; DROP TABLE calls")


async def test_an_in_memory_store_works_and_a_closed_store_says_so() -> None:
    store = open_store("sqlite:///:memory:")
    async with store:
        await store.write([make_call()])
        assert (await store.usage_total("proj-a", *EVER)).calls == 1
    with pytest.raises(RuntimeError, match="not started"):
        await store.usage_total("proj-a", *EVER)
