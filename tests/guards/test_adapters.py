"""Output guards on a native adapter's stream (chunks the gateway writes itself) and on tool-call answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from relaygate.settings import ProviderSettings, Settings
from tests.fakes.anthropic_server import API_KEY, REPLY, FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.guards.harness import chat, finish_reasons, guarded, sse, streamed_text
from tests.servers import serve_in_thread

pytestmark = pytest.mark.anyio

GUARDS: dict[str, Any] = {
    "hide_name": {"type": "regex", "stage": "output", "action": "redact", "parameters": {"patterns": ["Claude"]}},
    "no_greeting": {"type": "regex", "stage": "output", "action": "block", "parameters": {"patterns": ["from Cl"]}},
    "schema": {
        "type": "json_schema", "stage": "output", "action": "block", "parameters": {"schema": {"type": "object"}},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def anthropic_url() -> Iterator[str]:
    with serve_in_thread(FakeAnthropic()) as base_url:
        yield base_url + "/v1"


@pytest.fixture
async def client(anthropic_url: str) -> AsyncIterator[httpx.AsyncClient]:
    provider = ProviderSettings(kind="anthropic", base_url=anthropic_url, api_key=API_KEY)
    gateway = Gateway(Settings(providers={"claude": provider}, guards=GUARDS))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def test_an_anthropic_stream_is_redacted_across_its_deltas(client: httpx.AsyncClient) -> None:
    # The fake sends "Hello fro" and "m Claude" as two deltas.
    body = chat("hi", model="claude/claude-sonnet-4", stream=True, extra={"guards": ["hide_name"]})
    response = await client.post("/v1/chat/completions", json=body)
    events = sse(response.text)
    assert REPLY == "Hello from Claude"
    assert streamed_text(events) == "Hello from [REDACTED]"
    assert finish_reasons(events) == ["stop"] and events[-1] == "[DONE]"
    whole = await client.post("/v1/chat/completions", json={**body, "stream": False})
    assert whole.json()["choices"][0]["message"]["content"] == "Hello from [REDACTED]"


async def test_an_anthropic_stream_is_stopped_at_a_match_across_its_deltas(client: httpx.AsyncClient) -> None:
    body = chat("hi", model="claude/claude-sonnet-4", stream=True, extra={"guards": ["no_greeting"]})
    response = await client.post("/v1/chat/completions", json=body)
    events = sse(response.text)
    assert streamed_text(events) == "Hello "
    assert finish_reasons(events) == ["content_filter"]
    assert events[-1]["error"]["code"] == "guard_violation"


async def test_answers_that_only_call_tools_are_not_judged_as_text(client: httpx.AsyncClient) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    body = chat("weather?", model="claude/tool-only", tools=tools, extra={"guards": ["schema"]})
    whole = await client.post("/v1/chat/completions", json=body)
    assert whole.status_code == 200 and whole.json()["choices"][0]["message"]["tool_calls"]
    streamed = await client.post("/v1/chat/completions", json={**body, "stream": True})
    assert streamed.status_code == 200
    assert finish_reasons(sse(streamed.text)) == ["tool_calls"]


async def test_a_tool_call_stream_of_the_mock_provider_passes_a_whole_answer_guard(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    async with guarded(upstream_url, GUARDS) as g:
        body = chat(
            "x", model="mock/echo", stream=True, tools=tools, tool_choice="required", extra={"guards": ["schema"]}
        )
        response = await g.client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200
        assert finish_reasons(sse(response.text)) == ["tool_calls"]
        assert g.ctx.guard_results == []
