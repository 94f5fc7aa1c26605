"""The proxy through the whole stack, against a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import base64
import struct

import httpx
import orjson
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_server import REPLY, FakeOpenAI

pytestmark = pytest.mark.anyio

CHAT = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


def sse_payloads(text: str) -> list[str]:
    return [line.removeprefix("data: ") for line in text.split("\n\n") if line.startswith("data: ")]


async def test_chat_is_forwarded_with_the_prefix_removed_and_the_upstream_key(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"] == REPLY
    assert body["usage"]["total_tokens"] == 16
    seen = fake_upstream.last("/chat/completions")
    assert seen.body["model"] == "gpt-4o"
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert response.headers["x-provider-name"] == "upstream"
    assert response.headers["x-model-name"] == "gpt-4o"


async def test_every_openai_parameter_passes_through_and_gateway_fields_do_not(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    params = {
        "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "stop": ["END", "STOP"],
        "n": 2,
        "seed": 42,
        "logprobs": True,
        "top_logprobs": 3,
        "temperature": 0.3,
        "max_completion_tokens": 99,
        "parallel_tool_calls": False,
        "some_future_parameter": {"nested": [1, 2]},
    }
    extra = {"extra": {"user": {"id": "7", "name": "mrunmay"}, "guards": []}, "router": {"type": "fallback"}}
    response = await client.post("/v1/chat/completions", json={**CHAT, **params, **extra})
    assert response.status_code == 200
    assert len(response.json()["choices"]) == 2
    sent = fake_upstream.last("/chat/completions").body
    assert {key: sent[key] for key in params} == params
    assert "extra" not in sent and "router" not in sent


async def test_stream_asks_upstream_for_usage_and_drops_the_usage_chunk_when_not_asked(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert fake_upstream.last().body["stream_options"] == {"include_usage": True}
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert all(chunk["choices"] for chunk in chunks), "the usage-only chunk must not reach the client"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks).strip() == REPLY


async def test_stream_keeps_the_usage_chunk_when_the_client_asks(client: httpx.AsyncClient) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = await client.post("/v1/chat/completions", json=body)
    payloads = sse_payloads(response.text)
    assert payloads.count("[DONE]") == 1
    usage_chunk = orjson.loads(payloads[-2])
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] == 16


async def test_stream_without_done_from_upstream_still_ends_with_one_done(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "upstream/no-done", "stream": True})
    assert sse_payloads(response.text).count("[DONE]") == 1


async def test_stream_split_inside_utf8_and_crlf_framing_is_reassembled(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "upstream/split", "stream": True})
    payloads = sse_payloads(response.text)
    assert orjson.loads(payloads[0])["choices"][0]["delta"]["content"] == "héllo wörld 🎉"
    assert payloads[-1] == "[DONE]"
    assert "\ufffd" not in response.text


async def test_upstream_error_event_ends_the_stream_without_done(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "upstream/error-event", "stream": True})
    payloads = sse_payloads(response.text)
    assert orjson.loads(payloads[-1])["error"] == {
        "message": "overloaded mid-stream",
        "type": "server_error",
        "param": None,
        "code": "overloaded",
    }
    assert "[DONE]" not in payloads


async def test_upstream_connection_dropped_mid_stream_becomes_a_final_error_event(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "upstream/broken", "stream": True})
    assert response.status_code == 200
    payloads = sse_payloads(response.text)
    assert "partial" in payloads[1]
    error = orjson.loads(payloads[-1])["error"]
    assert error["code"] == "upstream_connection_error"
    assert set(error) == {"message", "type", "param", "code"}
    assert "[DONE]" not in payloads


async def test_embeddings_float_and_base64_pass_through(client: httpx.AsyncClient, fake_upstream: FakeOpenAI) -> None:
    floats = await client.post("/v1/embeddings", json={"model": "upstream/text-embedding-3-small", "input": ["a", "b"]})
    assert floats.status_code == 200
    assert floats.json()["data"][1]["embedding"] == [0.5, -0.25, 1.0]
    encoded = await client.post(
        "/v1/embeddings",
        json={"model": "upstream/text-embedding-3-small", "input": "a", "encoding_format": "base64"},
    )
    raw = base64.b64decode(encoded.json()["data"][0]["embedding"])
    assert struct.unpack("<3f", raw) == (0.5, -0.25, 0.0)
    assert fake_upstream.last().body["encoding_format"] == "base64"
    assert fake_upstream.last().body["model"] == "text-embedding-3-small"


async def test_images_pass_through(client: httpx.AsyncClient, fake_upstream: FakeOpenAI) -> None:
    response = await client.post(
        "/v1/images/generations", json={"model": "upstream/gpt-image-1", "prompt": "a cat", "n": 2}
    )
    assert response.status_code == 200
    assert len(response.json()["data"]) == 2
    assert fake_upstream.last().body == {"model": "gpt-image-1", "prompt": "a cat", "n": 2}


async def test_models_lists_the_upstream_models_and_the_mock(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = {entry["id"] for entry in body["data"]}
    assert {"upstream/gpt-4o", "upstream/text-embedding-3-small", "mock/echo"} <= ids
    entry = next(e for e in body["data"] if e["id"] == "upstream/gpt-4o")
    assert entry == {
        "id": "upstream/gpt-4o",
        "object": "model",
        "created": 0,
        "owned_by": "upstream",
        "provider": "upstream",
        # The catalogue's price of gpt-4o, as an OpenAI-compatible provider's model of that name.
        "pricing": {"unit": "USD per 1M tokens", "input": 2.5, "cached_input": 1.25, "output": 10.0},
    }


async def test_one_model_can_be_retrieved_by_its_prefixed_id(client: httpx.AsyncClient) -> None:
    found = await client.get("/v1/models/upstream/gpt-4o")
    assert found.status_code == 200 and found.json()["id"] == "upstream/gpt-4o"
    missing = await client.get("/v1/models/upstream/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


async def test_mock_provider_answers_chat_stream_embeddings_and_images(client: httpx.AsyncClient) -> None:
    chat = await client.post("/v1/chat/completions", json={**CHAT, "model": "mock/echo"})
    assert chat.json()["choices"][0]["message"]["content"] == "relaygate mock reply to: Hi"
    stream = await client.post("/v1/chat/completions", json={**CHAT, "model": "mock/echo", "stream": True})
    text = "".join(orjson.loads(p)["choices"][0]["delta"].get("content", "") for p in sse_payloads(stream.text)[:-1])
    assert text == "relaygate mock reply to: Hi"
    embedding = await client.post(
        "/v1/embeddings", json={"model": "mock/text-embedding", "input": "x", "dimensions": 4}
    )
    assert len(embedding.json()["data"][0]["embedding"]) == 4
    image = await client.post("/v1/images/generations", json={"model": "mock/image", "prompt": "x"})
    assert base64.b64decode(image.json()["data"][0]["b64_json"]).startswith(b"\x89PNG")
