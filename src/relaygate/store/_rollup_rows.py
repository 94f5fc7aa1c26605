"""The roll-up rows a batch of new calls adds, summed in Python, and the statements that add them.

Summing a batch before it reaches the database turns 21 roll-up rows per call (three spans, seven
dimensions) into one upsert per distinct row of the batch: most calls of a batch share their hour, day,
project and model. The rows are upserted in sorted order, so that two gateways writing into one PostgreSQL
ledger take the rows' locks in the same order and never deadlock. Only calls the ledger does not hold yet
are summed (the store checks, in the same transaction), so a batch written twice counts once.

What is summed mirrors ``_rollup_sql.py``'s statements for calls stored before the roll-ups existed, value
for value: the dimension values with their ``''``/``'='`` prefix, the buckets, the latency's bin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import add
from typing import Any

from relaygate.store._rollup_sql import OWN_KEY_DIMS, ROLLUP_COLUMNS, ROLLUP_CONFLICT
from relaygate.store._sql_rows import _us, sql_text
from relaygate.store.records import CallRecord
from relaygate.store.rollups import DAY, FOUR_WEEKS, HOUR, WEEK, bucket_of, latency_bin

__all__ = ["UPSERT_ROLLUP", "UPSERT_THREAD", "rollup_rows", "thread_rows"]

UPSERT_ROLLUP = (
    f"INSERT INTO call_rollups ({ROLLUP_COLUMNS}) VALUES ({', '.join('?' for _ in ROLLUP_COLUMNS.split(','))}) "
    f"{ROLLUP_CONFLICT}"
)
# CASE rather than min()/LEAST(): the one spelling both databases share.
UPSERT_THREAD = (
    "INSERT INTO threads (project_id, thread_id, first_seen, last_seen, calls, cost_nanos) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (project_id, thread_id) DO UPDATE SET "
    "first_seen = CASE WHEN excluded.first_seen < threads.first_seen THEN excluded.first_seen "
    "ELSE threads.first_seen END, "
    "last_seen = CASE WHEN excluded.last_seen > threads.last_seen THEN excluded.last_seen ELSE threads.last_seen END, "
    "calls = threads.calls + excluded.calls, cost_nanos = threads.cost_nanos + excluded.cost_nanos"
)


def _opt(value: str | None) -> str:
    return "" if value is None else "=" + sql_text(value)


def rollup_rows(calls: Sequence[CallRecord], bind_time: Callable[[datetime], Any]) -> list[tuple[Any, ...]]:
    """The ``call_rollups`` rows to add for ``calls``, one per distinct key, sorted by key."""
    sums: dict[tuple[str, str, str, datetime, str], tuple[int, ...]] = {}
    for c in calls:
        latency_us = _us(c.latency_ms)
        ttft_us = None if c.ttft_ms is None else _us(c.ttft_ms)
        row = (
            1, 1 if c.failed else 0, c.prompt_tokens, c.completion_tokens, c.total_tokens, c.cached_tokens,
            c.cache_write_tokens, c.reasoning_tokens, c.cost_nanos or 0, latency_us, ttft_us or 0,
            0 if ttft_us is None else 1,
        )  # fmt: skip
        latency = latency_bin(latency_us)
        provider = sql_text(c.provider)
        values: tuple[tuple[str, str], ...] = (
            ("all", ""),
            ("provider", "=" + provider),
            ("model", "=" + provider + "/" + sql_text(c.model)),
            ("user", _opt(c.user_id)),
            ("label", _opt(c.label)),
            ("key", _opt(c.key_id)),
            ("latency", "=" + latency),
        )
        if c.caller_key is not None:  # also apart, for budgets that leave them out
            values += tuple((OWN_KEY_DIMS[dim], value) for dim, value in values if dim in OWN_KEY_DIMS)
        project = sql_text(c.project_id)
        at = c.started_at
        for span, bucket in (
            ("4week", bucket_of(at, FOUR_WEEKS)),
            ("week", bucket_of(at, WEEK)),
            ("day", bucket_of(at, DAY)),
            ("hour", bucket_of(at, HOUR)),
        ):
            for dim, value in values:
                key = (project, span, dim, bucket, value)
                acc = sums.get(key)
                sums[key] = row if acc is None else tuple(map(add, acc, row))
    return [
        (project, span, dim, bind_time(bucket), value, *acc)
        for (project, span, dim, bucket, value), acc in sorted(sums.items())
    ]


def thread_rows(calls: Sequence[CallRecord], bind_time: Callable[[datetime], Any]) -> list[tuple[Any, ...]]:
    """The ``threads`` rows to add for ``calls`` (first start, last end, calls, cost), sorted by key."""
    threads: dict[tuple[str, str], list[Any]] = {}
    for c in calls:
        if c.thread_id is None:
            continue
        key = (sql_text(c.project_id), sql_text(c.thread_id))
        acc = threads.get(key)
        if acc is None:
            threads[key] = [c.started_at, c.ended_at, 1, c.cost_nanos or 0]
        else:
            acc[0] = min(acc[0], c.started_at)
            acc[1] = max(acc[1], c.ended_at)
            acc[2] += 1
            acc[3] += c.cost_nanos or 0
    return [
        (project, thread, bind_time(first), bind_time(last), count, cost)
        for (project, thread), (first, last, count, cost) in sorted(threads.items())
    ]
