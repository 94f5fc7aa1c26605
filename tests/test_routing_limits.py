"""Fallbacks that reach every target, rate limits answered as rate limits, through the whole stack.

- Every target of a virtual model gets at least one attempt: ``retry.max_attempts`` counts the attempts of
  each target, so listing a fallback always means it is tried.
- When every target tried is rate limited the client gets a 429 at once, with the soonest ``Retry-After``
  counted from now, once that wait is beyond ``retry.max_retry_after`` or the deadline; and 429s never open
  a target's circuit breaker (whose 503 SDKs would raise as a server error).

The upstreams are ``tests/fakes/openai_server.py`` (``status-<code>``, scripts) and the hostile fake
(``limited-<n>``: a 429 with ``Retry-After: <n>`` in each provider's dialect).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from relaygate.settings import ProviderSettings, Settings
from tests.fakes.hostile_server import HostileProvider
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import serve_in_thread

pytestmark = pytest.mark.anyio

HI = [{"role": "user", "content": "Hi"}]
TINY_RETRY = {"backoff": 0.001, "max_backoff": 0.005}


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    with serve_in_thread(HostileProvider()) as url:
        yield url


def routing(upstream_url: str, hostile_url: str, **overrides: Any) -> Settings:
    providers = {
        "upstream": ProviderSettings(kind="openai", base_url=upstream_url, api_key="sk-test"),
        "rude": ProviderSettings(kind="openai", base_url=hostile_url + "/openai/v1", api_key="sk-test"),
        "claude": ProviderSettings(kind="anthropic", base_url=hostile_url + "/anthropic/v1", api_key="sk-test"),
        "google": ProviderSettings(kind="gemini", base_url=hostile_url + "/gemini/v1beta", api_key="sk-test"),
    }
    retry = {**TINY_RETRY, **overrides.pop("retry", {})}
    return Settings(providers=providers, retry=retry, database=None, **overrides)


async def serving(settings: Settings) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    gateway = Gateway(settings)
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as client:
            yield gateway, client


async def chat(client: httpx.AsyncClient, model: str, **params: Any) -> httpx.Response:
    return await client.post("/v1/chat/completions", json={"model": model, "messages": HI, **params})


# --- item 9: every listed target is tried -------------------------------------------------------------------


@pytest.mark.parametrize("retry", [{}, {"max_attempts": 1}], ids=["default", "max_attempts-1"])
async def test_a_virtual_model_reaches_its_fourth_target(
    upstream_url: str, hostile_url: str, fake_upstream: FakeOpenAI, retry: dict[str, Any]
) -> None:
    targets = ["upstream/status-500", "upstream/status-502", "upstream/status-503", "upstream/gpt-4o"]
    async for _, client in serving(
        routing(upstream_url, hostile_url, models={"four": {"targets": targets}}, retry=retry)
    ):
        response = await chat(client, "four")
    assert response.status_code == 200 and response.headers["x-model-name"] == "gpt-4o"
    assert response.headers["x-relaygate-attempts"] == "4"
    # Each target once, in order, before any is retried.
    assert fake_upstream.models_seen() == ["status-500", "status-502", "status-503", "gpt-4o"]


async def test_max_attempts_bounds_the_attempts_of_each_target(
    upstream_url: str, hostile_url: str, fake_upstream: FakeOpenAI
) -> None:
    models = {"pair": {"targets": ["upstream/status-500", "upstream/status-503"], "retry": {"max_attempts": 2}}}
    async for _, client in serving(routing(upstream_url, hostile_url, models=models)):
        response = await chat(client, "pair")
    assert response.status_code == 503 and response.headers["x-relaygate-attempts"] == "4"
    assert fake_upstream.models_seen() == ["status-500", "status-503", "status-500", "status-503"]


# --- item 10: rate limits --------------------------------------------------------------------------------------


async def test_a_429_beyond_max_retry_after_reaches_the_client_at_once_by_default(
    upstream_url: str, hostile_url: str
) -> None:
    async for _, client in serving(routing(upstream_url, hostile_url)):
        started = time.monotonic()
        response = await chat(client, "rude/limited-7")
        took = time.monotonic() - started
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response.headers["retry-after"] == "7" and response.headers["x-relaygate-attempts"] == "1"
    assert took < 3, "a 7 s Retry-After is the client's to wait (its SDK retries), not the gateway's"


@pytest.mark.parametrize("order", [["rude/limited-40", "claude/limited-20"], ["claude/limited-20", "rude/limited-40"]])
async def test_every_target_rate_limited_answers_the_soonest_retry_after(
    upstream_url: str, hostile_url: str, order: list[str]
) -> None:
    async for _, client in serving(routing(upstream_url, hostile_url, models={"both": {"targets": order}})):
        started = time.monotonic()
        response = await chat(client, "both")
        took = time.monotonic() - started
    assert response.status_code == 429 and response.headers["retry-after"] == "20"
    # The headers name the target the Retry-After is about.
    assert response.headers["x-provider-name"] == "claude" and response.headers["x-model-name"] == "limited-20"
    assert response.headers["x-relaygate-attempts"] == "2" and took < 3


async def test_a_wait_past_the_deadline_is_the_clients(upstream_url: str, hostile_url: str) -> None:
    retry = {"max_retry_after": 30, "deadline": 1.5}
    models = {"both": {"targets": ["google/limited-4", "rude/limited-3"]}}
    async for _, client in serving(routing(upstream_url, hostile_url, models=models, retry=retry)):
        started = time.monotonic()
        response = await chat(client, "both")
        took = time.monotonic() - started
    assert response.status_code == 429 and took < 1.5
    assert response.headers["retry-after"] in {"2", "3"} and response.headers["x-model-name"] == "limited-3"


async def test_a_short_retry_after_is_waited_and_retried(
    upstream_url: str, hostile_url: str, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.script("limited", "429:1")
    async for _, client in serving(routing(upstream_url, hostile_url)):
        started = time.monotonic()
        response = await chat(client, "upstream/limited")
        waited = time.monotonic() - started
    assert response.status_code == 200 and response.headers["x-relaygate-attempts"] == "2" and waited >= 0.9


async def test_repeated_429s_never_open_the_breaker(upstream_url: str, hostile_url: str) -> None:
    settings = routing(upstream_url, hostile_url, breaker={"failures": 2, "cooldown": 60})
    async for gateway, client in serving(settings):
        responses = [await chat(client, "rude/limited-20") for _ in range(6)]
        state = gateway.router.breaker.state("rude/limited-20")
    assert [r.status_code for r in responses] == [429] * 6
    assert all(r.headers["retry-after"] == "20" for r in responses)
    assert state == "closed"


async def test_a_rate_limited_fallback_still_lets_the_next_target_answer(
    upstream_url: str, hostile_url: str, fake_upstream: FakeOpenAI
) -> None:
    models = {"smart": {"targets": ["rude/limited-20", "upstream/gpt-4o"]}}
    async for _, client in serving(routing(upstream_url, hostile_url, models=models)):
        response = await chat(client, "smart")
    assert response.status_code == 200 and response.headers["x-model-name"] == "gpt-4o"


async def test_a_target_that_fails_and_one_rate_limited_answer_with_the_last_failure(
    upstream_url: str, hostile_url: str, fake_upstream: FakeOpenAI
) -> None:
    # Not every target is rate limited: the 429's wait is no promise that the call would then succeed.
    models = {"mixed": {"targets": ["rude/limited-20", "upstream/status-500"], "retry": {"max_attempts": 1}}}
    async for _, client in serving(routing(upstream_url, hostile_url, models=models)):
        response = await chat(client, "mixed")
    assert response.status_code == 500 and response.headers["x-model-name"] == "status-500"
