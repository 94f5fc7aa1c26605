"""The Redis server tests run against, at 127.0.0.1:6379 (``RELAYGATE_TEST_REDIS`` gives another URL).

Other suites use the same server at the same time, so every test works under a key prefix of its own and
deletes its keys afterwards; nothing here ever flushes a database. Without a server the Redis cases are
skipped; under ``CI=true`` they fail, so CI cannot pass by silently testing one counter backend.
"""

from __future__ import annotations

import os
import uuid

import pytest
from redis import Redis

REDIS_URL = os.environ.get("RELAYGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def new_prefix() -> str:
    return f"rg_test_{uuid.uuid4().hex[:12]}"


def require_redis() -> str:
    """The server's URL once it answers; a skip (or, under CI=true, a failure) when it does not."""

    # The synchronous client: fixtures may ask for this from inside a running event loop.
    try:
        with Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5) as redis:
            redis.ping()
    except Exception as exc:
        message = f"Redis is not reachable at {REDIS_URL}: {exc!r}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the Redis counters must be tested)")
        pytest.skip(message)
    return REDIS_URL


def redis_keys(prefix: str) -> list[bytes]:
    with Redis.from_url(REDIS_URL) as redis:
        return list(redis.scan_iter(match=prefix + ":*", count=1000))


def delete_keys(prefix: str) -> None:
    with Redis.from_url(REDIS_URL) as redis:
        keys = list(redis.scan_iter(match=prefix + ":*", count=1000))
        if keys:
            redis.delete(*keys)
