"""The Gemini adapter through the whole gateway, against a fake Gemini API served on 127.0.0.1.

Every test sends OpenAI-format requests to ``gemini/...`` and checks both sides: the body the fake
Gemini server received (Google's format) and the answer the client got (OpenAI's format).
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import httpx2
import openai
import orjson
import pytest

from relaygate import Gateway, get_context
from relaygate.providers.gemini.errors import retry_after
from relaygate.settings import ProviderSettings, RetrySettings, Settings
from tests.asgi import Exchange, http_scope, run
from tests.fakes.gemini_server import (
    API_KEY,
    JSON_REPLY,
    MODELS_PAGE_1,
    MODELS_PAGE_2,
    PIECES,
    PNG,
    REPLY,
    SIGNATURE,
    FakeGemini,
    fake_vector,
)
from tests.servers import serve_in_thread

pytestmark = pytest.mark.anyio

MODEL = "gemini/gemini-2.5-flash"
CHAT: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
JSON_HEADERS = {"content-type": "application/json"}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
]
# Usage of the fake's whole answers (5 output tokens) and of its streams (cumulative, 3 at the end).
WHOLE_USAGE = {
    "prompt_tokens": 14,
    "completion_tokens": 12,
    "total_tokens": 26,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 7},
}
STREAM_USAGE = {**WHOLE_USAGE, "completion_tokens": 10, "total_tokens": 24}
# As the ledger prices them (gemini-2.5-flash, USD per 1M: input 0.30, cached 0.03, output 2.50; thinking
# tokens are output tokens): 10 x 0.30 + 4 x 0.03 + 12 (or 10) x 2.50.
WHOLE_USAGE["cost"] = 0.00003312
STREAM_USAGE["cost"] = 0.00002812


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[tuple[FakeGemini, str]]:
    fake = FakeGemini()
    with serve_in_thread(fake) as base_url:
        yield fake, base_url


@pytest.fixture
def fake(gemini_server: tuple[FakeGemini, str]) -> FakeGemini:
    fake, _ = gemini_server
    fake.requests.clear()
    fake.disconnected.clear()
    return fake


def gemini_settings(base_url: str, **provider: Any) -> Settings:
    options: dict[str, Any] = {"kind": "gemini", "base_url": base_url + "/v1beta", "api_key": API_KEY, **provider}
    # One attempt: these tests are about how an upstream's answer is mapped, not about retries.
    return Settings(providers={"gemini": ProviderSettings(**options)}, retry=RetrySettings(max_attempts=1))


@pytest.fixture
async def gateway(gemini_server: tuple[FakeGemini, str], fake: FakeGemini) -> AsyncIterator[Gateway]:
    gateway = Gateway(gemini_settings(gemini_server[1]))
    async with gateway.lifespan():
        yield gateway


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway") as client:
        yield client


@pytest.fixture
async def sdk(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    # The SDK runs on httpx2, so it gets its own in-process transport.
    http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gateway.app))
    async with openai.AsyncOpenAI(
        api_key="unused", base_url="http://gateway/v1", http_client=http_client, max_retries=0
    ) as sdk:
        yield sdk


def sse_payloads(text: str) -> list[str]:
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block.startswith("data: ")]


def chunks_of(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(p) for p in sse_payloads(text) if p != "[DONE]"]


def streamed_content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def finish_reasons(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]


# --- requests -----------------------------------------------------------------------------------


async def test_chat_becomes_generate_content_and_comes_back_as_a_chat_completion(
    client: httpx.AsyncClient, fake: FakeGemini
) -> None:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "Who are you?"},
        ],
        "max_tokens": 10,
        "max_completion_tokens": 99,
        "stop": "END",
        "temperature": 0.3,
        "top_p": 0.9,
        "seed": 7,
        "n": 2,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "user": "u-1",
    }
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    seen = fake.last(":generateContent")
    assert seen.path == GENERATE
    assert seen.headers["x-goog-api-key"] == API_KEY and "authorization" not in seen.headers
    assert seen.body == {
        # The developer message between the two user turns is lifted out, so the turns merge.
        "contents": [{"role": "user", "parts": [{"text": "Hi"}, {"text": "Who are you?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief.\n\nAnswer in English."}]},
        "generationConfig": {
            "maxOutputTokens": 99,
            "stopSequences": ["END"],
            "temperature": 0.3,
            "topP": 0.9,
            "presencePenalty": 0.5,
            "frequencyPenalty": -0.5,
            "seed": 7,
            "candidateCount": 2,
        },
    }
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["id"] == "chatcmpl-resp-fake-1" and answer["model"] == "gemini-2.5-flash"
    assert [choice["index"] for choice in answer["choices"]] == [0, 1]
    for choice in answer["choices"]:
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"] == REPLY, "thought parts are not content"
        assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"
    assert answer["usage"] == WHOLE_USAGE
    assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]


async def test_max_tokens_is_used_without_max_completion_tokens_and_stop_lists_pass(
    client: httpx.AsyncClient, fake: FakeGemini
) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 10, "stop": ["a", "b"]})
    assert response.status_code == 200
    assert fake.last().body["generationConfig"] == {"maxOutputTokens": 10, "stopSequences": ["a", "b"]}


async def test_more_than_five_stop_sequences_is_a_400(client: httpx.AsyncClient, fake: FakeGemini) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "stop": list("abcdef")})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "stop" and "5" in error["message"]
    assert not fake.requests


@pytest.mark.parametrize("stream", [False, True])
async def test_json_schema_goes_unchanged_as_response_json_schema(
    client: httpx.AsyncClient, fake: FakeGemini, stream: bool
) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"answer": {"$ref": "#/$defs/number"}},
        "$defs": {"number": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    body = {**CHAT, "model": "gemini/json", "response_format": response_format, "stream": stream}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    config = fake.last().body["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    if stream:
        chunks = chunks_of(response.text)
        assert orjson.loads(streamed_content(chunks)) == {"answer": 42}
        assert finish_reasons(chunks) == ["stop"]
    else:
        choice = response.json()["choices"][0]
        assert choice["message"]["content"] == JSON_REPLY and choice["finish_reason"] == "stop"


async def test_json_object_asks_for_json(client: httpx.AsyncClient, fake: FakeGemini) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "response_format": {"type": "json_object"}})
    assert response.status_code == 200
    assert fake.last().body["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("tool_choice", "tool_config"),
    [
        (None, None),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        ({"type": "function", "function": {"name": "get_time"}}, {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
    ],
)
async def test_tools_become_function_declarations_and_tool_choice_a_tool_config(
    client: httpx.AsyncClient, fake: FakeGemini, tool_choice: Any, tool_config: Any
) -> None:
    body: dict[str, Any] = {**CHAT, "tools": TOOLS}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    sent = fake.last().body
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "The weather in a city",
                    "parametersJsonSchema": TOOLS[0]["function"]["parameters"],
                },
                {"name": "get_time"},
            ]
        }
    ]
    assert "strict" not in orjson.dumps(sent["tools"]).decode()
    if tool_config is None:
        assert "toolConfig" not in sent
    else:
        assert sent["toolConfig"] == {"functionCallingConfig": tool_config}


async def test_parallel_tool_calls_false_is_dropped(client: httpx.AsyncClient, fake: FakeGemini) -> None:
    response = await client.post(
        "/v1/chat/completions", json={**CHAT, "model": "gemini/tools", "tools": TOOLS, "parallel_tool_calls": False}
    )
    assert response.status_code == 200
    assert "parallel" not in orjson.dumps(fake.last().body).decode().lower()
    assert len(response.json()["choices"][0]["message"]["tool_calls"]) == 2


async def test_function_calls_come_back_as_tool_calls_with_null_content(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "gemini/tools", "tools": TOOLS})
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", "Gemini says STOP; a call means tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [call["function"]["name"] for call in calls] == ["get_weather", "get_time"]
    assert [orjson.loads(call["function"]["arguments"]) for call in calls] == [{"city": "Paris", "unit": "°C"}, {}]
    assert all(call["type"] == "function" and call["id"].startswith("call_") for call in calls)
    assert len({call["id"] for call in calls}) == 2


@pytest.mark.parametrize("assistant_content", [None, ""])
async def test_tool_results_go_back_in_one_turn_with_their_names_recovered(
    client: httpx.AsyncClient, fake: FakeGemini, assistant_content: str | None
) -> None:
    messages = [
        {"role": "user", "content": "Weather and time?"},
        {
            "role": "assistant",
            "content": assistant_content,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
            ],
        },
        # Answered in the other order: the name must come from the id, not the position.
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_a", "content": [{"type": "text", "text": "sunny"}]},
        {"role": "user", "content": "Thanks"},
    ]
    response = await client.post("/v1/chat/completions", json={**CHAT, "messages": messages, "tools": TOOLS})
    assert response.status_code == 200, response.text
    assert fake.last().body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}},
                {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
                {"text": "Thanks"},
            ],
        },
    ]


async def test_a_conversation_may_start_with_the_assistant_and_same_role_turns_merge(
    client: httpx.AsyncClient, fake: FakeGemini
) -> None:
    messages = [
        {"role": "assistant", "content": "Hello!"},
        {"role": "assistant", "content": [{"type": "text", "text": "How can I help?"}]},
        {"role": "system", "content": "S1"},
        {"role": "user", "content": "A"},
        {"role": "user", "content": [{"type": "text", "text": "B"}, {"type": "text", "text": ""}]},
        {"role": "developer", "content": "S2"},
        {"role": "assistant", "content": "C"},
        {"role": "user", "content": "D"},
    ]
    response = await client.post("/v1/chat/completions", json={**CHAT, "messages": messages})
    assert response.status_code == 200
    sent = fake.last().body
    assert sent["systemInstruction"] == {"parts": [{"text": "S1\n\nS2"}]}
    assert sent["contents"] == [
        {"role": "model", "parts": [{"text": "Hello!"}, {"text": "How can I help?"}]},
        {"role": "user", "parts": [{"text": "A"}, {"text": "B"}]},
        {"role": "model", "parts": [{"text": "C"}]},
        {"role": "user", "parts": [{"text": "D"}]},
    ]


async def test_images_become_inline_data_or_file_data(client: httpx.AsyncClient, fake: FakeGemini) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:IMAGE/PNG;charset=utf-8;base64,iVBORw0KGgo=", "detail": "high"},
        },
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.JPG?size=large"}},
        {"type": "image_url", "image_url": {"url": "gs://bucket/report.pdf"}},
        {"type": "image_url", "image_url": {"url": "http://example.com/photo"}},
    ]
    response = await client.post(
        "/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": content}]}
    )
    assert response.status_code == 200, response.text
    assert fake.last().body["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?size=large"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/report.pdf"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "http://example.com/photo"}},
    ]


@pytest.mark.parametrize(
    "url",
    [
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "https://example.com/logo.svg",
        "ftp://example.com/cat.png",
        "data:image/png;base64",
    ],
)
async def test_unusable_images_are_a_400(client: httpx.AsyncClient, fake: FakeGemini, url: str) -> None:
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
    response = await client.post("/v1/chat/completions", json={**CHAT, "messages": [message]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[0].content[0].image_url.url"
    assert not fake.requests


async def test_only_system_messages_is_a_400(client: httpx.AsyncClient, fake: FakeGemini) -> None:
    messages = [{"role": "system", "content": "You are helpful."}, {"role": "developer", "content": "Be brief."}]
    response = await client.post("/v1/chat/completions", json={**CHAT, "messages": messages})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"
    assert not fake.requests


@pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]"])
async def test_malformed_tool_call_arguments_are_a_400(
    client: httpx.AsyncClient, fake: FakeGemini, arguments: str
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None, "tool_calls": [call]}]
    response = await client.post("/v1/chat/completions", json={**CHAT, "messages": messages})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "messages[1].tool_calls[0].function.arguments"
    assert not fake.requests


async def test_a_tool_result_for_no_known_call_is_a_400(client: httpx.AsyncClient, fake: FakeGemini) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "call_nowhere", "content": "x"}]
    response = await client.post("/v1/chat/completions", json={**CHAT, "messages": messages})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[1].tool_call_id"
    assert not fake.requests


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"n": 0}, "n"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"messages": [{"role": "robot", "content": "Hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "video_url"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "system", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]"),
    ],
)
async def test_bad_input_is_a_clear_400(
    client: httpx.AsyncClient, fake: FakeGemini, extra: dict[str, Any], param: str
) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, **extra})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]
    assert not fake.requests


async def test_logprobs_are_asked_for_and_mapped(client: httpx.AsyncClient, fake: FakeGemini) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "logprobs": True, "top_logprobs": 2})
    assert response.status_code == 200
    assert fake.last().body["generationConfig"] == {"responseLogprobs": True, "logprobs": 2}
    content = response.json()["choices"][0]["logprobs"]["content"]
    assert [token["token"] for token in content] == PIECES
    assert content[0]["logprob"] == -0.25 and content[0]["bytes"] == list(b"Hello")
    assert [top["token"] for top in content[0]["top_logprobs"]] == ["Hello", "x"]


# --- thought signatures ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_a_thought_signature_survives_the_tool_call_round_trip(
    client: httpx.AsyncClient, fake: FakeGemini, stream: bool
) -> None:
    body = {**CHAT, "model": "gemini/thinking-tools", "tools": TOOLS, "stream": stream}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    if stream:
        calls = [call for c in chunks_of(response.text) for call in c["choices"][0]["delta"].get("tool_calls") or []]
        calls = [{key: call[key] for key in ("id", "type", "function")} for call in calls]
    else:
        calls = response.json()["choices"][0]["message"]["tool_calls"]
    assert SIGNATURE in calls[0]["id"] and SIGNATURE not in calls[1]["id"]

    def replay(tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
        messages = [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": None, "tool_calls": tool_calls},
            *({"role": "tool", "tool_call_id": call["id"], "content": "done"} for call in tool_calls),
        ]
        return {**CHAT, "model": "gemini/thinking-tools", "tools": TOOLS, "messages": messages}

    again = await client.post("/v1/chat/completions", json=replay(calls))
    assert again.status_code == 200, again.text
    model_turn = fake.last().body["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == SIGNATURE
    assert "thoughtSignature" not in model_turn["parts"][1]
    assert [p["functionResponse"]["name"] for p in fake.last().body["contents"][2]["parts"]] == [
        "get_weather",
        "get_time",
    ]
    # The same history without the signature is what Gemini 3 refuses.
    unsigned = [{**call, "id": call["id"].split("__thought__")[0]} for call in calls]
    refused = await client.post("/v1/chat/completions", json=replay(unsigned))
    assert refused.status_code == 400 and "thought_signature" in refused.json()["error"]["message"]


# --- finish reasons -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_a_blocked_prompt_is_a_200_with_content_filter_and_null_content(
    client: httpx.AsyncClient, stream: bool
) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "gemini/blocked", "stream": stream})
    assert response.status_code == 200
    if stream:
        payloads = sse_payloads(response.text)
        assert payloads.count("[DONE]") == 1 and payloads[-1] == "[DONE]"
        chunks = chunks_of(response.text)
        assert finish_reasons(chunks) == ["content_filter"]
        assert streamed_content(chunks) == ""
    else:
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] is None
        assert response.json()["usage"]["prompt_tokens"] == 3


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "reason"), [("safety", "content_filter"), ("max", "length")])
async def test_gemini_finish_reasons_are_mapped(
    client: httpx.AsyncClient, stream: bool, model: str, reason: str
) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": f"gemini/{model}", "stream": stream})
    assert response.status_code == 200
    if stream:
        chunks = chunks_of(response.text)
        assert finish_reasons(chunks) == [reason]
        assert streamed_content(chunks) == ("" if model == "safety" else REPLY)
    else:
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == reason
        assert choice["message"]["content"] == (None if model == "safety" else REPLY)


# --- streaming ----------------------------------------------------------------------------------


async def test_a_stream_ends_with_one_done_and_no_usage_chunk_unless_asked(
    client: httpx.AsyncClient, fake: FakeGemini
) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    seen = fake.last()
    assert seen.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and seen.query == {"alt": ["sse"]}
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    chunks = chunks_of(response.text)
    assert all(chunk["choices"] and "usage" not in chunk for chunk in chunks)
    assert {chunk["id"] for chunk in chunks} == {"chatcmpl-resp-fake-1"}
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hello"}
    assert streamed_content(chunks) == REPLY
    assert finish_reasons(chunks) == ["stop"] and chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_the_usage_chunk_comes_once_at_the_end_with_the_latest_usage(client: httpx.AsyncClient) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = await client.post("/v1/chat/completions", json=body)
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    chunks = chunks_of(response.text)
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == STREAM_USAGE, "cumulative: the last one wins"
    assert all(chunk["usage"] is None and chunk["choices"] for chunk in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop", "the finish chunk comes before the usage chunk"


async def test_stream_usage_and_finish_are_recorded_without_a_usage_chunk(gateway: Gateway) -> None:
    scope = http_scope("/v1/chat/completions", headers=JSON_HEADERS)
    body = orjson.dumps({**CHAT, "stream": True})
    exchange = await run(gateway.app, scope, Exchange(body))
    assert exchange.status == 200 and b'"usage"' not in b"".join(exchange.chunks)
    ctx = get_context(scope)
    assert ctx.usage is not None
    assert (ctx.usage.prompt_tokens, ctx.usage.completion_tokens, ctx.usage.total_tokens) == (14, 10, 24)
    assert (ctx.usage.cached_tokens, ctx.usage.reasoning_tokens) == (4, 7)
    assert ctx.finish_reasons == ["stop"]


async def test_streamed_parallel_function_calls_get_running_indices(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json={**CHAT, "model": "gemini/tools", "tools": TOOLS, "stream": True}
    )
    chunks = chunks_of(response.text)
    deltas = [c["choices"][0]["delta"]["tool_calls"] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert len(deltas) == 2, "each Gemini event's call is forwarded as it arrives"
    calls = [call for delta in deltas for call in delta]
    assert [call["index"] for call in calls] == [0, 1]
    assert len({call["id"] for call in calls}) == 2 and all(call["id"].startswith("call_") for call in calls)
    assert [call["function"]["name"] for call in calls] == ["get_weather", "get_time"]
    assert orjson.loads(calls[0]["function"]["arguments"]) == {"city": "Paris", "unit": "°C"}
    assert all(call["type"] == "function" for call in calls)
    assert finish_reasons(chunks) == ["tool_calls"]
    assert streamed_content(chunks) == ""


async def test_a_stream_split_inside_utf8_characters_and_crlf_is_reassembled(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "gemini/split", "stream": True})
    assert "\ufffd" not in response.text
    chunks = chunks_of(response.text)
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:3]] == PIECES
    assert sse_payloads(response.text).count("[DONE]") == 1


async def test_stream_frames_are_relayed_as_they_arrive(gateway: Gateway) -> None:
    scope = http_scope("/v1/chat/completions", headers=JSON_HEADERS)
    exchange = await run(gateway.app, scope, Exchange(orjson.dumps({**CHAT, "model": "gemini/paced", "stream": True})))
    assert exchange.status == 200
    # One body message per upstream event, then the finish chunk with [DONE]: nothing is gathered up.
    assert len(exchange.chunks) == len(PIECES) + 1
    assert exchange.chunks[-1].endswith(b"data: [DONE]\n\n")


async def test_a_mid_stream_error_is_the_last_frame_and_no_done_follows(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "gemini/error-event", "stream": True})
    assert response.status_code == 200
    payloads = sse_payloads(response.text)
    assert orjson.loads(payloads[0])["choices"][0]["delta"]["content"] == "Hel"
    assert orjson.loads(payloads[-1]) == {
        "error": {
            "message": "The model is overloaded.",
            "type": "upstream_error",
            "param": None,
            "code": "unavailable",
        }
    }
    assert "[DONE]" not in payloads
    assert not finish_reasons(chunks_of("\n\n".join("data: " + p for p in payloads[:-1]) + "\n\n"))


async def test_the_openai_sdk_raises_on_a_mid_stream_error(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="gemini/error-event", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="overloaded"):
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert seen == ["Hel"]


async def test_the_openai_sdk_accumulates_a_streamed_answer(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True, stream_options={"include_usage": True}
    )
    text = ""
    usage = None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == REPLY
    assert usage is not None and usage.completion_tokens_details is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (
        14,
        10,
        7,
    )


async def test_a_client_leaving_mid_stream_closes_the_upstream_and_keeps_partial_usage(
    gateway: Gateway, fake: FakeGemini
) -> None:
    scope = http_scope("/v1/chat/completions", headers=JSON_HEADERS)
    exchange = Exchange(orjson.dumps({**CHAT, "model": "gemini/endless", "stream": True}), disconnect_after_chunks=3)
    with anyio.fail_after(5):
        await run(gateway.app, scope, exchange)
    assert await anyio.to_thread.run_sync(fake.disconnected.wait, 3), "the upstream saw the disconnect"
    ctx = get_context(scope)
    assert ctx.error == "client_disconnected"
    assert ctx.usage is not None and ctx.usage.prompt_tokens == 14 and ctx.usage.completion_tokens >= 10
    assert b"[DONE]" not in b"".join(exchange.chunks)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (400, "invalid_argument", "invalid_request_error"),
        (403, "provider_auth_error", "invalid_request_error"),
        (404, "model_not_found", "invalid_request_error"),
        (429, "rate_limit_exceeded", "invalid_request_error"),
        (500, "internal", "upstream_error"),
        (503, "unavailable", "upstream_error"),
        (504, "deadline_exceeded", "upstream_error"),
    ],
)
async def test_gemini_errors_keep_their_status_in_openai_shape(
    client: httpx.AsyncClient, status: int, code: str, error_type: str, stream: bool
) -> None:
    body = {**CHAT, "model": f"gemini/status-{status}", "stream": stream}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json", "an error before the first byte is not SSE"
    error = response.json()["error"]
    assert error["code"] == code and error["type"] == error_type
    assert f"fake Gemini failure {status}" in error["message"]
    if status == 429:
        assert response.headers["retry-after"] == "30", "from RetryInfo.retryDelay"
    else:
        assert "retry-after" not in response.headers


async def test_an_invalid_gemini_key_is_a_401_provider_auth_error(
    gemini_server: tuple[FakeGemini, str], fake: FakeGemini
) -> None:
    gateway = Gateway(gemini_settings(gemini_server[1], api_key="wrong-key"))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.post("/v1/chat/completions", json=CHAT)
            listed = await client.get("/v1/models")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "provider_auth_error" and "API key not valid" in error["message"]
    assert fake.requests[0].headers["x-goog-api-key"] == "wrong-key"
    assert listed.status_code == 200, "a provider whose models cannot be listed is skipped"
    assert not [m for m in listed.json()["data"] if m["owned_by"] == "gemini"]


# --- embeddings ---------------------------------------------------------------------------------


async def test_embeddings_keep_their_order_across_batches_and_are_renormalised(
    client: httpx.AsyncClient, fake: FakeGemini
) -> None:
    texts = [f"text number {i}" for i in range(250)]
    body = {"model": "gemini/gemini-embedding-001", "input": texts, "dimensions": 8, "encoding_format": "float"}
    response = await client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    batches = fake.calls(":batchEmbedContents")
    assert sorted(len(b.body["requests"]) for b in batches) == [50, 100, 100]
    assert all(b.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents" for b in batches)
    # Sent a few at a time, so in any order; each batch is still one slice of the input, in order.
    slices = sorted([r["content"]["parts"][0]["text"] for r in b.body["requests"]] for b in batches)
    assert slices == sorted([texts[:100], texts[100:200], texts[200:]])
    sent = [request for b in batches for request in b.body["requests"]]
    assert {r["outputDimensionality"] for r in sent} == {8}
    assert {r["model"] for r in sent} == {"models/gemini-embedding-001"}
    answer = response.json()
    assert answer["object"] == "list" and answer["model"] == "gemini-embedding-001"
    assert [item["index"] for item in answer["data"]] == list(range(250))
    for text, item in zip(texts, answer["data"], strict=True):
        raw = fake_vector(text, 8)
        norm = math.sqrt(sum(v * v for v in raw))
        assert item["embedding"] == pytest.approx([v / norm for v in raw], abs=1e-6)
        assert math.sqrt(sum(v * v for v in item["embedding"])) == pytest.approx(1.0, abs=1e-5)
    expected_tokens = sum(math.ceil(len(text) / 4) for text in texts)
    # gemini-embedding-001 costs 0.15 USD per 1M input tokens.
    cost = pytest.approx(expected_tokens * 0.15 / 1_000_000)
    assert answer["usage"] == {"prompt_tokens": expected_tokens, "total_tokens": expected_tokens, "cost": cost}


async def test_default_sdk_embeddings_in_base64_decode_to_the_float_answer(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient
) -> None:
    texts = ["first", "second"]
    default = await sdk.embeddings.create(model="gemini/gemini-embedding-001", input=texts)
    floats = await sdk.embeddings.create(model="gemini/gemini-embedding-001", input=texts, encoding_format="float")
    assert [len(item.embedding) for item in default.data] == [3072, 3072]
    assert [item.embedding for item in default.data] == [item.embedding for item in floats.data]
    raw = await client.post(
        "/v1/embeddings", json={"model": "gemini/gemini-embedding-001", "input": "first", "encoding_format": "base64"}
    )
    encoded = raw.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    decoded = base64.b64decode(encoded)
    assert list(struct.unpack("<3072f", decoded)) == floats.data[0].embedding, "float32, little-endian"
    assert list(struct.unpack(">3072f", decoded)) != floats.data[0].embedding


@pytest.mark.parametrize(
    ("value", "param"), [([1, 2, 3], "input"), ([[1, 2], [3]], "input"), ("", "input"), (["a", ""], "input[1]")]
)
async def test_token_arrays_and_empty_strings_are_a_400(
    client: httpx.AsyncClient, fake: FakeGemini, value: Any, param: str
) -> None:
    response = await client.post("/v1/embeddings", json={"model": "gemini/gemini-embedding-001", "input": value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert not fake.requests


async def test_a_failed_embedding_batch_fails_the_request(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"model": "gemini/status-503", "input": ["a"] * 150})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


# --- images -------------------------------------------------------------------------------------


async def test_images_come_back_as_b64_json_one_per_candidate(client: httpx.AsyncClient, fake: FakeGemini) -> None:
    body = {"model": "gemini/image", "prompt": "A lighthouse", "n": 3, "size": "1792x1024"}
    response = await client.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    assert fake.last().path == "/v1beta/models/image:generateContent"
    assert fake.last().body == {
        "contents": [{"role": "user", "parts": [{"text": "A lighthouse"}]}],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": "16:9"},
            "candidateCount": 3,
        },
    }
    answer = response.json()
    assert isinstance(answer["created"], int)
    assert answer["data"] == [{"b64_json": PNG}] * 3, "draft images shown as thoughts are left out"
    assert answer["usage"] == {
        "input_tokens": 9,
        "output_tokens": 3870,
        "total_tokens": 3879,
        "input_tokens_details": {"text_tokens": 9, "image_tokens": 0},
    }


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ("1024x1024", "1:1"),
        ("1024x1792", "9:16"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("512x512", "1:1"),
        ("auto", None),
        (None, None),
    ],
)
async def test_image_sizes_become_aspect_ratios(
    client: httpx.AsyncClient, fake: FakeGemini, size: str | None, ratio: str | None
) -> None:
    body: dict[str, Any] = {"model": "gemini/image", "prompt": "A lighthouse"}
    if size is not None:
        body["size"] = size
    response = await client.post("/v1/images/generations", json=body)
    assert response.status_code == 200
    config = fake.last().body["generationConfig"]
    assert config.get("imageConfig") == ({"aspectRatio": ratio} if ratio else None)
    assert "candidateCount" not in config
    assert len(response.json()["data"]) == 1


@pytest.mark.parametrize(
    ("extra", "param"), [({"response_format": "url"}, "response_format"), ({"size": "1000x7"}, "size")]
)
async def test_unsupported_image_options_are_a_400(
    client: httpx.AsyncClient, fake: FakeGemini, extra: dict[str, Any], param: str
) -> None:
    response = await client.post("/v1/images/generations", json={"model": "gemini/image", "prompt": "x", **extra})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not fake.requests


@pytest.mark.parametrize(
    ("model", "status", "code"), [("no-image", 502, "no_image"), ("image-safety", 400, "content_policy_violation")]
)
async def test_an_answer_without_an_image_is_an_error(
    client: httpx.AsyncClient, model: str, status: int, code: str
) -> None:
    response = await client.post("/v1/images/generations", json={"model": f"gemini/{model}", "prompt": "x"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    if model == "no-image":
        assert "I can only describe it." in error["message"]


# --- models -------------------------------------------------------------------------------------


async def test_models_are_listed_without_their_prefix_over_every_page_and_cached(
    client: httpx.AsyncClient, fake: FakeGemini
) -> None:
    for _ in range(2):
        response = await client.get("/v1/models")
        assert response.status_code == 200
        ids = [m["id"] for m in response.json()["data"] if m["owned_by"] == "gemini"]
        assert ids == [f"gemini/{m}" for m in MODELS_PAGE_1 + MODELS_PAGE_2]
    listings = fake.calls("/v1beta/models")
    assert len(listings) == 2, "two pages the first time, the cache the second"
    assert all(r.method == "GET" and r.headers["x-goog-api-key"] == API_KEY for r in listings)
    assert listings[1].query["pageToken"] == ["page-2"]


async def test_configured_models_are_listed_and_routed_without_asking_gemini(
    gemini_server: tuple[FakeGemini, str], fake: FakeGemini
) -> None:
    gateway = Gateway(gemini_settings(gemini_server[1], models=["gemini-2.5-flash"]))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            listed = await client.get("/v1/models")
            other = await client.post("/v1/chat/completions", json={**CHAT, "model": "gemini/gemini-1.5-pro"})
    assert [m["id"] for m in listed.json()["data"] if m["owned_by"] == "gemini"] == ["gemini/gemini-2.5-flash"]
    assert other.status_code == 404
    assert not fake.requests


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        ("30s", "30"),
        ("1.5s", "2"),
        ({"seconds": "3", "nanos": 500_000_000}, "4"),
        ("1e400s", None),
        ("nans", None),
        ("soon", None),
        ({"seconds": "soon"}, None),
        (7, None),
    ],
)
def test_retry_after_comes_from_a_usable_retry_delay_only(delay: object, expected: str | None) -> None:
    # An unreadable delay must not turn Google's 429 into a gateway 500.
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
    assert retry_after(details) == expected
