from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from relaygate import Gateway, Settings
from relaygate.settings import ProjectSettings, ProviderSettings
from tests.fakes.openai_server import FakeOpenAI
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
        **overrides,
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
