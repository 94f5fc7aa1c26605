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
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from relaygate.store.base import (
    MAX_PAGE_SIZE,
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
    SpendKind,
    SpendScope,
    Store,
    SummaryRow,
    ThreadSummary,
    nanos_to_usd,
    utc,
)

__all__ = ["SQLStore"]

TITLE_LENGTH = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CALL_COLUMNS = (
    "id, project_id, trace_id, thread_id, run_id, label, tags, key_id, user_id, user_name, user_tags, "
    "requested_model, model, provider, provider_kind, endpoint, stream, prompt_tokens, completion_tokens, "
    "total_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, status, error, latency_us, "
    "ttft_us, started_at, ended_at, guards, attempts"
)
MESSAGE_COLUMNS = (
    "id, project_id, thread_id, call_id, position, created_at, role, content, tool_calls, tool_call_id, model, "
    "cost_nanos"
)
MODEL_COLUMNS = (
    "id, project_id, name, provider, model_name_in_provider, model_type, description, owner_name, priority, "
    "context_size, public, capabilities, input_types, output_types, tags, parameters, input_price, output_price, "
    "cached_input_price, cache_write_price, per_image_price"
)
PRICE_COLUMNS = "input_price, output_price, cached_input_price, cache_write_price, per_image_price"


def _placeholders(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def _updates(columns: str, keep: set[str]) -> str:
    names = [c.strip() for c in columns.split(",")]
    return ", ".join(f"{n} = excluded.{n}" for n in names if n not in keep)


INSERT_CALL = f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({_placeholders(CALL_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
INSERT_MESSAGE = (
    f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({_placeholders(MESSAGE_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
UPSERT_MODEL = (
    f"INSERT INTO models ({MODEL_COLUMNS}) VALUES ({_placeholders(MODEL_COLUMNS)}) "
    f"ON CONFLICT (project_id, name) DO UPDATE SET {_updates(MODEL_COLUMNS, {'id', 'project_id', 'name'})}"
)
UPSERT_PRICES = (
    f"INSERT INTO custom_prices (project_id, model, {PRICE_COLUMNS}) VALUES (?, ?, {_placeholders(PRICE_COLUMNS)}) "
    f"ON CONFLICT (project_id, model) DO UPDATE SET {_updates(PRICE_COLUMNS, set())}"
)

# Partial aggregates of a set of calls, in the order _Totals.add reads them. Sums stay integers (tokens,
# nano-dollars, microseconds); averages are divided in Python, so both backends agree to the last bit.
AGGREGATES = (
    "COUNT(*), "
    "COALESCE(SUM(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0), "
    "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), "
    "COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(latency_us), 0), COALESCE(SUM(ttft_us), 0), COUNT(ttft_us)"
)
GROUP_COLUMNS = {
    GroupBy.PROVIDER: "provider",
    GroupBy.MODEL: "model",
    GroupBy.USER: "user_id",
    GroupBy.LABEL: "label",
    GroupBy.TAG: "tags",
}
SPEND_COLUMNS = {
    SpendKind.PROJECT: "project_id",
    SpendKind.KEY: "key_id",
    SpendKind.USER: "user_id",
    SpendKind.MODEL: "model",
}


def _dumps(value: Any, *, sort_keys: bool = False) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()


def _loads(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def _text(value: str) -> str:
    # PostgreSQL text (and jsonb) cannot hold NUL; replacing it on both backends keeps them identical.
    return value.replace("\x00", "\ufffd")


def _opt_text(value: str | None) -> str | None:
    return None if value is None else _text(value)


def _us(ms: float) -> int:
    return round(ms * 1000)


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, got {offset}")


def _sort_key(values: Iterable[str | None]) -> tuple[tuple[bool, str], ...]:
    # None first, then by code point (the order of SQLite's BINARY and PostgreSQL's "C" collation).
    return tuple((v is not None, v or "") for v in values)


def title_of(content: Any) -> str | None:
    """A thread's title from its first user message: the text, whitespace collapsed, truncated."""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    else:
        return None
    text = " ".join(text.split())
    if len(text) > TITLE_LENGTH:
        text = text[: TITLE_LENGTH - 1].rstrip() + "…"
    return text or None


@dataclass(slots=True)
class _Totals:
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

    def add(self, row: Sequence[Any]) -> None:
        # int(): PostgreSQL returns SUM(bigint) as numeric (Decimal).
        (c, e, p, co, t, ca, cw, r, cost, lat, ttft, ttft_n) = (int(v) for v in row)
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
            avg_latency_ms=self.latency_us / self.calls / 1000 if self.calls else None,
            avg_ttft_ms=self.ttft_us / self.ttft_count / 1000 if self.ttft_count else None,
        )


def _figures(row: Sequence[Any]) -> Figures:
    totals = _Totals()
    totals.add(row)
    return totals.figures()


class SQLStore(Store):
    """:class:`Store` over SQL; a backend supplies the hooks below and the connection handling."""

    # -- hooks -----------------------------------------------------------------------------------------

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        """Run one query (``?`` placeholders) and return its rows."""

    @abstractmethod
    async def _transaction(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Run each statement once per row of arguments, all in one transaction.

        Raises :class:`~relaygate.store.base.RecordRejectedError` when the database refuses the data.
        """

    @abstractmethod
    def _bind_time(self, value: datetime) -> Any: ...

    @abstractmethod
    def _read_time(self, value: Any) -> datetime: ...

    @abstractmethod
    def _bind_uuid(self, value: uuid.UUID) -> Any: ...

    @abstractmethod
    def _bucket_sql(self, bucket: Bucket) -> str:
        """An expression truncating ``started_at`` to the start of its bucket (read with _read_bucket)."""

    @abstractmethod
    def _read_bucket(self, value: Any) -> datetime: ...

    # -- conversions -----------------------------------------------------------------------------------

    @staticmethod
    def _read_uuid(value: Any) -> uuid.UUID:
        # asyncpg hands back its own UUID type; str() normalises both backends to uuid.UUID.
        return uuid.UUID(str(value))

    def _call_row(self, c: CallRecord) -> tuple[Any, ...]:
        return (
            self._bind_uuid(c.id),
            _text(c.project_id),
            _text(c.trace_id),
            _opt_text(c.thread_id),
            _opt_text(c.run_id),
            _opt_text(c.label),
            # Sorted keys: a canonical text, so SQLite can GROUP BY it like PostgreSQL groups jsonb.
            _dumps({_text(k): _text(v) for k, v in c.tags.items()}, sort_keys=True),
            _opt_text(c.key_id),
            _opt_text(c.user_id),
            _opt_text(c.user_name),
            _dumps([_text(t) for t in c.user_tags]),
            _text(c.requested_model),
            _text(c.model),
            _text(c.provider),
            _text(c.provider_kind),
            _text(c.endpoint),
            c.stream,
            c.prompt_tokens,
            c.completion_tokens,
            c.total_tokens,
            c.cached_tokens,
            c.cache_write_tokens,
            c.reasoning_tokens,
            c.cost_nanos,
            c.status,
            _opt_text(c.error),
            _us(c.latency_ms),
            None if c.ttft_ms is None else _us(c.ttft_ms),
            self._bind_time(c.started_at),
            self._bind_time(c.ended_at),
            _dumps(c.guards),
            _dumps(c.attempts),
        )

    def _read_call(self, r: Sequence[Any]) -> CallRecord:
        tags = _loads(r[6])
        return CallRecord(
            id=self._read_uuid(r[0]),
            project_id=r[1],
            trace_id=r[2],
            thread_id=r[3],
            run_id=r[4],
            label=r[5],
            tags={k: tags[k] for k in sorted(tags)},  # jsonb reorders keys; sorted on both backends
            key_id=r[7],
            user_id=r[8],
            user_name=r[9],
            user_tags=_loads(r[10]),
            requested_model=r[11],
            model=r[12],
            provider=r[13],
            provider_kind=r[14],
            endpoint=r[15],
            stream=bool(r[16]),
            prompt_tokens=r[17],
            completion_tokens=r[18],
            total_tokens=r[19],
            cached_tokens=r[20],
            cache_write_tokens=r[21],
            reasoning_tokens=r[22],
            cost_usd=None if r[23] is None else nanos_to_usd(r[23]),
            status=r[24],
            error=r[25],
            latency_ms=r[26] / 1000,
            ttft_ms=None if r[27] is None else r[27] / 1000,
            started_at=self._read_time(r[28]),
            ended_at=self._read_time(r[29]),
            guards=_loads(r[30]),
            attempts=_loads(r[31]),
        )

    def _message_row(self, m: MessageRecord) -> tuple[Any, ...]:
        return (
            self._bind_uuid(m.id),
            _text(m.project_id),
            _text(m.thread_id),
            None if m.call_id is None else self._bind_uuid(m.call_id),
            m.position,
            self._bind_time(m.created_at),
            _text(m.role),
            None if m.content is None else _dumps(m.content),
            None if m.tool_calls is None else _dumps(m.tool_calls),
            _opt_text(m.tool_call_id),
            _opt_text(m.model),
            m.cost_nanos,
        )

    def _read_message(self, r: Sequence[Any]) -> MessageRecord:
        return MessageRecord(
            id=self._read_uuid(r[0]),
            project_id=r[1],
            thread_id=r[2],
            call_id=None if r[3] is None else self._read_uuid(r[3]),
            position=r[4],
            created_at=self._read_time(r[5]),
            role=r[6],
            content=_loads(r[7]),
            tool_calls=_loads(r[8]),
            tool_call_id=r[9],
            model=r[10],
            cost_usd=None if r[11] is None else nanos_to_usd(r[11]),
        )

    @staticmethod
    def _price_row(p: ModelPrices) -> tuple[Any, ...]:
        return (p.input, p.output, p.cached_input, p.cache_write, None if p.per_image is None else _dumps(p.per_image))

    @staticmethod
    def _read_prices(r: Sequence[Any]) -> ModelPrices:
        return ModelPrices(input=r[0], output=r[1], cached_input=r[2], cache_write=r[3], per_image=_loads(r[4]))

    def _model_row(self, m: ModelEntry) -> tuple[Any, ...]:
        return (
            self._bind_uuid(m.id),
            _text(m.project_id or ""),
            _text(m.name),
            _text(m.provider),
            _opt_text(m.model_name_in_provider),
            _text(m.model_type),
            _text(m.description),
            _text(m.owner_name),
            m.priority,
            m.context_size,
            m.public,
            _dumps(m.capabilities),
            _dumps(m.input_types),
            _dumps(m.output_types),
            _dumps(m.tags),
            _dumps(m.parameters),
            *self._price_row(m.prices),
        )

    def _read_model(self, r: Sequence[Any]) -> ModelEntry:
        return ModelEntry(
            id=self._read_uuid(r[0]),
            project_id=r[1] or None,
            name=r[2],
            provider=r[3],
            model_name_in_provider=r[4],
            model_type=r[5],
            description=r[6],
            owner_name=r[7],
            priority=r[8],
            context_size=r[9],
            public=bool(r[10]),
            capabilities=_loads(r[11]),
            input_types=_loads(r[12]),
            output_types=_loads(r[13]),
            tags=_loads(r[14]),
            parameters=_loads(r[15]),
            prices=self._read_prices(r[16:21]),
        )

    def _window(self, start: datetime, end: datetime) -> list[Any]:
        return [self._bind_time(utc(start, "start")), self._bind_time(utc(end, "end"))]

    # -- writes ----------------------------------------------------------------------------------------

    async def write(self, calls: Sequence[CallRecord], messages: Sequence[MessageRecord] = ()) -> None:
        if not calls and not messages:
            return
        try:
            call_rows = [self._call_row(c) for c in calls]
            message_rows = [self._message_row(m) for m in messages]
        except (TypeError, ValueError, AttributeError) as exc:
            # A field of the wrong type (a tag value that is not a string, content that is not JSON): as
            # refused as a value the database rejects, and as pointless to retry.
            raise RecordRejectedError(f"a record cannot be stored: {exc!r}") from exc
        await self._transaction([(INSERT_CALL, call_rows), (INSERT_MESSAGE, message_rows)])

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
        _check_page(limit, offset)
        total_rows = await self._fetch(
            "SELECT COUNT(DISTINCT thread_id) FROM calls WHERE project_id = ? AND thread_id IS NOT NULL", [project_id]
        )
        rows = await self._fetch(
            "SELECT thread_id, MIN(started_at), MAX(ended_at), COUNT(*), COALESCE(SUM(cost_nanos), 0) "
            "FROM calls WHERE project_id = ? AND thread_id IS NOT NULL "
            "GROUP BY thread_id ORDER BY MAX(ended_at) DESC, thread_id LIMIT ? OFFSET ?",
            [project_id, limit, offset],
        )
        ids = [r[0] for r in rows]
        counts: dict[str, int] = {}
        titles: dict[str, str | None] = {}
        if ids:
            marks = ", ".join("?" for _ in ids)
            for thread_id, count in await self._fetch(
                f"SELECT thread_id, COUNT(*) FROM messages WHERE project_id = ? AND thread_id IN ({marks}) "
                "GROUP BY thread_id",
                [project_id, *ids],
            ):
                counts[thread_id] = int(count)
            # The first user message of each listed thread only, not all of them.
            for thread_id, content in await self._fetch(
                "SELECT thread_id, content FROM (SELECT thread_id, content, ROW_NUMBER() OVER "
                "(PARTITION BY thread_id ORDER BY created_at, position, id) AS n FROM messages "
                f"WHERE project_id = ? AND role = 'user' AND thread_id IN ({marks})) AS firsts WHERE n = 1",
                [project_id, *ids],
            ):
                titles[thread_id] = title_of(_loads(content))
        items = [
            ThreadSummary(
                thread_id=r[0],
                first_seen=self._read_time(r[1]),
                last_seen=self._read_time(r[2]),
                calls=int(r[3]),
                message_count=counts.get(r[0], 0),
                cost_nanos=int(r[4]),
                title=titles.get(r[0]),
            )
            for r in rows
        ]
        return Page(items=items, total=int(total_rows[0][0]))

    async def thread_messages(
        self, project_id: str, thread_id: str, *, limit: int = 100, offset: int = 0
    ) -> Page[MessageRecord]:
        _check_page(limit, offset)
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
        figures = _figures(rows[0])
        return figures if figures.calls else None

    # -- analytics and usage ---------------------------------------------------------------------------

    async def analytics(self, project_id: str, start: datetime, end: datetime, bucket: Bucket) -> list[AnalyticsPoint]:
        expr = self._bucket_sql(Bucket(bucket))
        rows = await self._fetch(
            f"SELECT {expr} AS bucket, {AGGREGATES} FROM calls "
            "WHERE project_id = ? AND started_at >= ? AND started_at < ? GROUP BY bucket ORDER BY bucket",
            [project_id, *self._window(start, end)],
        )
        return [AnalyticsPoint(bucket_start=self._read_bucket(r[0]), figures=_figures(r[1:])) for r in rows]

    async def analytics_summary(
        self, project_id: str, start: datetime, end: datetime, group_by: Sequence[GroupBy]
    ) -> list[SummaryRow]:
        dims = list(dict.fromkeys(GroupBy(g) for g in group_by))  # validated, duplicates dropped, order kept
        columns = [GROUP_COLUMNS[d] for d in dims]
        select = "".join(f"{c}, " for c in columns)
        group = f" GROUP BY {', '.join(columns)}" if columns else ""
        rows = await self._fetch(
            f"SELECT {select}{AGGREGATES} FROM calls WHERE project_id = ? AND started_at >= ? AND started_at < ?"
            + group,
            [project_id, *self._window(start, end)],
        )
        # Tags are expanded here rather than in SQL (json_each vs jsonb_each_text): a SQL group per tag set
        # becomes one group per key=value, and the partial sums of groups that meet are added up.
        merged: dict[tuple[str | None, ...], _Totals] = {}
        for row in rows:
            values: list[list[str | None]] = []
            for dim, value in zip(dims, row[: len(dims)], strict=True):
                if dim is GroupBy.TAG:
                    tags = _loads(value) or {}
                    values.append([f"{k}={v}" for k, v in tags.items()] or [None])
                else:
                    values.append([value])
            for key in _product(values):
                merged.setdefault(key, _Totals()).add(row[len(dims) :])
        if not rows and not dims:
            merged[()] = _Totals()  # an ungrouped summary of nothing is one row of zeros
        return [
            SummaryRow(group=dict(zip([d.value for d in dims], key, strict=True)), figures=totals.figures())
            for key, totals in sorted(merged.items(), key=lambda item: _sort_key(item[0]))
        ]

    async def usage_total(self, project_id: str, start: datetime, end: datetime) -> Figures:
        rows = await self._fetch(
            f"SELECT {AGGREGATES} FROM calls WHERE project_id = ? AND started_at >= ? AND started_at < ?",
            [project_id, *self._window(start, end)],
        )
        return _figures(rows[0])

    async def usage_by_model(
        self, project_id: str, start: datetime, end: datetime, bucket: Bucket | None = None
    ) -> list[ModelUsage]:
        where = "WHERE project_id = ? AND started_at >= ? AND started_at < ?"
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
                figures=_figures(r[3:]),
            )
            for r in rows
        ]
        # Either every row has a bucket or none has; the epoch stands in for "no bucket" in the sort key.
        usage.sort(key=lambda u: (u.bucket_start or EPOCH, u.provider, u.model))
        return usage

    async def spend(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        column = SPEND_COLUMNS[SpendKind(scope.kind)]
        sql = (
            f"SELECT COALESCE(SUM(cost_nanos), 0) FROM calls WHERE {column} = ? AND started_at >= ? AND started_at < ?"
        )
        args = [scope.id, *self._window(start, end)]
        if scope.project_id is not None:
            sql += " AND project_id = ?"
            args.append(scope.project_id)
        if scope.provider is not None:
            sql += " AND provider = ?"
            args.append(scope.provider)
        rows = await self._fetch(sql, args)
        return int(rows[0][0])

    # -- model registry and custom prices --------------------------------------------------------------

    async def register_model(self, entry: ModelEntry) -> ModelEntry:
        await self._transaction([(UPSERT_MODEL, [self._model_row(entry)])])
        rows = await self._fetch(
            f"SELECT {MODEL_COLUMNS} FROM models WHERE project_id = ? AND name = ?",
            [_text(entry.project_id or ""), _text(entry.name)],
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
        args = [_text(project_id or ""), _text(name)]
        where = "WHERE project_id = ? AND name = ?"
        found = await self._fetch(f"SELECT COUNT(*) FROM models {where}", args)
        await self._transaction([(f"DELETE FROM models {where}", [args])])
        return int(found[0][0]) > 0

    async def set_custom_prices(self, project_id: str, prices: Mapping[str, ModelPrices]) -> None:
        rows = [(_text(project_id), _text(model), *self._price_row(p)) for model, p in prices.items()]
        if rows:
            await self._transaction([(UPSERT_PRICES, rows)])

    async def custom_prices(self, project_id: str) -> dict[str, ModelPrices]:
        rows = await self._fetch(
            f"SELECT model, {PRICE_COLUMNS} FROM custom_prices WHERE project_id = ?", [_text(project_id)]
        )
        return {r[0]: self._read_prices(r[1:]) for r in sorted(rows, key=lambda r: str(r[0]))}

    async def all_custom_prices(self) -> dict[str, dict[str, ModelPrices]]:
        rows = await self._fetch(f"SELECT project_id, model, {PRICE_COLUMNS} FROM custom_prices", [])
        out: dict[str, dict[str, ModelPrices]] = {}
        for r in sorted(rows, key=lambda r: (str(r[0]), str(r[1]))):
            out.setdefault(r[0], {})[r[1]] = self._read_prices(r[2:])
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
