"""The queries both backends share: :class:`SQLStore`, written once against a few dialect hooks.

The SQL here is the common subset of SQLite and PostgreSQL (``?`` placeholders, which the PostgreSQL
backend renumbers to ``$n``). What differs is left to the subclasses: how a value is bound and read
back (ids, times, booleans), the expression that truncates a time to a bucket, and how statements run.
Where a result could depend on the database (ordering text, merging tag groups, dividing averages), the
work is done here in Python, so both backends return the same thing for the same data.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from relaygate.store._aggregates import AGGREGATES, Totals, figures_of
from relaygate.store._rollup_rows import UPSERT_ROLLUP, UPSERT_THREAD, rollup_rows, thread_rows
from relaygate.store._sql_dashboard import DashboardQueries
from relaygate.store._sql_rows import (
    CALL_COLUMNS,
    DELETE_REPEATED_HISTORY,
    EPOCH,
    GROUP_COLUMNS,
    INSERT_CALL,
    INSERT_MESSAGE,
    MESSAGE_COLUMNS,
    MODEL_COLUMNS,
    PRICE_COLUMNS,
    UPSERT_MODEL,
    UPSERT_PRICES,
    Statements,
    check_page,
    dumps,
    loads,
    sort_key,
    sql_text,
    title_of,
)
from relaygate.store.records import (
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
    RecordRejectedError,
    StoredResponse,
    SummaryRow,
    ThreadSummary,
)

__all__ = ["CALL_COLUMNS", "SQLStore", "numbered_placeholders", "title_of"]

RESPONSE_COLUMNS = "id, project_id, created_at, model, previous_response_id, input_items, response"
INSERT_RESPONSE = f"INSERT INTO responses ({RESPONSE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"


class SQLStore(DashboardQueries):
    """:class:`Store` over SQL; a backend supplies the hooks of :class:`SQLRows` and the connection handling."""

    # -- writes ----------------------------------------------------------------------------------------

    async def write(self, calls: Sequence[CallRecord], messages: Sequence[MessageRecord] = ()) -> None:
        if not calls and not messages:
            return
        unique = _first_of_each(calls)
        try:
            call_rows = [self._call_row(c) for c in unique]
            message_rows = [self._message_row(m) for m in messages]
            history_rows = self._history_rows(messages)
        except (TypeError, ValueError, AttributeError) as exc:
            # A field of the wrong type (a tag value that is not a string, content that is not JSON): as
            # refused as a value the database rejects, and as pointless to retry.
            raise RecordRejectedError(f"a record cannot be stored: {exc!r}") from exc

        def plan(stored: set[str]) -> Statements:
            # Calls already stored (a batch retried after its commit went through) add nothing, roll-ups included.
            new = [(c, row) for c, row in zip(unique, call_rows, strict=True) if str(c.id) not in stored]
            added = [c for c, _ in new]
            return [
                (INSERT_CALL, [row for _, row in new]),
                (UPSERT_ROLLUP, rollup_rows(added, self._bind_time)),
                (UPSERT_THREAD, thread_rows(added, self._bind_time)),
                (INSERT_MESSAGE, message_rows),
                (DELETE_REPEATED_HISTORY, history_rows),
            ]

        await self._transaction(plan, [self._bind_uuid(c.id) for c in unique])

    def _history_rows(self, messages: Sequence[MessageRecord]) -> list[tuple[Any, ...]]:
        """One row of DELETE_REPEATED_HISTORY per call that brought earlier messages."""
        earlier: dict[uuid.UUID, list[MessageRecord]] = {}
        for m in messages:
            if m.earlier and m.call_id is not None:
                earlier.setdefault(m.call_id, []).append(m)
        return [
            (self._bind_uuid(call_id), len(ms), ms[0].project_id, ms[0].thread_id, self._bind_time(ms[0].created_at))
            for call_id, ms in earlier.items()
        ]

    # -- calls and threads -----------------------------------------------------------------------------

    async def get_call(self, project_id: str, call_id: uuid.UUID) -> CallRecord | None:
        rows = await self._fetch(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ? AND id = ?", [project_id, self._bind_uuid(call_id)]
        )
        return self._read_call(rows[0]) if rows else None

    async def calls_of_trace(self, project_id: str, trace_id: str) -> list[CallRecord]:
        rows = await self._fetch(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ? AND trace_id = ? ORDER BY started_at, id",
            [project_id, trace_id],
        )
        return [self._read_call(r) for r in rows]

    async def list_threads(self, project_id: str, *, limit: int = 20, offset: int = 0) -> Page[ThreadSummary]:
        check_page(limit, offset)
        # The threads table is kept by a trigger as calls are written (_rollup_sql.py): no scan of the calls.
        total_rows = await self._fetch("SELECT COUNT(*) FROM threads WHERE project_id = ?", [project_id])
        rows = await self._fetch(
            "SELECT project_id, thread_id, first_seen, last_seen, calls, cost_nanos FROM threads "
            "WHERE project_id = ? ORDER BY last_seen DESC, thread_id LIMIT ? OFFSET ?",
            [project_id, limit, offset],
        )
        return Page(items=await self._summaries(rows), total=int(total_rows[0][0]))

    async def thread_messages(
        self, project_id: str, thread_id: str, *, limit: int = 100, offset: int = 0
    ) -> Page[MessageRecord]:
        check_page(limit, offset)
        where = "WHERE project_id = ? AND thread_id = ?"
        total = await self._fetch(f"SELECT COUNT(*) FROM messages {where}", [project_id, thread_id])
        rows = await self._fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages {where} ORDER BY created_at, position, id LIMIT ? OFFSET ?",
            [project_id, thread_id, limit, offset],
        )
        return Page(items=[self._read_message(r) for r in rows], total=int(total[0][0]))

    async def thread_cost(self, project_id: str, thread_id: str) -> Figures | None:
        rows = await self._fetch(
            f"SELECT {AGGREGATES} FROM calls WHERE project_id = ? AND thread_id = ?", [project_id, thread_id]
        )
        figures = figures_of(rows[0])
        return figures if figures.calls else None

    # -- analytics and usage ---------------------------------------------------------------------------

    async def analytics(self, project_id: str, start: datetime, end: datetime, bucket: Bucket) -> list[AnalyticsPoint]:
        expr = self._bucket_sql(Bucket(bucket))
        rows = await self._fetch(
            f"SELECT {expr} AS bucket, {AGGREGATES} FROM calls "
            "WHERE project_id = ? AND started_at >= ? AND started_at < ? GROUP BY bucket ORDER BY bucket",
            [project_id, *self._window(start, end)],
        )
        return [AnalyticsPoint(bucket_start=self._read_bucket(r[0]), figures=figures_of(r[1:])) for r in rows]

    async def analytics_summary(
        self, project_id: str, start: datetime, end: datetime, group_by: Sequence[GroupBy]
    ) -> list[SummaryRow]:
        dims = list(dict.fromkeys(GroupBy(g) for g in group_by))  # validated, duplicates dropped, order kept
        columns = [GROUP_COLUMNS[d] for d in dims]
        select = "".join(f"{c}, " for c in columns)
        group = f" GROUP BY {', '.join(columns)}" if columns else ""
        # Calls refused before routing have no provider or model: left out of groups by either.
        routed = " AND model <> ''" if {GroupBy.PROVIDER, GroupBy.MODEL} & set(dims) else ""
        rows = await self._fetch(
            f"SELECT {select}{AGGREGATES} FROM calls WHERE project_id = ? AND started_at >= ? AND started_at < ?"
            + routed
            + group,
            [project_id, *self._window(start, end)],
        )
        # Tags are expanded here rather than in SQL (json_each vs jsonb_each_text): a SQL group per tag set
        # becomes one group per key=value, and the partial sums of groups that meet are added up.
        merged: dict[tuple[str | None, ...], Totals] = {}
        for row in rows:
            values: list[list[str | None]] = []
            for dim, value in zip(dims, row[: len(dims)], strict=True):
                if dim is GroupBy.TAG:
                    tags = loads(value) or {}
                    values.append([f"{k}={v}" for k, v in tags.items()] or [None])
                else:
                    values.append([value])
            for key in _product(values):
                merged.setdefault(key, Totals()).add(row[len(dims) :])
        if not rows and not dims:
            merged[()] = Totals()  # an ungrouped summary of nothing is one row of zeros
        return [
            SummaryRow(group=dict(zip([d.value for d in dims], key, strict=True)), figures=totals.figures())
            for key, totals in sorted(merged.items(), key=lambda item: sort_key(item[0]))
        ]

    async def usage_total(self, project_id: str, start: datetime, end: datetime) -> Figures:
        rows = await self._fetch(
            f"SELECT {AGGREGATES} FROM calls WHERE project_id = ? AND started_at >= ? AND started_at < ?",
            [project_id, *self._window(start, end)],
        )
        return figures_of(rows[0])

    async def usage_by_model(
        self, project_id: str, start: datetime, end: datetime, bucket: Bucket | None = None
    ) -> list[ModelUsage]:
        # Calls refused before routing have no model: they are in the totals, not in any model's row.
        where = "WHERE project_id = ? AND started_at >= ? AND started_at < ? AND model <> ''"
        args = [project_id, *self._window(start, end)]
        if bucket is None:
            rows = await self._fetch(
                f"SELECT NULL, provider, model, {AGGREGATES} FROM calls {where} GROUP BY 2, 3", args
            )
        else:
            expr = self._bucket_sql(Bucket(bucket))
            rows = await self._fetch(
                f"SELECT {expr} AS bucket, provider, model, {AGGREGATES} FROM calls {where} GROUP BY bucket, 2, 3",
                args,
            )
        usage = [
            ModelUsage(
                provider=r[1],
                model=r[2],
                bucket_start=None if r[0] is None else self._read_bucket(r[0]),
                figures=figures_of(r[3:]),
            )
            for r in rows
        ]
        # Either every row has a bucket or none has; the epoch stands in for "no bucket" in the sort key.
        usage.sort(key=lambda u: (u.bucket_start or EPOCH, u.provider, u.model))
        return usage

    # -- model registry and custom prices --------------------------------------------------------------

    async def register_model(self, entry: ModelEntry) -> ModelEntry:
        await self._transaction([(UPSERT_MODEL, [self._model_row(entry)])])
        rows = await self._fetch(
            f"SELECT {MODEL_COLUMNS} FROM models WHERE project_id = ? AND name = ?",
            [sql_text(entry.project_id or ""), sql_text(entry.name)],
        )
        return self._read_model(rows[0])

    async def registered_models(self, project_id: str | None = None) -> list[ModelEntry]:
        if project_id is None:
            rows = await self._fetch(f"SELECT {MODEL_COLUMNS} FROM models", [])
        else:
            rows = await self._fetch(f"SELECT {MODEL_COLUMNS} FROM models WHERE project_id IN ('', ?)", [project_id])
        models = [self._read_model(r) for r in rows]
        models.sort(key=lambda m: (m.name, m.project_id or ""))
        return models

    async def delete_model(self, name: str, project_id: str | None = None) -> bool:
        args = [sql_text(project_id or ""), sql_text(name)]
        where = "WHERE project_id = ? AND name = ?"
        found = await self._fetch(f"SELECT COUNT(*) FROM models {where}", args)
        await self._transaction([(f"DELETE FROM models {where}", [args])])
        return int(found[0][0]) > 0

    async def set_custom_prices(self, project_id: str, prices: Mapping[str, ModelPrices]) -> None:
        rows = [(sql_text(project_id), sql_text(model), *self._price_row(p)) for model, p in prices.items()]
        if rows:
            await self._transaction([(UPSERT_PRICES, rows)])

    async def custom_prices(self, project_id: str) -> dict[str, ModelPrices]:
        rows = await self._fetch(
            f"SELECT model, {PRICE_COLUMNS} FROM custom_prices WHERE project_id = ?", [sql_text(project_id)]
        )
        return {r[0]: self._read_prices(r[1:]) for r in sorted(rows, key=lambda r: str(r[0]))}

    async def all_custom_prices(self) -> dict[str, dict[str, ModelPrices]]:
        rows = await self._fetch(f"SELECT project_id, model, {PRICE_COLUMNS} FROM custom_prices", [])
        out: dict[str, dict[str, ModelPrices]] = {}
        for r in sorted(rows, key=lambda r: (str(r[0]), str(r[1]))):
            out.setdefault(r[0], {})[r[1]] = self._read_prices(r[2:])
        return out

    # -- stored responses (the Responses API's conversation state) ----------------------------------------

    async def save_response(self, response: StoredResponse) -> None:
        row = (
            response.id,
            response.project_id,
            self._bind_time(response.created_at),
            sql_text(response.model),
            response.previous_response_id,
            dumps(response.input_items),
            dumps(response.response),
        )
        await self._transaction([(INSERT_RESPONSE, [row])])

    async def get_response(self, project_id: str, response_id: str) -> StoredResponse | None:
        rows = await self._fetch(
            f"SELECT {RESPONSE_COLUMNS} FROM responses WHERE project_id = ? AND id = ?", [project_id, response_id]
        )
        if not rows:
            return None
        r = rows[0]
        return StoredResponse(
            id=r[0],
            project_id=r[1],
            created_at=self._read_time(r[2]),
            model=r[3],
            previous_response_id=r[4],
            input_items=loads(r[5]),
            response=loads(r[6]),
        )

    async def delete_response(self, project_id: str, response_id: str) -> bool:
        where, args = "WHERE project_id = ? AND id = ?", [project_id, response_id]
        found = await self._fetch(f"SELECT COUNT(*) FROM responses {where}", args)
        await self._transaction([(f"DELETE FROM responses {where}", [args])])
        return bool(found[0][0])


def _first_of_each(calls: Sequence[CallRecord]) -> list[CallRecord]:
    """One call per id (the first of a repeated one), in the batch's order."""
    seen: set[uuid.UUID] = set()
    out = []
    for call in calls:
        if call.id not in seen:
            seen.add(call.id)
            out.append(call)
    return out


def _product(values: list[list[str | None]]) -> list[tuple[str | None, ...]]:
    keys: list[tuple[str | None, ...]] = [()]
    for options in values:
        keys = [key + (option,) for key in keys for option in options]
    return keys


def numbered_placeholders(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (the SQL here has no ``?`` anywhere else)."""
    counter = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _m: f"${next(counter)}", sql)
