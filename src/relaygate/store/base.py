"""The ledger's interface: the records written per call, the figures the queries return, and :class:`Store`.

Everything here is plain data and an abstract class; the SQL lives in the backends (``sqlite.py``,
``postgres.py``, sharing ``_sql.py``). Money is carried as integer nano-dollars (``cost_nanos``, 1e-9 USD)
from the moment a record is stored: sums over integers are exact and the same on every backend, where
summing floats would differ in the last digits with the order the database happens to add them in.
``cost_usd`` properties convert back for display. Durations are stored as integer microseconds for the
same reason; averages are divided in Python from those exact sums.

All times are timezone-aware datetimes, normalised to UTC; a naive datetime is a :class:`ValueError`
rather than a silent guess. Query windows are half-open, ``[start, end)``, over a call's ``started_at``.
"""

from __future__ import annotations

import enum
import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

__all__ = [
    "NANOS_PER_USD",
    "AnalyticsPoint",
    "Bucket",
    "CallRecord",
    "Figures",
    "GroupBy",
    "MessageRecord",
    "ModelEntry",
    "ModelPrices",
    "ModelUsage",
    "Page",
    "RecordRejectedError",
    "SchemaVersionError",
    "SpendKind",
    "SpendScope",
    "Store",
    "StoreError",
    "SummaryRow",
    "ThreadSummary",
    "nanos_to_usd",
    "usd_to_nanos",
]

NANOS_PER_USD = 1_000_000_000
# The largest page a list query returns; keeps ``IN (...)`` lists and memory bounded.
MAX_PAGE_SIZE = 1000

T = TypeVar("T")


def usd_to_nanos(usd: float | None) -> int | None:
    """US dollars as integer nano-dollars, rounded to the nearest; ``None`` (no price known) stays ``None``."""
    if usd is None:
        return None
    if not math.isfinite(usd):
        raise ValueError(f"cost must be a finite number, not {usd!r}")
    return round(usd * NANOS_PER_USD)


def nanos_to_usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


def utc(value: datetime, name: str = "datetime") -> datetime:
    """``value`` in UTC; refuses naive datetimes, whose zone the store cannot know."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


class StoreError(Exception):
    """Base of the store's own errors."""


class SchemaVersionError(StoreError):
    """The database's schema is newer than this code knows (a newer relaygate migrated it)."""


class RecordRejectedError(StoreError):
    """The database refused the data itself (a constraint, a value out of range): retrying cannot help.

    Other exceptions from :meth:`Store.write` (connection lost, database locked, disk full) are worth a
    retry; the :class:`~relaygate.store.writer.BatchWriter` tells the two apart by this class.
    """


