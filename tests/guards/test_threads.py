"""What a thread keeps of a guarded answer: what the client got, not what the provider said."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.guards.harness import Guarded, chat, finish_reasons, guarded, sse, streamed_text

pytestmark = pytest.mark.anyio

SECRET = "sk-abcdefgh12345678"
GUARDS = {
    "pii_out": {"type": "pii", "stage": "output", "action": "redact"},
    "no_secrets_out": {
        "type": "regex", "stage": "output", "action": "block", "parameters": {"patterns": ["sk-[A-Za-z0-9]{8,}"]},
    },
    "schema": {
        "type": "json_schema", "stage": "output", "action": "block", "parameters": {"schema": {"type": "object"}},
    },
}  # fmt: skip
BLOCKED = "Guard 'no_secrets_out' blocked the answer: matches pattern #1 of 1."


def body(prompt: str, guard: str, stream: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {"extra": {"guards": [guard]}}
    return chat(prompt, model="upstream/echo-3", stream=True, **extra) if stream else chat(prompt, **extra)


async def answers(g: Guarded, thread: str) -> list[Any]:
    messages = (await g.client.get(f"/v1/threads/{thread}/messages")).json()["messages"]
    return [message["content"] for message in messages if message["role"] == "assistant"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_redacted_answer_is_kept_redacted(upstream_url: str, fake_upstream: FakeOpenAI, stream: bool) -> None:
    prompt = "write to jane.doe@example.com or call +44 20 7946 0958"
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=body(prompt, "pii_out", stream), headers={"x-thread-id": "t-red"}
        )
        got = streamed_text(sse(response.text)) if stream else response.json()["choices"][0]["message"]["content"]
        assert got == "write to [EMAIL] or call [PHONE]"
        assert fake_upstream.last().body["messages"][0]["content"] == prompt
        assert await answers(g, "t-red") == [got]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_blocked_answer_is_kept_as_its_refusal(
    upstream_url: str, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    prompt = f"fine so far, then the key {SECRET}"
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=body(prompt, "no_secrets_out", stream), headers={"x-thread-id": "t-block"}
        )
        if stream:
            events = sse(response.text)
            assert streamed_text(events) == "fine so far, then the key " and finish_reasons(events) == [
                "content_filter"
            ]
            assert events[-1]["error"]["message"] == BLOCKED
        else:
            assert response.status_code == 400 and response.json()["error"]["message"] == BLOCKED
        assert fake_upstream.last().body["messages"][0]["content"] == prompt
        # Neither the provider's words nor the part of them the stream let out: the refusal.
        assert await answers(g, "t-block") == [BLOCKED]


async def test_a_held_stream_refused_whole_is_kept_as_its_refusal(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=body("not json, secret plan X", "schema", True), headers={"x-thread-id": "t2"}
        )
        assert response.status_code == 400 and "plan X" not in response.text
        assert await answers(g, "t2") == [response.json()["error"]["message"]]
        # An answer that passes is kept as it came.
        valid = orjson.dumps({"plan": "Y"}).decode()
        await g.client.post("/v1/chat/completions", json=body(valid, "schema", True), headers={"x-thread-id": "t2"})
        assert (await answers(g, "t2"))[1] == valid
