"""The ledger's data: the records written per call and the figures the queries return.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from relaygate.ids import new_uuid

__all__ = [
    "AnalyticsPoint",
    "Bucket",
    "CallRecord",
    "Figures",
    "GroupBy",
    "MAX_PAGE_SIZE",
    "MessageRecord",
    "ModelEntry",
    "ModelPrices",
    "ModelUsage",
    "NANOS_PER_USD",
    "Page",
    "RecordRejectedError",
    "SchemaVersionError",
    "SpendKind",
    "SpendScope",
    "StoreError",
    "SummaryRow",
    "ThreadSummary",
    "nanos_to_usd",
    "usd_to_nanos",
    "utc",
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
    # False: leave out calls paid with the caller's own provider key (limits' byok_calls: ignore).
    caller_keys: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One call through the gateway, written once when it has ended (streamed or not, failed or not)."""

    project_id: str
    trace_id: str
    started_at: datetime
    ended_at: datetime
    id: uuid.UUID = field(default_factory=new_uuid)
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
    # The provider billed beyond what the limits reserved for the call (usage above max_tokens); the call
    # is recorded at what it billed.
    overbilled: bool = False
    # The call was paid with the caller's own provider key (LB-LLM-Key): the key's fingerprint (the first
    # 8 hex digits of its SHA-256), never the key. None: the gateway's configured key paid.
    caller_key: str | None = None

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
    # The message's name: a tool message's function (OpenAI's legacy ``function`` role and named participants).
    name: str | None = None
    call_id: uuid.UUID | None = None
    model: str | None = None
    cost_usd: float | None = None
    id: uuid.UUID = field(default_factory=new_uuid)
    # Not stored: a message of the conversation before the call's new turn, kept only when its thread has no
    # messages from an earlier call (the first call of a thread brings its whole history; later ones do not).
    earlier: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc(self.created_at, "created_at"))
        usd_to_nanos(self.cost_usd)

    @property
    def cost_nanos(self) -> int | None:
        return usd_to_nanos(self.cost_usd)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredResponse:
    """A Responses API response kept for ``previous_response_id`` and ``GET /v1/responses/{id}``.

    ``response`` is the response object as the client got it; ``input_items`` the whole input it answered,
    the earlier turns of a ``previous_response_id`` chain included, so that the next turn needs this row only.
    """

    id: str
    project_id: str
    created_at: datetime
    model: str
    input_items: list[Any]
    response: dict[str, Any]
    previous_response_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc(self.created_at, "created_at"))


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
    # Calls that answered without a known price: their cost is not in ``cost_nanos``. Counted by the management
    # API's queries, not by the dashboard's roll-ups (hence left out of comparisons).
    unpriced: int = field(default=0, compare=False)
    avg_latency_ms: float | None = None
    # Over the calls that have a time to first chunk (streamed ones).
    avg_ttft_ms: float | None = None

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)

    @property
    def known_cost_usd(self) -> float | None:
        """The cost, or ``None`` when every call that answered had no price (a sum of nothing known is no 0)."""
        return None if self.unpriced and self.unpriced >= self.calls - self.errors else self.cost_usd


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
    project_id: str | None = None
    # Calls of the thread that answered without a known price, and those that answered at all (the management
    # API's list reads them; the dashboard's does not).
    unpriced: int = 0
    answered: int | None = None

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)

    @property
    def known_cost_usd(self) -> float | None:
        """The cost, or ``None`` when every call that answered had no price."""
        answered = self.calls if self.answered is None else self.answered
        return None if self.unpriced and self.unpriced >= answered else self.cost_usd


@dataclass(frozen=True, slots=True)
class AnalyticsPoint:
    bucket_start: datetime
    figures: Figures
    # The point's group: each dimension asked for (provider, model, user, label, tag) to its value.
    group: dict[str, str | None] = field(default_factory=dict)


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
    # USD per megapixel of generated image.
    mp_price: float | None = None


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
    # How the provider's requests and answers map to the API ("openai-compatible"); kept as given.
    request_response_mapping: str | None = None
    id: uuid.UUID = field(default_factory=new_uuid)
