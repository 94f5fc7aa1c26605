"""What the SQL backends share below the queries: column lists, row conversions and the dialect hooks.

:class:`SQLRows` declares the hooks a backend supplies (how statements run, how ids and times are bound
and read back, how a time is truncated to a bucket) and turns records into rows and rows back into
records with them; :class:`~relaygate.store._sql.SQLStore` writes its queries on top.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from relaygate.store._aggregates import Totals
from relaygate.store.base import Store
from relaygate.store.records import (
    MAX_PAGE_SIZE,
    Bucket,
    CallRecord,
    GroupBy,
    MessageRecord,
    ModelEntry,
    ModelPrices,
    SpendKind,
    nanos_to_usd,
    utc,
)

__all__ = [
    "CALL_COLUMNS",
    "DELETE_REPEATED_HISTORY",
    "MESSAGE_COLUMNS",
    "MODEL_COLUMNS",
    "Plan",
    "SQLRows",
    "Statements",
    "Totals",
    "title_of",
]

TITLE_LENGTH = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CALL_COLUMNS = (
    "id, project_id, trace_id, thread_id, run_id, label, tags, key_id, user_id, user_name, user_tags, "
    "requested_model, model, provider, provider_kind, endpoint, stream, prompt_tokens, completion_tokens, "
    "total_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, status, error, latency_us, "
    "ttft_us, started_at, ended_at, guards, attempts, overbilled, caller_key"
)
MESSAGE_COLUMNS = (
    "id, project_id, thread_id, call_id, position, created_at, role, content, tool_calls, tool_call_id, model, "
    "cost_nanos, name"
)
MODEL_COLUMNS = (
    "id, project_id, name, provider, model_name_in_provider, model_type, description, owner_name, priority, "
    "context_size, public, capabilities, input_types, output_types, tags, parameters, input_price, output_price, "
    "cached_input_price, cache_write_price, per_image_price, mp_price"
)
PRICE_COLUMNS = "input_price, output_price, cached_input_price, cache_write_price, per_image_price, mp_price"


Statements = Sequence[tuple[str, Sequence[Sequence[Any]]]]
# Statements decided inside a transaction, from the ids of a batch's calls that are stored already.
Plan = Callable[[set[str]], Statements]


def _placeholders(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def _updates(columns: str, keep: set[str]) -> str:
    names = [c.strip() for c in columns.split(",")]
    return ", ".join(f"{n} = excluded.{n}" for n in names if n not in keep)


INSERT_CALL = f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({_placeholders(CALL_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
INSERT_MESSAGE = (
    f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({_placeholders(MESSAGE_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
# A call's earlier messages (its first positions) go again when its thread already had messages before it.
DELETE_REPEATED_HISTORY = (
    "DELETE FROM messages WHERE call_id = ? AND position < ? AND EXISTS "
    "(SELECT 1 FROM messages AS e WHERE e.project_id = ? AND e.thread_id = ? AND e.created_at < ?)"
)
UPSERT_MODEL = (
    f"INSERT INTO models ({MODEL_COLUMNS}) VALUES ({_placeholders(MODEL_COLUMNS)}) "
    f"ON CONFLICT (project_id, name) DO UPDATE SET {_updates(MODEL_COLUMNS, {'id', 'project_id', 'name'})}"
)
UPSERT_PRICES = (
    f"INSERT INTO custom_prices (project_id, model, {PRICE_COLUMNS}) VALUES (?, ?, {_placeholders(PRICE_COLUMNS)}) "
    f"ON CONFLICT (project_id, model) DO UPDATE SET {_updates(PRICE_COLUMNS, set())}"
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


dumps = _dumps


def loads(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def sql_text(value: str) -> str:
    # PostgreSQL text (and jsonb) cannot hold NUL; replacing it on both backends keeps them identical.
    return value.replace("\x00", "\ufffd")


def _opt_text(value: str | None) -> str | None:
    return None if value is None else sql_text(value)


def _us(ms: float) -> int:
    return round(ms * 1000)


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, got {offset}")


def sort_key(values: Iterable[str | None]) -> tuple[tuple[bool, str], ...]:
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


class SQLRows(Store):
    """Rows of the ledger's tables and the hooks a backend supplies to bind and read them."""

    # -- hooks -----------------------------------------------------------------------------------------

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        """Run one query (``?`` placeholders) and return its rows."""

    @abstractmethod
    async def _transaction(self, statements: Statements | Plan, call_ids: Sequence[Any] = ()) -> None:
        """Run each statement once per row of arguments, all in one transaction.

        ``statements`` may be a :data:`Plan`: called inside the transaction with the ids (as text) of the
        ``call_ids`` (bound ids) that the calls table already holds, it returns the statements to run.
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
            sql_text(c.project_id),
            sql_text(c.trace_id),
            _opt_text(c.thread_id),
            _opt_text(c.run_id),
            _opt_text(c.label),
            # Sorted keys: a canonical text, so SQLite can GROUP BY it like PostgreSQL groups jsonb.
            _dumps({sql_text(k): sql_text(v) for k, v in c.tags.items()}, sort_keys=True),
            _opt_text(c.key_id),
            _opt_text(c.user_id),
            _opt_text(c.user_name),
            _dumps([sql_text(t) for t in c.user_tags]),
            sql_text(c.requested_model),
            sql_text(c.model),
            sql_text(c.provider),
            sql_text(c.provider_kind),
            sql_text(c.endpoint),
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
            c.overbilled,
            _opt_text(c.caller_key),
        )

    def _read_call(self, r: Sequence[Any]) -> CallRecord:
        tags = loads(r[6])
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
            user_tags=loads(r[10]),
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
            guards=loads(r[30]),
            attempts=loads(r[31]),
            overbilled=bool(r[32]),
            caller_key=r[33],
        )

    def _message_row(self, m: MessageRecord) -> tuple[Any, ...]:
        return (
            self._bind_uuid(m.id),
            sql_text(m.project_id),
            sql_text(m.thread_id),
            None if m.call_id is None else self._bind_uuid(m.call_id),
            m.position,
            self._bind_time(m.created_at),
            sql_text(m.role),
            None if m.content is None else _dumps(m.content),
            None if m.tool_calls is None else _dumps(m.tool_calls),
            _opt_text(m.tool_call_id),
            _opt_text(m.model),
            m.cost_nanos,
            _opt_text(m.name),
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
            content=loads(r[7]),
            tool_calls=loads(r[8]),
            tool_call_id=r[9],
            model=r[10],
            cost_usd=None if r[11] is None else nanos_to_usd(r[11]),
            name=r[12],
        )

    @staticmethod
    def _price_row(p: ModelPrices) -> tuple[Any, ...]:
        per_image = None if p.per_image is None else _dumps(p.per_image)
        return (p.input, p.output, p.cached_input, p.cache_write, per_image, p.mp_price)

    @staticmethod
    def _read_prices(r: Sequence[Any]) -> ModelPrices:
        return ModelPrices(
            input=r[0], output=r[1], cached_input=r[2], cache_write=r[3], per_image=loads(r[4]), mp_price=r[5]
        )

    def _model_row(self, m: ModelEntry) -> tuple[Any, ...]:
        return (
            self._bind_uuid(m.id),
            sql_text(m.project_id or ""),
            sql_text(m.name),
            sql_text(m.provider),
            _opt_text(m.model_name_in_provider),
            sql_text(m.model_type),
            sql_text(m.description),
            sql_text(m.owner_name),
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
            capabilities=loads(r[11]),
            input_types=loads(r[12]),
            output_types=loads(r[13]),
            tags=loads(r[14]),
            parameters=loads(r[15]),
            prices=self._read_prices(r[16:22]),
        )

    def _window(self, start: datetime, end: datetime) -> list[Any]:
        return [self._bind_time(utc(start, "start")), self._bind_time(utc(end, "end"))]
