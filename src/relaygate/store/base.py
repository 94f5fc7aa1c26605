"""The ledger's interface, :class:`Store`; the data it reads and writes is in :mod:`relaygate.store.records`."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from relaygate.store.records import (
    NANOS_PER_USD,
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
    SchemaVersionError,
    SpendKind,
    SpendScope,
    StoredResponse,
    StoreError,
    SummaryRow,
    ThreadSummary,
    nanos_to_usd,
    usd_to_nanos,
)
from relaygate.store.rollups import CallCursor, CallFilter, Dimension, RollupRow, ThreadCursor

__all__ = [
    "NANOS_PER_USD",
    "AnalyticsPoint",
    "Bucket",
    "CallCursor",
    "CallFilter",
    "CallRecord",
    "Dimension",
    "Figures",
    "GroupBy",
    "MessageRecord",
    "ModelEntry",
    "ModelPrices",
    "ModelUsage",
    "Page",
    "RecordRejectedError",
    "RollupRow",
    "SchemaVersionError",
    "SpendKind",
    "SpendScope",
    "Store",
    "StoreError",
    "StoredResponse",
    "SummaryRow",
    "ThreadCursor",
    "ThreadSummary",
    "nanos_to_usd",
    "usd_to_nanos",
]


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
    async def analytics(
        self, project_id: str, start: datetime, end: datetime, bucket: Bucket, group_by: Sequence[GroupBy] = ()
    ) -> list[AnalyticsPoint]:
        """Figures per time bucket, oldest first; buckets without calls are left out. With ``group_by``, one
        point per bucket and group (as :meth:`analytics_summary` groups), sorted by the group values in a bucket."""

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

    # -- the dashboard's reads (relaygate.store.rollups) ------------------------------------------------

    @abstractmethod
    async def ledger_projects(self) -> list[str]:
        """Every project with a call in the ledger, sorted."""

    @abstractmethod
    async def rollups(
        self,
        projects: Sequence[str],
        start: datetime,
        end: datetime,
        dims: Sequence[Dimension],
        bucket: Bucket | None = None,
    ) -> dict[Dimension, list[RollupRow]]:
        """Figures of the projects' calls that started in ``[start, end)``, per value of each dimension and,
        with a ``bucket`` (hour or day), per bucket; each list sorted by bucket, then value (``None`` first).
        Over one value the figures equal :meth:`usage_total`'s for the same window, read from roll-ups kept as
        calls are written (and from the calls themselves at the window's ragged edges)."""

    async def rollup(
        self,
        projects: Sequence[str],
        start: datetime,
        end: datetime,
        dim: Dimension = Dimension.ALL,
        bucket: Bucket | None = None,
    ) -> list[RollupRow]:
        """:meth:`rollups` of one dimension."""
        return (await self.rollups(projects, start, end, [dim], bucket))[Dimension(dim)]

    @abstractmethod
    async def recent_calls(
        self,
        projects: Sequence[str],
        filters: CallFilter = CallFilter(),  # noqa: B008 (frozen)
        *,
        limit: int = 50,
        before: CallCursor | None = None,
    ) -> list[CallRecord]:
        """The projects' newest calls that pass ``filters``, newest first (ties by id, descending), older than
        ``before`` when given: the next page starts after the last call of this one."""

    @abstractmethod
    async def recent_threads(
        self, projects: Sequence[str], *, limit: int = 50, before: ThreadCursor | None = None
    ) -> list[ThreadSummary]:
        """The projects' threads, the most recently active first (then by project and id), after ``before``."""

    @abstractmethod
    async def find_call(self, projects: Sequence[str], call_id: uuid.UUID) -> CallRecord | None:
        """The call with this id if it belongs to one of ``projects``."""

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

    # --- Responses API conversation state (relaygate.dialects.responses) -----------------------------------

    @abstractmethod
    async def save_response(self, response: StoredResponse) -> None:
        """Store a response; one already stored under its id is kept as it is."""

    @abstractmethod
    async def get_response(self, project_id: str, response_id: str) -> StoredResponse | None:
        """The project's response of that id; ``None`` when it has none (another project's included)."""

    @abstractmethod
    async def delete_response(self, project_id: str, response_id: str) -> bool:
        """Delete the project's response of that id; whether there was one."""
