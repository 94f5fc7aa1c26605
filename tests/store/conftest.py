"""Fixtures of the store tests: a ``store`` over each backend (a temp SQLite file, a PostgreSQL schema).

PostgreSQL is the server at 127.0.0.1:5432 (trust auth, database ``test``; another URL can be given in
``RELAYGATE_TEST_POSTGRES``). Each test gets its own schema, dropped afterwards, and every schema is named
after this session, so parallel runs and other suites sharing the database never see each other's rows.
Without a server the PostgreSQL cases are skipped; under ``CI=true`` they fail, so CI cannot pass by
silently testing one backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from relaygate.store import CallRecord, PostgresStore, SQLiteStore, Store

POSTGRES_URL = os.environ.get("RELAYGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SESSION_PREFIX = f"rg_test_{uuid.uuid4().hex[:10]}"

StoreFactory = Callable[[], Store]


async def _drop_schemas(prefix: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        names = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix.replace("_", r"\_") + "%"
        )
        for (name,) in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    async def ping() -> None:
        with anyio.fail_after(5):
            conn = await asyncpg.connect(POSTGRES_URL)
            await conn.close()

    try:
        anyio.run(ping)
    except Exception as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc!r}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the PostgreSQL backend must be tested)")
        pytest.skip(message)
    yield POSTGRES_URL
    anyio.run(_drop_schemas, SESSION_PREFIX)  # anything a failed test left behind


def sqlite_factory(path: Path) -> StoreFactory:
    return lambda: SQLiteStore(path)


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Makes (unstarted) stores over one database, so a test can close it and open it again."""
    if request.param == "sqlite":
        yield sqlite_factory(tmp_path / "relaygate.db")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"{SESSION_PREFIX}_{uuid.uuid4().hex[:8]}"
    yield lambda: PostgresStore(url, schema=schema)
    anyio.run(_drop_schemas, schema)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    async with store_factory() as store:
        yield store


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "relaygate.db") as store:
        yield store


T0 = datetime(2024, 3, 3, 22, 30, tzinfo=UTC)  # a Sunday evening: the data crosses day and week boundaries


def make_call(project_id: str = "proj-a", started_at: datetime = T0, **fields: Any) -> CallRecord:
    """A call with plausible defaults; ``fields`` override any of them."""
    values: dict[str, Any] = {
        "project_id": project_id,
        "trace_id": uuid.uuid4().hex,
        "started_at": started_at,
        "ended_at": started_at + timedelta(milliseconds=250),
        "requested_model": "upstream/gpt-4o",
        "model": "gpt-4o",
        "provider": "upstream",
        "provider_kind": "openai",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost_usd": 0.000125,
        "latency_ms": 250.0,
    }
    values.update(fields)
    return CallRecord(**values)
