"""The shared backend: :class:`PostgresStore`, for several gateways writing one ledger (asyncpg pool).

Everything runs in the schema given at construction (``search_path`` set on every pooled connection),
``public`` by default; a named schema is created when missing. Migrations run under a transaction-scoped
advisory lock, so gateways starting together take turns and the later ones find nothing left to do.
Times are ``timestamptz``, ids ``uuid``, text ``COLLATE "C"`` so ordering matches SQLite byte for byte.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from relaygate.store._sql import SQLStore, numbered_placeholders
from relaygate.store._sql_rows import Plan, Statements
from relaygate.store.base import Bucket, RecordRejectedError
from relaygate.store.migrations import POSTGRES_MIGRATIONS, POSTGRES_SCHEMA_VERSION_TABLE, pending_migrations

__all__ = ["PostgresStore"]

# A plain identifier: it is put into search_path and CREATE SCHEMA, so nothing that needs quoting.
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

# The data was refused (constraint, invalid value, out of range); retrying the same rows cannot succeed.
_REJECTED: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    OverflowError,
)


@functools.lru_cache(maxsize=256)
def _sql(sql: str) -> str:
    return numbered_placeholders(sql)


class PostgresStore(SQLStore):
    """The ledger in PostgreSQL. ``dsn`` is a ``postgresql://user@host:5432/name`` URL."""

    def __init__(self, dsn: str, *, schema: str | None = None, min_size: int = 1, max_size: int = 10) -> None:
        if schema is not None and not SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*), got {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        # The DSN may hold a password: show where it points, not how it logs in.
        return f"PostgresStore(schema={self.schema!r})"

    # -- connection ------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._pool is not None:
            return
        settings = {"search_path": self.schema} if self.schema else {}
        pool = await asyncpg.create_pool(
            self.dsn, min_size=self._min_size, max_size=self._max_size, server_settings=settings
        )
        try:
            await self._migrate(pool)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        await pool.close()

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn, conn.transaction():
            # Held until commit: concurrent starters wait here, then see the version the first one wrote.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"relaygate.migrate:{self.schema}")
            if self.schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(POSTGRES_SCHEMA_VERSION_TABLE)
            current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            for migration in pending_migrations(int(current), POSTGRES_MIGRATIONS):
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, description) VALUES ($1, $2)",
                    migration.version,
                    migration.description,
                )

    def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not started (await store.start() first) or already closed")
        return self._pool

    # -- SQLStore hooks --------------------------------------------------------------------------------

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        async with self._connected().acquire() as conn:
            rows = await conn.fetch(_sql(sql), *args)
        return [tuple(r.values()) for r in rows]

    async def _transaction(self, statements: Statements | Plan, call_ids: Sequence[Any] = ()) -> None:
        try:
            async with self._connected().acquire() as conn, conn.transaction():
                planned = statements
                if callable(planned):
                    # Only the writer that made a batch writes its ids (and retries it one attempt at a time), so
                    # what this finds stays true until COMMIT.
                    found = await conn.fetch("SELECT id FROM calls WHERE id = ANY($1::uuid[])", list(call_ids))
                    planned = planned({str(row[0]) for row in found})
                for sql, rows in planned:
                    if rows:
                        await conn.executemany(_sql(sql), rows)
        except _REJECTED as exc:
            raise RecordRejectedError(f"PostgreSQL refused the records: {exc}") from exc

    async def schema_version(self) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(version), 0) FROM schema_version", [])
        return int(rows[0][0])

    def _bind_time(self, value: datetime) -> Any:
        return value

    def _read_time(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def _bind_uuid(self, value: uuid.UUID) -> Any:
        return value

    def _bucket_sql(self, bucket: Bucket) -> str:
        # In UTC whatever the session's TimeZone; date_trunc('week') starts weeks on Monday (ISO).
        return f"date_trunc('{Bucket(bucket).value}', started_at AT TIME ZONE 'UTC')"

    def _read_bucket(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)  # a timestamp without time zone, meaning UTC
