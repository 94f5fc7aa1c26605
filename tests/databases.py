"""The databases tests run against: a SQLite file, and the PostgreSQL server at 127.0.0.1:5432.

PostgreSQL is reached with trust auth on database ``test`` (``RELAYGATE_TEST_POSTGRES`` gives another URL).
Each test gets a schema of its own, named after this session and dropped afterwards, so parallel runs and
other suites sharing the database never see each other's rows. Without a server the PostgreSQL cases are
skipped; under ``CI=true`` they fail, so CI cannot pass by silently testing one backend.
"""

from __future__ import annotations

import os
import uuid

import anyio
import asyncpg
import pytest

POSTGRES_URL = os.environ.get("RELAYGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SESSION_PREFIX = f"rg_test_{uuid.uuid4().hex[:10]}"


async def drop_schemas(prefix: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        names = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix.replace("_", r"\_") + "%"
        )
        for (name,) in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


def require_postgres() -> str:
    """The server's URL once it answers; a skip (or, under CI=true, a failure) when it does not."""

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
    return POSTGRES_URL


def new_schema() -> str:
    return f"{SESSION_PREFIX}_{uuid.uuid4().hex[:8]}"
