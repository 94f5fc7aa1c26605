"""The ledger: every call, the threads' messages, usage figures, the model registry and custom prices.

One interface, :class:`Store`, two backends chosen by URL with :func:`open_store`: SQLite (the embedded
default, one file) and PostgreSQL (several gateways, one ledger). Calls reach the store through a
:class:`BatchWriter`, off the request's path. Typical use in a lifespan::

    store = open_store("sqlite:///relaygate.db")
    async with store, BatchWriter(store) as writer:
        writer.submit(call, messages)      # from the request path: never blocks
        ...
        figures = await store.usage_total(project_id, start, end)

``PostgresStore`` is imported on first use, so the SQLite default needs no PostgreSQL driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from relaygate.store.base import (
    NANOS_PER_USD,
    AnalyticsPoint,
    Bucket,
    CallCursor,
    CallFilter,
    CallRecord,
    Dimension,
    Figures,
    GroupBy,
    MessageRecord,
    ModelEntry,
    ModelPrices,
    ModelUsage,
    Page,
    RecordRejectedError,
    RollupRow,
    SchemaVersionError,
    SpendKind,
    SpendScope,
    Store,
    StoredResponse,
    StoreError,
    SummaryRow,
    ThreadCursor,
    ThreadSummary,
    nanos_to_usd,
    usd_to_nanos,
)
from relaygate.store.sqlite import SQLiteStore
from relaygate.store.writer import BatchWriter, WriterStats

if TYPE_CHECKING:
    from relaygate.store.postgres import PostgresStore

__all__ = [
    "NANOS_PER_USD",
    "AnalyticsPoint",
    "BatchWriter",
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
    "PostgresStore",
    "RecordRejectedError",
    "RollupRow",
    "SQLiteStore",
    "SchemaVersionError",
    "SpendKind",
    "SpendScope",
    "Store",
    "StoreError",
    "StoredResponse",
    "SummaryRow",
    "ThreadCursor",
    "ThreadSummary",
    "WriterStats",
    "nanos_to_usd",
    "open_store",
    "usd_to_nanos",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from relaygate.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str) -> Store:
    """The store for a database URL, not yet started (``await store.start()`` or ``async with store``).

    - ``sqlite:///relaygate.db`` (relative path), ``sqlite:////var/lib/relaygate.db`` (absolute),
      ``sqlite:///:memory:`` (in memory, for tests);
    - ``postgresql://user:password@host:5432/name`` (or ``postgres://``); ``?schema=name`` keeps the
      tables in that schema (created when missing) instead of ``public``; other query parameters go to
      asyncpg as usual.
    """
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError(f"a SQLite URL is sqlite:///path/to/file.db (three slashes), got {url!r}")
        path = unquote(rest[1:].split("?", 1)[0])
        if not path:
            raise ValueError(f"the SQLite URL names no file: {url!r} (use sqlite:///:memory: for memory)")
        return SQLiteStore(path)
    if scheme in ("postgresql", "postgres"):
        from relaygate.store.postgres import PostgresStore

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in query if k == "schema"), None)
        dsn = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
        return PostgresStore(dsn, schema=schema)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path.db or postgresql://user@host:5432/name")
