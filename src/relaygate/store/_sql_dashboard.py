"""The dashboard's queries on both SQL backends: roll-ups over a window, the calls list, the threads list.

Every query names its projects (a list, never "all": the dashboard asks :meth:`ledger_projects` first), so
each one is a range of an index whose first column is the project. Lists are paged by cursor (keyset), not
by offset, so the thousandth page costs what the first does.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from relaygate.store._aggregates import UNPRICED
from relaygate.store._rollup_sql import latency_lead
from relaygate.store._sql_rows import CALL_COLUMNS, loads, title_of
from relaygate.store._sql_spend import SpendQueries
from relaygate.store.records import MAX_PAGE_SIZE, Bucket, CallRecord, Figures, ThreadSummary, utc
from relaygate.store.rollups import (
    DAY,
    FOUR_WEEKS,
    HOUR,
    CallCursor,
    CallFilter,
    Dimension,
    RollupRow,
    Segment,
    ThreadCursor,
    extend,
    segments,
)

__all__ = ["DashboardQueries"]

_COLUMNS = (
    "calls, errors, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens, "
    "reasoning_tokens, cost_nanos, latency_us, ttft_us, ttft_count"
)
# A segment's sums, named s0 to s11 (a union's columns are named by its first part) in the order of AGGREGATES.
_SUMS = ", ".join(f"SUM({column}) AS s{i}" for i, column in enumerate(_COLUMNS.split(", ")))
_NAMED = ", ".join(f"{column} AS s{i}" for i, column in enumerate(_COLUMNS.split(", ")))
# The value of each dimension computed from a row of calls, as the roll-up triggers write it.
_RAW_VALUES = {
    Dimension.ALL: "''",
    Dimension.PROVIDER: "'=' || provider",
    Dimension.MODEL: "'=' || provider || '/' || model",
    Dimension.USER: "CASE WHEN user_id IS NULL THEN '' ELSE '=' || user_id END",
    Dimension.LABEL: "CASE WHEN label IS NULL THEN '' ELSE '=' || label END",
    Dimension.KEY: "CASE WHEN key_id IS NULL THEN '' ELSE '=' || key_id END",
    Dimension.LATENCY: (
        "'=' || length(CAST(latency_us AS TEXT)) || ':' || "
        + latency_lead("CAST(substr(CAST(latency_us AS TEXT), 1, 2) AS INTEGER)")
    ),
}
_DIMENSIONS = {dim.value: dim for dim in Dimension}
# What a ragged edge's calls are read with.
_EDGE_COLUMNS = (
    "started_at, provider, model, user_id, label, key_id, status, error, prompt_tokens, completion_tokens, "
    "total_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, latency_us, ttft_us"
)
# The segments' sums added up, by position (each segment names its columns differently).
_OUTER_SUMS = ", ".join(f"CAST(SUM(s{i}) AS BIGINT)" for i in range(12))
# A ragged edge's calls summed as a roll-up row is (AGGREGATES, named as _SUMS).
_CALL_SUMS = (
    "COUNT(*) AS s0, SUM(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END) AS s1, "
    "SUM(prompt_tokens) AS s2, SUM(completion_tokens) AS s3, SUM(total_tokens) AS s4, SUM(cached_tokens) AS s5, "
    "SUM(cache_write_tokens) AS s6, SUM(reasoning_tokens) AS s7, COALESCE(SUM(cost_nanos), 0) AS s8, "
    "SUM(latency_us) AS s9, COALESCE(SUM(ttft_us), 0) AS s10, COUNT(ttft_us) AS s11"
)
_FAILED = "(status >= 400 OR error IS NOT NULL)"
_SIZES = {Bucket.HOUR: HOUR, Bucket.DAY: DAY}


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _figures(sums: Sequence[Any]) -> Figures:
    # int(): PostgreSQL sums bigints as numeric. Positional, as Figures declares them: thousands of rows a read.
    c, e, p, co, t, ca, cw, r, cost, lat, ttft, ttft_n = map(int, sums)
    return Figures(
        c,
        e,
        p,
        co,
        t,
        ca,
        cw,
        r,
        cost,
        avg_latency_ms=lat / c / 1000 if c else None,
        avg_ttft_ms=ttft / ttft_n / 1000 if ttft_n else None,
    )


def _decode(value: str) -> str | None:
    return value[1:] if value else None


class DashboardQueries(SpendQueries):
    """The dashboard's reads, over the hooks of :class:`SQLRows`."""

    async def ledger_projects(self) -> list[str]:
        # A skip scan: one index probe per project, however many calls each has.
        rows = await self._fetch(
            "WITH RECURSIVE p(id) AS (SELECT MIN(project_id) FROM calls UNION ALL "
            "SELECT (SELECT MIN(project_id) FROM calls WHERE project_id > p.id) FROM p WHERE p.id IS NOT NULL) "
            "SELECT id FROM p WHERE id IS NOT NULL",
            [],
        )
        return [r[0] for r in rows]

    async def rollups(
        self,
        projects: Sequence[str],
        start: datetime,
        end: datetime,
        dims: Sequence[Dimension],
        bucket: Bucket | None = None,
    ) -> dict[Dimension, list[RollupRow]]:
        wanted = list(dict.fromkeys(Dimension(d) for d in dims))
        if bucket is not None and Bucket(bucket) not in _SIZES:
            raise ValueError("roll-ups are bucketed by hour or day")
        size = _SIZES[Bucket(bucket)] if bucket is not None else None
        out: dict[Dimension, list[RollupRow]] = {dim: [] for dim in wanted}
        start, end = utc(start, "start"), utc(end, "end")
        if not projects or not wanted or start >= end:
            return out
        last = await self._last_start(projects)
        if last is None or last < start:
            return out
        if last < end:
            # Nothing started at or after the window's end (a window up to now, the dashboard's): its last,
            # ragged part is all of its hour's, day's or week's calls so far, read from that one roll-up row
            # rather than from finer rows and the calls.
            end = extend(end, size or FOUR_WEEKS)
        parts = segments(start, end, coarsest=size or FOUR_WEEKS)
        # The latency histogram on its own: its bins are read for their counts only (a long series has
        # thousands of them), the other dimensions for every figure.
        rows = []
        if Dimension.LATENCY in wanted:
            rows += await self._sum_segments(projects, parts, [Dimension.LATENCY], bucket, counts=True)
        others = [d for d in wanted if d is not Dimension.LATENCY]
        if others:
            rows += await self._sum_segments(projects, parts, others, bucket, counts=False)
        times: dict[Any, datetime] = {}
        counts: dict[int, Figures] = {}  # a latency bin's figures are its count: thousands of rows, few counts
        for row in rows:
            dim, at = _DIMENSIONS[row[0]], row[1]
            start_of = None if bucket is None else times.get(at) or times.setdefault(at, self._read_bucket(at))
            if dim is Dimension.LATENCY:
                n = int(row[3])
                figures = counts.get(n) or counts.setdefault(n, Figures(calls=n))
            else:
                figures = _figures(row[3:])
            out[dim].append(RollupRow(start_of, _decode(row[2]), figures))
        for found in out.values():
            found.sort(key=lambda r: (r.bucket_start is not None, r.bucket_start, r.value is not None, r.value or ""))
        return out

    async def _sum_segments(
        self,
        projects: Sequence[str],
        parts: Sequence[Segment],
        dims: Sequence[Dimension],
        bucket: Bucket | None,
        *,
        counts: bool,
    ) -> list[Sequence[Any]]:
        """(dimension, bucket, value, sums...) of the window cut into ``parts``, in one statement: the segments'
        rows summed by the database (a long window brings tens of thousands of roll-up rows, a user's per week
        and per day and hour at the edges; none of them crosses into Python). Without buckets, each segment is
        summed by value first (its weeks or days fold into one row a value); with them, a segment's rows are
        already one per bucket, value and project, and are summed once. ``counts``: the number of calls only."""
        edges = [s for s in parts if s.source == "calls"]
        selects: list[str] = []
        args: list[Any] = []
        if bucket is not None:
            columns = f"dim, bucket_start AS started_at, value, {'calls AS s0' if counts else _NAMED}"
        else:
            columns = f"dim, NULL, value, {'SUM(calls) AS s0' if counts else _SUMS}"
        for segment in (s for s in parts if s.source != "calls"):
            selects.append(
                f"SELECT {columns} FROM call_rollups WHERE project_id IN ({_marks(projects)}) AND span = ? "
                f"AND dim IN ({_marks(dims)}) AND bucket_start >= ? AND bucket_start < ?"
                + ("" if bucket is not None else " GROUP BY dim, value")
            )
            args += [*projects, segment.source, *(d.value for d in dims)]
            args += [self._bind_time(segment.start), self._bind_time(segment.end)]
        with_edges = ""
        if edges:
            # The ragged edges' calls are read once (a CTE used more than once is materialised by both).
            ranges = " UNION ALL ".join(
                f"SELECT {_EDGE_COLUMNS} FROM calls WHERE project_id IN ({_marks(projects)}) "
                "AND started_at >= ? AND started_at < ?"
                for _ in edges
            )
            with_edges = f"WITH edge AS ({ranges}) "
            edge_args: list[Any] = []
            for segment in edges:
                edge_args += [*projects, self._bind_time(segment.start), self._bind_time(segment.end)]
            args = edge_args + args
            hour = self._bucket_sql(Bucket.HOUR) if bucket is not None else "NULL"
            selects += [
                f"SELECT '{dim.value}' AS dim, {hour} AS started_at, {_RAW_VALUES[dim]} AS value, "
                f"{'COUNT(*) AS s0' if counts else _CALL_SUMS} FROM edge GROUP BY {'2, 3' if bucket else '3'}"
                for dim in dims
            ]
        when = self._bucket_sql(Bucket(bucket)) if bucket is not None else "NULL"
        sums = _OUTER_SUMS.split(", ")[:1] if counts else _OUTER_SUMS.split(", ")
        return await self._fetch(
            f"{with_edges}SELECT dim, {when}, value, {', '.join(sums)} FROM ({' UNION ALL '.join(selects)}) "
            f"AS parts GROUP BY {'1, 2, 3' if bucket is not None else '1, 3'}",
            args,
        )

    async def _last_start(self, projects: Sequence[str]) -> datetime | None:
        """When the newest call of ``projects`` started (one index probe a project); ``None``: no calls."""
        probes = " UNION ALL ".join("SELECT MAX(started_at) AS at FROM calls WHERE project_id = ?" for _ in projects)
        rows = await self._fetch(f"SELECT MAX(at) FROM ({probes}) AS probes", list(projects))
        return None if rows[0][0] is None else self._read_time(rows[0][0])

    async def recent_calls(
        self,
        projects: Sequence[str],
        filters: CallFilter = CallFilter(),  # noqa: B008 (frozen)
        *,
        limit: int = 50,
        before: CallCursor | None = None,
    ) -> list[CallRecord]:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        pages = [await self._project_calls(p, filters, limit, before) for p in dict.fromkeys(projects)]
        # Each project's page is newest first; the merged page too (ties by id, as within a project).
        merged = heapq.merge(*pages, key=lambda c: (c.started_at, c.id.hex), reverse=True)
        return [call for _, call in zip(range(limit), merged, strict=False)]

    async def _project_calls(
        self, project: str, f: CallFilter, limit: int, before: CallCursor | None
    ) -> list[CallRecord]:
        where = ["project_id = ?"]
        args: list[Any] = [project]
        # The most selective filter given is the one whose index the list is read from (a thread, then a user,
        # then a label, then a model); the others are written so that no index applies to them (`|| ''`), so
        # that a planner without statistics cannot walk a model's million calls to find one user's fifty.
        chosen = next((name for name in ("thread", "user", "label", "model") if getattr(f, name) is not None), None)
        for name, columns in (("thread", ["thread_id"]), ("user", ["user_id"]), ("label", ["label"]),
                              ("model", ["provider", "model"])):  # fmt: skip
            value = getattr(f, name)
            if value is None:
                continue
            values = value.partition("/")[::2] if name == "model" else (value,)
            for column, item in zip(columns, values, strict=True):
                where.append(f"{column} = ?" if name == chosen else f"{column} || '' = ?")
                args.append(item)
        if f.status == "error":
            where.append(_FAILED)
        elif f.status == "ok":
            where.append(f"NOT {_FAILED}")
        elif f.status is not None:
            status = int(f.status)
            # Error statuses also satisfy the partial index's condition, so the planner can use it.
            where.append(f"status = ? AND {_FAILED}" if status >= 400 else "status = ?")
            args.append(status)
        if f.start is not None:
            where.append("started_at >= ?")
            args.append(self._bind_time(utc(f.start, "start")))
        if f.end is not None:
            where.append("started_at < ?")
            args.append(self._bind_time(utc(f.end, "end")))
        if before is not None:
            # The first term is the index range; the second breaks ties at the cursor's instant by id.
            at = self._bind_time(before.started_at)
            where.append("started_at <= ? AND (started_at < ? OR id < ?)")
            args += [at, at, self._bind_uuid(before.id)]
        rows = await self._fetch(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE {' AND '.join(where)} ORDER BY started_at DESC, id DESC LIMIT ?",
            [*args, limit],
        )
        return [self._read_call(r) for r in rows]

    async def recent_threads(
        self, projects: Sequence[str], *, limit: int = 50, before: ThreadCursor | None = None
    ) -> list[ThreadSummary]:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        pages = []
        for project in sorted(set(projects)):
            where, args = "project_id = ?", [project]
            if before is not None:
                at = self._bind_time(before.last_seen)
                if project > before.project_id:
                    where += " AND last_seen <= ?"
                    args = [project, at]
                elif project < before.project_id:
                    where += " AND last_seen < ?"
                    args = [project, at]
                else:
                    where += " AND last_seen <= ? AND (last_seen < ? OR thread_id > ?)"
                    args = [project, at, at, before.thread_id]
            rows = await self._fetch(
                "SELECT project_id, thread_id, first_seen, last_seen, calls, cost_nanos FROM threads "
                f"WHERE {where} ORDER BY last_seen DESC, thread_id LIMIT ?",
                [*args, limit],
            )
            pages.append([(self._read_time(r[3]), r) for r in rows])
        merged = heapq.merge(*pages, key=lambda item: (-item[0].timestamp(), item[1][0], item[1][1]))
        rows = [row for _, (_, row) in zip(range(limit), merged, strict=False)]
        return await self._summaries(rows)

    async def _summaries(self, rows: Sequence[Sequence[Any]]) -> list[ThreadSummary]:
        """Threads rows (project, thread, first, last, calls, cost) with their message counts and titles."""
        counts: dict[tuple[str, str], int] = {}
        unpriced: dict[tuple[str, str], tuple[int, int]] = {}
        titles: dict[tuple[str, str], str | None] = {}
        by_project: dict[str, list[str]] = {}
        for r in rows:
            by_project.setdefault(r[0], []).append(r[1])
        for project, ids in by_project.items():
            marks = _marks(ids)
            for thread_id, count in await self._fetch(
                f"SELECT thread_id, COUNT(*) FROM messages WHERE project_id = ? AND thread_id IN ({marks}) "
                "GROUP BY thread_id",
                [project, *ids],
            ):
                counts[project, thread_id] = int(count)
            # How many of each listed thread's calls answered, and how many of those had no price.
            for thread_id, without_price, answered in await self._fetch(
                f"SELECT thread_id, COALESCE(SUM({UNPRICED}), 0), "
                "COALESCE(SUM(CASE WHEN status < 400 AND error IS NULL THEN 1 ELSE 0 END), 0) FROM calls "
                f"WHERE project_id = ? AND thread_id IN ({marks}) GROUP BY thread_id",
                [project, *ids],
            ):
                unpriced[project, thread_id] = (int(without_price), int(answered))
            # The first user message of each listed thread only, not all of them.
            for thread_id, content in await self._fetch(
                "SELECT thread_id, content FROM (SELECT thread_id, content, ROW_NUMBER() OVER "
                "(PARTITION BY thread_id ORDER BY created_at, position, id) AS n FROM messages "
                f"WHERE project_id = ? AND role = 'user' AND thread_id IN ({marks})) AS firsts WHERE n = 1",
                [project, *ids],
            ):
                titles[project, thread_id] = title_of(loads(content))
        return [
            ThreadSummary(
                thread_id=r[1],
                first_seen=self._read_time(r[2]),
                last_seen=self._read_time(r[3]),
                calls=int(r[4]),
                message_count=counts.get((r[0], r[1]), 0),
                cost_nanos=int(r[5]),
                title=titles.get((r[0], r[1])),
                project_id=r[0],
                unpriced=unpriced.get((r[0], r[1]), (0, 0))[0],
                answered=unpriced.get((r[0], r[1]), (0, None))[1],
            )
            for r in rows
        ]

    async def find_call(self, projects: Sequence[str], call_id: uuid.UUID) -> CallRecord | None:
        if not projects:
            return None
        rows = await self._fetch(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE id = ? AND project_id IN ({_marks(projects)})",
            [self._bind_uuid(call_id), *projects],
        )
        return self._read_call(rows[0]) if rows else None
