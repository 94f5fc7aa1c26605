"""The embedded backend: :class:`SQLiteStore`, one SQLite file (or ``:memory:``) for one machine.

Driver: the standard library's ``sqlite3``, run in anyio worker threads, rather than ``aiosqlite``.
``aiosqlite`` is itself a thread wrapped around ``sqlite3``, so it adds a dependency without adding
capability, and it is asyncio-only where relaygate is written against anyio. Here one connection is
opened per store and every use of it goes through a :class:`anyio.CapacityLimiter` of 1: the connection
is used by one thread at a time, statements never interleave, and a transaction cannot be entered by a
second task half-way. (``check_same_thread=False`` only lifts sqlite3's check that it is always the
*same* thread; Python's sqlite3 is built thread-safe, and the limiter serialises all use.) A cancelled
caller waits for its statement to finish (anyio does not abandon the thread), so a transaction is
always committed or rolled back, never left open.

A file database runs in WAL mode with ``synchronous=NORMAL``: readers do not block the writer, and a
crash of the process loses nothing committed (a power cut may lose the last transactions, not corrupt
the file). ``busy_timeout`` lets a second process on the same file wait for the lock instead of failing.
Times are stored as integer microseconds since the epoch (UTC), ids as text.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from relaygate.store._sql import SQLStore
from relaygate.store._sql_rows import Plan, Statements
from relaygate.store.base import Bucket, RecordRejectedError
from relaygate.store.migrations import SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION_TABLE, pending_migrations

__all__ = ["SQLiteStore"]

R = TypeVar("R")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
BUSY_TIMEOUT_MS = 5000
# Ids looked up per statement (SQLite's limit on bound values is far above it).
ID_CHUNK = 500

_US = {Bucket.MINUTE: 60_000_000, Bucket.HOUR: 3_600_000_000, Bucket.DAY: 86_400_000_000}
_WEEK_US = 7 * 86_400_000_000
# 1970-01-01 was a Thursday; weeks are counted from Monday 1970-01-05 so they start on Mondays (ISO).
_MONDAY_US = 4 * 86_400_000_000

# Errors about the data rather than the database: retrying the same batch cannot succeed.
_REJECTED = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, sqlite3.ProgrammingError, OverflowError)


def _while_locked(step: Callable[[], object]) -> None:
    """Run a start-up step again while another process holds the lock, up to the busy timeout.

    Switching to WAL needs a moment of exclusive access, and SQLite answers that request with "database
    is locked" at once rather than through the busy handler; gateways started together (``serve
    --workers``) on one file meet exactly that.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)  # a worker thread, never the event loop
        pause = min(pause * 2, 0.1)


def to_us(value: datetime) -> int:
    # Integer arithmetic on timedeltas: exact to the microsecond, unlike timestamp() (a float).
    return (value - EPOCH) // MICROSECOND


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class SQLiteStore(SQLStore):
    """The ledger in one SQLite file; ``path=":memory:"`` keeps it in memory for the store's lifetime."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._conn: sqlite3.Connection | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- connection ------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._conn is not None:
            return
        # Made here, not in __init__: anyio primitives need a running event loop.
        self._limiter = anyio.CapacityLimiter(1)
        self._conn = await self._run(self._open)

    async def close(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        await self._run(conn.close)

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; this module says BEGIN and COMMIT itself.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if self.path != ":memory:":  # WAL needs a file
                _while_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
                conn.execute("PRAGMA synchronous = NORMAL")
            _while_locked(lambda: self._migrate(conn))
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        # IMMEDIATE takes the write lock before reading the version, so two processes starting on one file
        # cannot both decide to apply the same step.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(SQLITE_SCHEMA_VERSION_TABLE)
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            for migration in pending_migrations(current, SQLITE_MIGRATIONS):
                # One statement at a time: executescript() would COMMIT the transaction first.
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, time.time_ns() // 1000),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # some errors (disk full) already rolled it back
                conn.execute("ROLLBACK")
            raise

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        assert self._limiter is not None, "SQLiteStore used before start()"
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SQLiteStore is not started (await store.start() first) or already closed")
        return self._conn

    # -- SQLStore hooks --------------------------------------------------------------------------------

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        conn = self._connection()

        def fetch() -> list[Sequence[Any]]:
            return conn.execute(sql, tuple(args)).fetchall()

        return await self._run(fetch)

    async def _transaction(self, statements: Statements | Plan, call_ids: Sequence[Any] = ()) -> None:
        conn = self._connection()

        def run() -> None:
            # IMMEDIATE: the write lock is held from the start, so what a plan reads stays true until COMMIT.
            conn.execute("BEGIN IMMEDIATE")
            try:
                planned = statements
                if callable(planned):
                    stored: set[str] = set()
                    for i in range(0, len(call_ids), ID_CHUNK):
                        chunk = tuple(call_ids[i : i + ID_CHUNK])
                        marks = ", ".join("?" for _ in chunk)
                        found = conn.execute(f"SELECT id FROM calls WHERE id IN ({marks})", chunk)
                        stored.update(str(row[0]) for row in found)
                    planned = planned(stored)
                for sql, rows in planned:
                    if rows:
                        conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:  # some errors (disk full) already rolled it back
                    conn.execute("ROLLBACK")
                if isinstance(exc, _REJECTED):
                    raise RecordRejectedError(f"SQLite refused the records: {exc}") from exc
                raise

        await self._run(run)

    async def schema_version(self) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(version), 0) FROM schema_version", [])
        return int(rows[0][0])

    def _bind_time(self, value: datetime) -> Any:
        return to_us(value)

    def _read_time(self, value: Any) -> datetime:
        return from_us(value)

    def _bind_uuid(self, value: uuid.UUID) -> Any:
        return str(value)

    def _bucket_sql(self, bucket: Bucket) -> str:
        if bucket in _US:
            size = _US[bucket]
            return f"(started_at / {size}) * {size}"
        if bucket is Bucket.WEEK:
            return f"((started_at - {_MONDAY_US}) / {_WEEK_US}) * {_WEEK_US} + {_MONDAY_US}"
        # Months are not a fixed width: let SQLite's calendar find the first of the month.
        return "CAST(strftime('%s', started_at / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000"

    def _read_bucket(self, value: Any) -> datetime:
        return from_us(value)
