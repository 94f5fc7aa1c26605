"""Thread messages (issue 14 item 13), through the whole stack on SQLite and PostgreSQL: the first call of a
thread brings its whole history (system prompt, earlier turns, tool messages with their ``name``), which is
stored; later calls add only what is new.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from tests.conftest import KEY_A, make_settings
from tests.fakes.openai_server import REPLY, FakeOpenAI

pytestmark = pytest.mark.anyio

HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call-1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call-1", "name": "weather", "content": "Sunny, 21 C"},
    {"role": "assistant", "content": "Sunny."},
    {"role": "user", "content": "And tomorrow?"},
]


@pytest.fixture
async def client(upstream_url: str, database_url: str, fake_upstream: FakeOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(make_settings(upstream_url, database=database_url))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        headers = {"authorization": f"Bearer {KEY_A}", "x-thread-id": "weather"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            yield client
        assert gateway.ledger is not None


async def call(client: httpx.AsyncClient, messages: list[dict[str, Any]]) -> None:
    response = await client.post("/v1/chat/completions", json={"model": "upstream/gpt-4o", "messages": messages})
    assert response.status_code == 200, response.text


async def stored(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    for _ in range(100):  # the ledger writes in the background
        answer = (await client.get("/threads/weather/messages")).json()
        if answer.get("messages"):
            return list(answer["messages"])
    raise AssertionError("nothing stored")


async def test_the_first_call_of_a_thread_stores_its_whole_history_and_later_ones_what_is_new(
    client: httpx.AsyncClient,
) -> None:
    await call(client, HISTORY)
    messages = await stored(client)
    assert [(m["role"], m["content"]) for m in messages] == [
        *((m["role"], m["content"]) for m in HISTORY),
        ("assistant", REPLY),
    ]
    tool = messages[3]
    assert (tool["tool_call_id"], tool["name"]) == ("call-1", "weather")
    assert messages[2]["tool_calls"][0]["function"]["name"] == "weather"

    await call(client, [*HISTORY, {"role": "assistant", "content": REPLY}, {"role": "user", "content": "Thanks"}])
    for _ in range(100):
        messages = await stored(client)
        if len(messages) > len(HISTORY) + 1:
            break
    assert [(m["role"], m["content"]) for m in messages[len(HISTORY) + 1 :]] == [
        ("user", "Thanks"),
        ("assistant", REPLY),
    ]
    threads = (await client.post("/threads", json={"limit": 10, "offset": 0})).json()["threads"]
    assert threads[0]["message_count"] == len(HISTORY) + 3
