"""A model prefix that names no provider is a 404 naming it, even with a default provider: never a model of
the default provider under the whole name. A prefix that names a preset says how to configure it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from relaygate import Gateway
from relaygate.settings import ProviderSettings, Settings
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture
async def client(upstream_url: str, fake_upstream: FakeOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    providers = {
        "upstream": ProviderSettings(kind="openai", base_url=upstream_url, api_key="sk-up"),
        # A vLLM-like provider that lists a model whose name holds a slash.
        "local": ProviderSettings(kind="openai", base_url=upstream_url, models=["meta-llama/Llama-3.1-8B", "plain"]),
    }
    gateway = Gateway(Settings(providers=providers, default_provider="upstream", database=None))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest.mark.parametrize(("path", "model"), [("/v1/chat/completions", "acme/gpt-4o"), ("/v1/images", "up:gpt-image-1")])
async def test_an_unknown_prefix_is_a_404_naming_it_and_the_providers(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI, path: str, model: str
) -> None:
    body = {"model": model, "messages": HI} if path.endswith("completions") else {"model": model, "prompt": "a cat"}
    response = await client.post(path, json=body)
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    prefix = model.split("/")[0].split(":")[0]
    assert f"'{prefix}'" in error["message"] and "upstream" in error["message"] and "local" in error["message"]
    assert fake_upstream.requests == []


async def test_a_preset_prefix_says_how_to_configure_it_and_bare_names_still_go_to_the_default(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    response = await client.post("/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": HI})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "provider_not_configured"
    assert "OPENAI_API_KEY" in response.json()["error"]["message"]
    for model in ("gpt-4o", "upstream/gpt-4o-mini", "local/meta-llama/Llama-3.1-8B"):
        response = await client.post("/v1/chat/completions", json={"model": model, "messages": HI})
        assert response.status_code == 200, response.text
    assert fake_upstream.models_seen() == ["gpt-4o", "gpt-4o-mini", "meta-llama/Llama-3.1-8B"]
