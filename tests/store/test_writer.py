"""The batch writer against real stores: everything submitted lands, a close flushes, failures are retried
(and bad records isolated), and a full queue drops new records and counts them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from relaygate.store import BatchWriter, CallRecord, MessageRecord, SQLiteStore, Store, WriterStats
from tests.store.conftest import T0, make_call

pytestmark = pytest.mark.anyio

EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def message(call: CallRecord, position: int) -> MessageRecord:
    return MessageRecord(
        project_id=call.project_id,
        thread_id=call.thread_id or "t",
        call_id=call.id,
        role="user" if position == 0 else "assistant",
        position=position,
        created_at=call.started_at,
        content=f"m{position}",
    )


class FlakyStore(SQLiteStore):
    """A real SQLite store whose first ``failures`` writes fail as if the database were unreachable."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures
        self.attempts: list[int] = []  # batch sizes tried

    async def write(self, calls: Sequence[CallRecord], messages: Sequence[MessageRecord] = ()) -> None:
        self.attempts.append(len(calls))
        if self.failures:
            self.failures -= 1
            raise OSError("connection refused")
        await super().write(calls, messages)


async def test_many_concurrent_submits_all_land(store: Store) -> None:
    calls = [make_call(started_at=T0 + timedelta(seconds=i), thread_id=f"t{i % 7}") for i in range(1000)]
    async with BatchWriter(store, max_batch=64, flush_interval=0.01) as writer:

        async def client(part: list[CallRecord]) -> None:
            for call in part:
                assert writer.submit(call, [message(call, 0), message(call, 1)])
                await anyio.sleep(0)  # interleave with the other clients and the writer

        async with anyio.create_task_group() as tg:
            for k in range(20):
                tg.start_soon(client, calls[k::20])
    assert writer.stats == WriterStats(
        submitted=1000, written=1000, written_messages=2000, dropped=0, rejected=0, retries=0, pending=0
    )
    assert (await store.usage_total("proj-a", *EVER)).calls == 1000
    assert sum(t.message_count for t in (await store.list_threads("proj-a", limit=10)).items) == 2000


async def test_closing_writes_everything_still_queued(sqlite_store: SQLiteStore) -> None:
    writer = BatchWriter(sqlite_store, flush_interval=3600)  # never flushes on its own during the test
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        for i in range(250):
            writer.submit(make_call(started_at=T0 + timedelta(seconds=i)))
        await anyio.sleep(0.05)
        assert writer.pending == 250 and writer.written == 0
        await writer.aclose()
    assert writer.pending == 0 and writer.written == 250
    assert (await sqlite_store.usage_total("proj-a", *EVER)).calls == 250
    assert writer.submit(make_call()) is False, "a closed writer takes nothing more"
    assert writer.dropped == 1


async def test_a_full_batch_is_written_without_waiting_for_the_interval(sqlite_store: SQLiteStore) -> None:
    async with BatchWriter(sqlite_store, max_batch=10, flush_interval=3600) as writer:
        for _ in range(10):
            writer.submit(make_call())
        with anyio.fail_after(5):
            while writer.written < 10:
                await anyio.sleep(0.01)


async def test_flush_waits_until_what_was_submitted_is_stored(sqlite_store: SQLiteStore) -> None:
    async with BatchWriter(sqlite_store, flush_interval=3600) as writer:
        calls = [make_call() for _ in range(30)]
        for call in calls:
            writer.submit(call)
        with anyio.fail_after(5):
            await writer.flush()
        assert writer.written == 30
        assert await sqlite_store.get_call("proj-a", calls[-1].id) == calls[-1]


async def test_a_writer_that_never_ran_flushes_in_the_caller(sqlite_store: SQLiteStore) -> None:
    writer = BatchWriter(sqlite_store, max_batch=4)
    for _ in range(10):
        writer.submit(make_call())
    await writer.flush()
    assert writer.written == 10
    writer.submit(make_call())
    await writer.aclose()
    assert writer.written == 11


async def test_a_failing_store_is_retried_with_the_same_batch_until_it_succeeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FlakyStore(tmp_path / "flaky.db", failures=3) as store:
        with caplog.at_level(logging.WARNING, logger="relaygate.store"):
            async with BatchWriter(store, flush_interval=0.01, retry_initial=0.01) as writer:
                calls = [make_call(started_at=T0 + timedelta(seconds=i)) for i in range(5)]
                for call in calls:
                    writer.submit(call)
                with anyio.fail_after(5):
                    await writer.flush()
                # More records queue up behind the retried batch in the meantime; they land too.
                writer.submit(make_call())
        assert store.attempts[:4] == [5, 5, 5, 5], "the batch is kept whole through the retries"
        assert writer.stats.retries == 3 and writer.written == 6 and writer.dropped == 0
        assert (await store.usage_total("proj-a", *EVER)).calls == 6
        failures = [r for r in caplog.records if "failed (attempt" in r.getMessage()]
        assert len(failures) == 3 and "connection refused" in failures[0].getMessage()


async def test_a_record_the_database_refuses_costs_only_itself(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    bad = make_call(prompt_tokens=2**70)
    good = [make_call(started_at=T0 + timedelta(seconds=i)) for i in range(9)]
    with caplog.at_level(logging.ERROR, logger="relaygate.store"):
        async with BatchWriter(sqlite_store, flush_interval=0.01) as writer:
            for call in good[:4] + [bad] + good[4:]:
                writer.submit(call)
    assert (writer.written, writer.stats.rejected, writer.stats.retries) == (9, 1, 0)
    assert (await sqlite_store.usage_total("proj-a", *EVER)).calls == 9
    assert any(str(bad.id) in r.getMessage() for r in caplog.records)


async def test_a_full_queue_drops_new_records_and_counts_them(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = BatchWriter(sqlite_store, max_pending=5)
    with caplog.at_level(logging.WARNING, logger="relaygate.store"):
        accepted = [writer.submit(make_call()) for _ in range(8)]
    assert accepted == [True] * 5 + [False] * 3
    assert (writer.pending, writer.dropped) == (5, 3)
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1, "one warning for a burst of drops, not one per record"
    await writer.aclose()
    assert writer.stats == WriterStats(
        submitted=5, written=5, written_messages=0, dropped=3, rejected=0, retries=0, pending=0
    )


async def test_a_close_gives_up_after_its_timeout_when_the_database_stays_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FlakyStore(tmp_path / "down.db", failures=10**9) as store:
        with caplog.at_level(logging.WARNING, logger="relaygate.store"):
            writer = BatchWriter(store, flush_interval=0.01, retry_initial=0.01, close_timeout=0.2)
            with anyio.fail_after(5):
                async with writer:
                    for _ in range(3):
                        writer.submit(make_call())
        assert (writer.written, writer.dropped, writer.pending) == (0, 3, 0)
        assert any("gave up" in r.getMessage() for r in caplog.records)


async def test_leaving_on_cancellation_still_writes_what_was_accepted(sqlite_store: SQLiteStore) -> None:
    with anyio.CancelScope() as scope:
        async with BatchWriter(sqlite_store, flush_interval=3600) as writer:
            for _ in range(7):
                writer.submit(make_call())
            scope.cancel()
            await anyio.sleep(1)
    assert writer.written == 7
    assert (await sqlite_store.usage_total("proj-a", *EVER)).calls == 7