class Bucket(enum.StrEnum):
    """Width of a time-series bucket. Buckets start on UTC boundaries; weeks start on Monday (ISO)."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class GroupBy(enum.StrEnum):
    """A dimension of :meth:`Store.analytics_summary`. ``user`` groups by user id; ``tag`` by ``key=value``."""

    PROVIDER = "provider"
    MODEL = "model"
    USER = "user"
    LABEL = "label"
    TAG = "tag"


class SpendKind(enum.StrEnum):
    PROJECT = "project"
    KEY = "key"
    USER = "user"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class SpendScope:
    """What a budget is counted over: ``kind`` with its ``id``, optionally narrowed to one project and provider.

    ``model`` matches :attr:`CallRecord.model` (the routed model); ``user`` matches ``user_id``; ``provider``
    matches :attr:`CallRecord.provider` (a provider's name), so that a model served by two providers can be
    counted on one of them.
    """

    kind: SpendKind
    id: str
    project_id: str | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One call through the gateway, written once when it has ended (streamed or not, failed or not)."""

    project_id: str
    trace_id: str
    started_at: datetime
    ended_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    thread_id: str | None = None
    run_id: str | None = None
    label: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    key_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    user_tags: list[str] = field(default_factory=list)
    requested_model: str = ""
    model: str = ""
    provider: str = ""
    provider_kind: str = ""
    endpoint: str = "chat"  # chat | embeddings | images
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # None when no price is known for the model; such calls add nothing to cost sums.
    cost_usd: float | None = None
    status: int = 200
    error: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    # What the guards found ({id, type, stage, action, passed, reason, error, cost_usd}, ...) and, when the
    # call was routed or retried, each attempt ({provider, model, status, error, duration_ms}, ...).
    guards: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Frozen: normalising needs object.__setattr__.
        object.__setattr__(self, "started_at", utc(self.started_at, "started_at"))
        object.__setattr__(self, "ended_at", utc(self.ended_at, "ended_at"))
        usd_to_nanos(self.cost_usd)  # refuses NaN/inf now, not at flush time

    @property
    def cost_nanos(self) -> int | None:
        return usd_to_nanos(self.cost_usd)

    @property
    def failed(self) -> bool:
        """How the figures count an error: an HTTP error status, or an error after a 200 (mid-stream)."""
        return self.status >= 400 or self.error is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """One message of a thread: a request message or the answer, in the OpenAI chat shape.

    Messages are listed in (``created_at``, ``position``, ``id``) order, so ``position`` may count within a
    call or within the whole thread. ``content`` is JSON as sent: a string, a list of parts, or ``None``.
    ``cost_usd`` is the cost of the call that produced an assistant message.
    """

    project_id: str
    thread_id: str
    role: str
    created_at: datetime
    position: int = 0
    content: Any = None
    tool_calls: Any = None
    tool_call_id: str | None = None
    call_id: uuid.UUID | None = None
    model: str | None = None
    cost_usd: float | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc(self.created_at, "created_at"))
        usd_to_nanos(self.cost_usd)

    @property
    def cost_nanos(self) -> int | None:
        return usd_to_nanos(self.cost_usd)


@dataclass(frozen=True, slots=True)
class Figures:
    """Aggregates over a set of calls. Averages are ``None`` when there is nothing to average."""

    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nanos: int = 0
    avg_latency_ms: float | None = None
    # Over the calls that have a time to first chunk (streamed ones).
    avg_ttft_ms: float | None = None

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, with the number of items in the whole list for pagination."""

    items: list[T]
    total: int


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    thread_id: str
    first_seen: datetime  # the first call's start
    last_seen: datetime  # the last call's end
    calls: int
    message_count: int
    cost_nanos: int
    # The first user message's text, whitespace collapsed and truncated; None without stored messages.
    title: str | None

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)


@dataclass(frozen=True, slots=True)
class AnalyticsPoint:
    bucket_start: datetime
    figures: Figures


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One group of :meth:`Store.analytics_summary`: ``group`` maps each requested dimension to its value.

    A call without a value for a dimension (no label, no user, no tags) falls in the ``None`` group.
    """

    group: dict[str, str | None]
    figures: Figures


@dataclass(frozen=True, slots=True)
class ModelUsage:
    provider: str
    model: str
    bucket_start: datetime | None
    figures: Figures


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """Prices in USD per 1M tokens (``None``: not set), and per image by size/quality key.

    The store keeps these as plain columns and does no pricing itself; ``relaygate.pricing`` maps them.
    """

    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    cache_write: float | None = None
    per_image: dict[str, float] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelEntry:
    """A model in the registry (``POST /admin/models``): global when ``project_id`` is ``None``.

    ``name`` is unique per project (``None`` counting as one project); registering it again updates it.
    """

    name: str
    provider: str
    project_id: str | None = None
    model_name_in_provider: str | None = None
    model_type: str = "completions"
    description: str = ""
    owner_name: str = ""
    priority: int = 0
    context_size: int | None = None
    public: bool = False
    capabilities: list[str] = field(default_factory=list)
    input_types: list[str] = field(default_factory=list)
    output_types: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    prices: ModelPrices = field(default_factory=ModelPrices)
    id: uuid.UUID = field(default_factory=uuid.uuid4)


