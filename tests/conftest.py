from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from relaygate import Gateway, Settings
from relaygate.settings import ProjectSettings, ProviderSettings, RetrySettings
from tests.databases import SESSION_PREFIX, drop_schemas, new_schema, require_postgres
from tests.fakes.openai_server import FakeOpenAI
from tests.redis_server import delete_keys, new_prefix, require_redis
from tests.servers import serve_in_thread

KEY_A = "rg-test-key-project-a"
KEY_B = "rg-test-key-project-b"
KEY_AB = "rg-test-key-projects-a-and-b"
ADMIN_KEY = "rg-test-admin-key"
UPSTREAM_KEY = "sk-upstream-secret"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A gateway built with the default settings keeps its ledger in ./relaygate.db: not in the checkout.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _no_proxy_for_local_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    # OTLP exporters send with `requests`, which honours proxy variables; test servers are local.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def fake_upstream_server() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake) as base_url:
        yield fake, base_url


@pytest.fixture
def fake_upstream(fake_upstream_server: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    fake, _ = fake_upstream_server
    fake.requests.clear()
    fake.disconnected.clear()
    fake.scripts.clear()
    return fake


@pytest.fixture
def upstream_url(fake_upstream_server: tuple[FakeOpenAI, str]) -> str:
    return fake_upstream_server[1] + "/v1"


def make_settings(upstream_url: str, **overrides: Any) -> Settings:
    provider: dict[str, Any] = {"kind": "openai", "base_url": upstream_url, "api_key": UPSTREAM_KEY}
    provider.update(overrides.pop("provider", {}))
    return Settings(
        providers={"upstream": ProviderSettings(**provider)},
        projects=[
            ProjectSettings(id="proj-a", keys=[KEY_A, KEY_AB]),
            ProjectSettings(id="proj-b", keys=[KEY_B, KEY_AB]),
        ],
        admin_key=ADMIN_KEY,
        # One attempt unless a test asks for retries: most tests look at how one upstream answer is relayed.
        **{"database": "sqlite:///:memory:", "retry": RetrySettings(max_attempts=1), **overrides},
    )


@pytest.fixture
async def gateway(upstream_url: str, fake_upstream: FakeOpenAI) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(upstream_url))
    async with gateway.lifespan():
        yield gateway


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.app)
    headers = {"authorization": f"Bearer {KEY_A}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = require_postgres()
    yield url
    anyio.run(drop_schemas, SESSION_PREFIX)  # anything a failed test left behind


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ``database:`` URL of an empty ledger: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relaygate.db'}"
        return
    schema = new_schema()
    yield f"{request.getfixturevalue('postgres_url')}?schema={schema}"
    anyio.run(drop_schemas, schema)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis server; its keys are deleted afterwards."""
    prefix = new_prefix()
    yield prefix
    delete_keys(prefix)


@pytest.fixture(params=["memory", "redis"])
def counters_url(request: pytest.FixtureRequest) -> str | None:
    """A ``counters:`` URL: in-process (``None``), or the shared Redis under a prefix of this test's own."""
    if request.param == "memory":
        return None
    prefix = request.getfixturevalue("redis_prefix")
    return f"{request.getfixturevalue('redis_url')}?prefix={prefix}"
