"""Fixtures of the store tests: a ``store`` over each backend (a temp SQLite file, a PostgreSQL schema).

The databases are those of ``tests/databases.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from relaygate.store import CallRecord, PostgresStore, SQLiteStore, Store
from tests.databases import drop_schemas, new_schema

StoreFactory = Callable[[], Store]


def sqlite_factory(path: Path) -> StoreFactory:
    return lambda: SQLiteStore(path)


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Makes (unstarted) stores over one database, so a test can close it and open it again."""
    if request.param == "sqlite":
        yield sqlite_factory(tmp_path / "relaygate.db")
        return
    url = request.getfixturevalue("postgres_url")
    schema = new_schema()
    yield lambda: PostgresStore(url, schema=schema)
    anyio.run(drop_schemas, schema)


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