class Store(ABC):
    """The ledger and model registry, one interface over SQLite and PostgreSQL.

    ``await start()`` connects and migrates the schema; ``await close()`` releases the connections; or use
    ``async with store:``. Every query is scoped by ``project_id`` and never returns another project's
    rows; both backends return the same results, in the same order, for the same data.
    """

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @abstractmethod
    async def start(self) -> None:
        """Connect and bring the schema up to date; a second call is a no-op."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def schema_version(self) -> int:
        """The version of the schema in the database (the newest migration applied)."""

    @abstractmethod
    async def write(self, calls: Sequence[CallRecord], messages: Sequence[MessageRecord] = ()) -> None:
        """Store calls and messages in one transaction. Ids already stored are skipped, so a retry of a
        batch whose commit did go through (the reply was lost) writes nothing twice.

        Raises :class:`RecordRejectedError` when the data itself is refused.
        """

    @abstractmethod
    async def get_call(self, project_id: str, call_id: uuid.UUID) -> CallRecord | None: ...

    @abstractmethod
    async def calls_of_trace(self, project_id: str, trace_id: str) -> list[CallRecord]:
        """The project's calls of one trace (the ``X-Trace-Id`` a response carried), oldest first."""

    @abstractmethod
    async def list_threads(self, project_id: str, *, limit: int = 20, offset: int = 0) -> Page[ThreadSummary]:
        """Threads (calls with a thread id), the most recently active first, then by id."""

    @abstractmethod
    async def thread_messages(
        self, project_id: str, thread_id: str, *, limit: int = 100, offset: int = 0
    ) -> Page[MessageRecord]: ...

    @abstractmethod
    async def thread_cost(self, project_id: str, thread_id: str) -> Figures | None:
        """The figures over a thread's calls; ``None`` when the project has no call in that thread."""

    @abstractmethod
    async def analytics(self, project_id: str, start: datetime, end: datetime, bucket: Bucket) -> list[AnalyticsPoint]:
        """Figures per time bucket, oldest first; buckets without calls are left out."""

    @abstractmethod
    async def analytics_summary(
        self, project_id: str, start: datetime, end: datetime, group_by: Sequence[GroupBy]
    ) -> list[SummaryRow]:
        """Figures per group, sorted by the group values (``None`` first).

        Grouping by tag gives one row per ``key=value``, so a call with two tags counts in two rows.
        """

    @abstractmethod
    async def usage_total(self, project_id: str, start: datetime, end: datetime) -> Figures: ...

    @abstractmethod
    async def usage_by_model(
        self, project_id: str, start: datetime, end: datetime, bucket: Bucket | None = None
    ) -> list[ModelUsage]:
        """Figures per (provider, model), per bucket when one is given; sorted by bucket, provider, model."""

    @abstractmethod
    async def spend(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        """Total cost in nano-dollars of the calls in ``scope`` (for budgets)."""

    @abstractmethod
    async def register_model(self, entry: ModelEntry) -> ModelEntry:
        """Insert or update (by project and name) a model; returns it as stored (an update keeps the id)."""

    @abstractmethod
    async def registered_models(self, project_id: str | None = None) -> list[ModelEntry]:
        """With a project: the global models and that project's; without: all. Sorted by name, project."""

    @abstractmethod
    async def delete_model(self, name: str, project_id: str | None = None) -> bool: ...

    @abstractmethod
    async def set_custom_prices(self, project_id: str, prices: Mapping[str, ModelPrices]) -> None:
        """Insert or replace the prices of the given models; other models' prices stay."""

    @abstractmethod
    async def custom_prices(self, project_id: str) -> dict[str, ModelPrices]: ...

    @abstractmethod
    async def all_custom_prices(self) -> dict[str, dict[str, ModelPrices]]:
        """Every project's custom prices, by project id (for a gateway's price book at start)."""
