"""The Anthropic adapter through the whole gateway, against a fake Anthropic API on 127.0.0.1.

The fake (``tests/fakes/anthropic_server.py``) speaks Anthropic's wire format, refuses what Anthropic
refuses, and records what it got, so these tests check both the request the gateway builds and the
OpenAI answer, stream, usage and errors it makes of Anthropic's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import httpx2
import openai
import orjson
import pytest
from starlette.types import Message

from relaygate import Gateway, get_context
from relaygate.settings import ProviderSettings, RetrySettings, Settings
from tests.asgi import Exchange, http_scope, run
from tests.fakes.anthropic_server import (
    API_KEY,
    JSON_ANSWER,
    MODELS,
    REPLY,
    SPLIT_TEXT,
    WEATHER_ARGS,
    FakeAnthropic,
)
from tests.servers import serve_in_thread

pytestmark = pytest.mark.anyio

MODEL = "anthropic/claude-sonnet-4"
HI = [{"role": "user", "content": "Hi"}]
JSON_HEADERS = {"content-type": "application/json"}
# What the fake reports: 12 fresh input tokens, 30 read from the cache, 5 written to it, 9 output.
EXPECTED_USAGE = {
    "prompt_tokens": 47,
    "completion_tokens": 9,
    "total_tokens": 56,
    "prompt_tokens_details": {"cached_tokens": 30},
    "cache_creation_input_tokens": 5,
    # What the ledger prices it at (claude-sonnet-4, USD per 1M: input 3, cache read 0.30, cache write 3.75,
    # output 15): 12 uncached x 3 + 30 read x 0.30 + 5 written x 3.75 + 9 out x 15 = 198.75 per 1M.
    "cost": 0.00019875,
}
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}
TOOLS: Any = [WEATHER_TOOL, TIME_TOOL]  # what the SDK's typed parameters accept, as plain JSON


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve_in_thread(fake) as base_url:
        yield fake, base_url + "/v1"


@pytest.fixture
def fake(fake_server: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    fake_server[0].reset()
    return fake_server[0]


def settings(base_url: str, **provider: Any) -> Settings:
    options: dict[str, Any] = {"kind": "anthropic", "base_url": base_url, "api_key": API_KEY, **provider}
    # One attempt: these tests are about how an upstream's answer is mapped, not about retries.
    return Settings(providers={"anthropic": ProviderSettings(**options)}, retry=RetrySettings(max_attempts=1))


@pytest.fixture
async def gateway(fake_server: tuple[FakeAnthropic, str], fake: FakeAnthropic) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings(fake_server[1]))
    async with gateway.lifespan():
        yield gateway


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@pytest.fixture
async def sdk(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    # The SDK runs on httpx2, so it gets its own in-process transport.
    transport = httpx2.ASGITransport(app=gateway.app)
    async with httpx2.AsyncClient(transport=transport) as http_client:
        yield openai.AsyncOpenAI(base_url="http://gateway/v1", api_key="unused", http_client=http_client, max_retries=0)


async def chat(client: httpx.AsyncClient, model: str = MODEL, /, **params: Any) -> httpx.Response:
    return await client.post("/v1/chat/completions", json={"model": model, "messages": HI, **params})


def sent(fake: FakeAnthropic) -> dict[str, Any]:
    body: dict[str, Any] = fake.last().body
    return body


def payloads(text: str) -> list[str]:
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block.startswith("data: ")]


def chunks_of(text: str) -> list[dict[str, Any]]:
    found = payloads(text)
    assert found.count("[DONE]") == 1 and found[-1] == "[DONE]", "the stream ends with one [DONE]"
    return [orjson.loads(p) for p in found[:-1]]


def content_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if status == 400:
        assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    return error


# --- request --------------------------------------------------------------------------------------------


async def test_chat_goes_to_messages_with_anthropic_headers_and_a_default_max_tokens(
    client: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    response = await chat(client)
    assert response.status_code == 200, response.text
    seen = fake.last()
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.headers["x-api-key"] == API_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers
    assert seen.body == {
        "model": "claude-sonnet-4",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


async def test_configured_headers_and_default_max_tokens_apply(fake_server: tuple[FakeAnthropic, str]) -> None:
    fake, base_url = fake_server
    fake.reset()
    gateway = Gateway(
        settings(
            base_url,
            headers={"Anthropic-Version": "2099-01-01", "anthropic-beta": "some-beta"},
            default_max_tokens=123,
        )
    )
    async with gateway.lifespan():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://g") as client:
            assert (await chat(client)).status_code == 200
    seen = fake.last()
    assert seen.headers["anthropic-version"] == "2099-01-01"
    assert seen.headers["anthropic-beta"] == "some-beta"
    assert seen.body["max_tokens"] == 123


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70}, 70),
        ({"max_completion_tokens": 70, "max_tokens": 50}, 70),
    ],
)
async def test_max_completion_tokens_takes_precedence(
    client: httpx.AsyncClient, fake: FakeAnthropic, params: dict[str, int], expected: int
) -> None:
    assert (await chat(client, **params)).status_code == 200
    assert sent(fake)["max_tokens"] == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"temperature": 1.7}, {"temperature": 1}),
        ({"temperature": 0.3}, {"temperature": 0.3}),
        ({"temperature": 0.3, "top_p": 0.9}, {"temperature": 0.3}),
        ({"top_p": 0.9}, {"top_p": 0.9}),
    ],
)
async def test_temperature_is_clamped_and_top_p_dropped_when_both_are_set(
    client: httpx.AsyncClient, fake: FakeAnthropic, params: dict[str, float], expected: dict[str, float]
) -> None:
    assert (await chat(client, **params)).status_code == 200
    body = sent(fake)
    assert {key: body[key] for key in ("temperature", "top_p") if key in body} == expected


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["END", "  ", "\n", "STOP"], ["END", "STOP"]), ([" "], None)],
)
async def test_stop_becomes_stop_sequences_without_whitespace_only_ones(
    client: httpx.AsyncClient, fake: FakeAnthropic, stop: Any, expected: list[str] | None
) -> None:
    assert (await chat(client, stop=stop)).status_code == 200
    assert sent(fake).get("stop_sequences") == expected


async def test_openai_only_parameters_are_mapped_or_dropped(client: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    params = {
        "user": "user-7",
        "n": 1,
        "seed": 3,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "logit_bias": {"50256": -100},
        "stream_options": {"include_usage": True},
        "response_format": {"type": "text"},
    }
    response = await chat(client, **params)
    assert response.status_code == 200, response.text  # the fake refuses fields Anthropic does not know
    assert sent(fake)["metadata"] == {"user_id": "user-7"}


async def test_system_and_developer_messages_are_collected_in_order(
    client: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "system", "content": [{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "How are you?"},
    ]
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 200, response.text
    body = sent(fake)
    assert body["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in French."},
        {"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}},
    ]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_consecutive_messages_of_one_role_are_merged(client: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    messages = [
        {"role": "user", "content": "First."},
        {"role": "user", "content": [{"type": "text", "text": "Second."}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": "Third."},
        {"role": "assistant", "content": "Fourth."},
        {"role": "user", "content": "Fifth."},
    ]
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 200, response.text
    assert sent(fake)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Third."}, {"type": "text", "text": "Fourth."}]},
        {"role": "user", "content": [{"type": "text", "text": "Fifth."}]},
    ]


async def test_a_conversation_opening_with_the_assistant_gets_a_user_turn_first(
    client: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    messages = [
        {"role": "system", "content": "Be a pirate."},
        {"role": "assistant", "content": "Ahoy! What be yer question?"},
        {"role": "user", "content": "Where is the treasure?"},
    ]
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 200, response.text
    roles = [m["role"] for m in sent(fake)["messages"]]
    assert roles == ["user", "assistant", "user"]


async def test_a_final_assistant_prefill_loses_its_trailing_whitespace(
    client: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    messages = [*HI, {"role": "assistant", "content": "The answer is: \n"}]
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 200, response.text
    assert sent(fake)["messages"][-1]["content"] == [{"type": "text", "text": "The answer is:"}]


@pytest.mark.parametrize("user_text_at", [4, 3], ids=["after-results", "between-results"])
async def test_tool_round_trip_puts_all_results_in_one_user_turn_before_the_user_text(
    client: httpx.AsyncClient, fake: FakeAnthropic, user_text_at: int
) -> None:
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]
    messages = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_a", "content": "18 C"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "10:00"}]},
    ]
    messages.insert(user_text_at, {"role": "user", "content": "Thanks, and in short?"})
    body = {"model": MODEL, "messages": messages, "tools": [WEATHER_TOOL, TIME_TOOL]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text  # the fake checks tool_result follows tool_use
    upstream = sent(fake)["messages"]
    assert upstream[1] == {
        "role": "assistant",
        "content": [  # no empty text block for content null
            {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}},
        ],
    }
    assert upstream[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "18 C"},
            {"type": "tool_result", "tool_use_id": "call_b", "content": [{"type": "text", "text": "10:00"}]},
            {"type": "text", "text": "Thanks, and in short?"},
        ],
    }
    assert len(upstream) == 3


async def test_a_history_with_tool_calls_but_no_tools_declares_them_without_letting_them_be_called(
    client: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    call = {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        *HI,
        {"role": "assistant", "content": "Checking.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_a", "content": "18 C"},
        {"role": "user", "content": "Summarise."},
    ]
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 200, response.text
    body = sent(fake)
    assert [tool["name"] for tool in body["tools"]] == ["get_weather"]
    assert body["tool_choice"] == {"type": "none"}


async def test_tools_map_to_input_schemas(client: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    assert (await chat(client, tools=[WEATHER_TOOL, TIME_TOOL])).status_code == 200
    body = sent(fake)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": {"type": "function", "function": {"name": "get_time"}}}, {"type": "tool", "name": "get_time"}),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"parallel_tool_calls": False, "tool_choice": "required"},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        ({"parallel_tool_calls": False, "tool_choice": "none"}, {"type": "none"}),
        ({"parallel_tool_calls": True}, None),
    ],
)
async def test_tool_choice_and_parallel_tool_calls(
    client: httpx.AsyncClient, fake: FakeAnthropic, params: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    response = await chat(client, tools=[WEATHER_TOOL, TIME_TOOL], **params)
    assert response.status_code == 200, response.text
    assert sent(fake).get("tool_choice") == expected


async def test_images_from_data_urls_and_http_urls(client: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:IMAGE/PNG;charset=utf-8;base64,{PNG_BASE64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG_BASE64[:20]}\n{PNG_BASE64[20:]}"}},
    ]
    messages = [{"role": "user", "content": content}]
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 200, response.text
    blocks = sent(fake)["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert blocks[3] == {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG_BASE64}}


async def test_a_pdf_file_part_becomes_a_document(client: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "Summarise"}, part]}]
    response = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 200, response.text
    assert sent(fake)["messages"][0]["content"][1] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="},
    }


# --- bad client input -----------------------------------------------------------------------------------


def _image(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


BAD_CALL = {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Par'}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"messages": [*HI, {"role": "assistant", "tool_calls": [BAD_CALL]}], "tools": [WEATHER_TOOL]},
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {
                "messages": [
                    *HI,
                    {"role": "assistant", "tool_calls": [{**BAD_CALL, "function": {"name": "f", "arguments": "[1]"}}]},
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({"messages": HI, "n": 2}, "n"),
        ({"messages": _image("data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=")}, "messages[0].content[1].image_url"),
        ({"messages": _image("data:image/svg+xml,<svg></svg>")}, "messages[0].content[1].image_url"),
        ({"messages": _image("ftp://example.com/cat.png")}, "messages[0].content[1].image_url.url"),
        ({"messages": _image("data:image/png;base64")}, "messages[0].content[1].image_url.url"),
        ({"messages": HI, "temperature": "hot"}, "temperature"),
        ({"messages": HI, "temperature": 2.5}, "temperature"),
        ({"messages": HI, "max_tokens": 0}, "max_tokens"),
        ({"messages": HI, "max_completion_tokens": "many"}, "max_completion_tokens"),
        ({"messages": HI, "stop": 5}, "stop"),
        ({"messages": HI, "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"messages": HI, "tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
        ({"messages": HI, "tool_choice": "required"}, "tool_choice"),
        ({"messages": HI, "tools": [WEATHER_TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": [{"role": "tool", "content": "18 C"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "system", "content": "Only a system prompt."}]}, "messages"),
        ({"messages": HI, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, None),
        ({"messages": HI, "response_format": {"type": "json_object"}, "tools": [WEATHER_TOOL]}, "response_format"),
        ({"messages": HI, "user": 7}, "user"),
    ],
)
async def test_bad_client_input_is_a_400_naming_the_parameter(
    client: httpx.AsyncClient, fake: FakeAnthropic, body: dict[str, Any], param: str | None
) -> None:
    response = await client.post("/v1/chat/completions", json={"model": MODEL, **body})
    error = assert_error(response, 400, param)
    assert error["param"], "the error names the parameter"
    assert fake.requests == [], "nothing reached the provider"


async def test_embeddings_and_images_are_refused_with_a_400(client: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    embeddings = await client.post("/v1/embeddings", json={"model": MODEL, "input": "hello"})
    error = assert_error(embeddings, 400, "model")
    assert "does not serve embeddings" in error["message"]
    images = await client.post("/v1/images/generations", json={"model": MODEL, "prompt": "a cat"})
    assert "does not serve images" in assert_error(images, 400, "model")["message"]
    assert fake.requests == []


# --- answers --------------------------------------------------------------------------------------------


async def test_a_whole_answer_is_a_chat_completion_with_cache_aware_usage(
    gateway: Gateway, fake: FakeAnthropic
) -> None:
    scope = http_scope("/v1/chat/completions", headers=JSON_HEADERS)
    exchange = await run(gateway.app, scope, Exchange(orjson.dumps({"model": MODEL, "messages": HI})))
    assert exchange.status == 200
    body = orjson.loads(exchange.text)
    assert body["id"] == "msg_fake01"
    assert body["object"] == "chat.completion"
    assert body["model"] == "claude-sonnet-4-20250514"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": REPLY, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == EXPECTED_USAGE
    ctx = get_context(scope)
    assert ctx.usage is not None
    assert (ctx.usage.prompt_tokens, ctx.usage.cached_tokens, ctx.usage.cache_write_tokens) == (47, 30, 5)
    assert ctx.finish_reasons == ["stop"]


async def test_tool_calls_in_a_whole_answer(client: httpx.AsyncClient) -> None:
    response = await chat(client, "anthropic/tools", tools=[WEATHER_TOOL, TIME_TOOL])
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    calls = choice["message"]["tool_calls"]
    assert [(c["id"], c["type"], c["function"]["name"]) for c in calls] == [
        ("toolu_weather", "function", "get_weather"),
        ("toolu_time", "function", "get_time"),
    ]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [WEATHER_ARGS, {}]

    only = (await chat(client, "anthropic/tool-only", tools=[WEATHER_TOOL])).json()["choices"][0]
    assert only["message"]["content"] is None
    assert only["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_stop_reasons_map_to_finish_reasons(
    client: httpx.AsyncClient, stop_reason: str, finish_reason: str, stream: bool
) -> None:
    response = await chat(client, f"anthropic/stop-{stop_reason}", stream=stream)
    assert response.status_code == 200
    if stream:
        reasons = [c["choices"][0]["finish_reason"] for c in chunks_of(response.text)]
        assert [r for r in reasons if r] == [finish_reason] and reasons[-1] == finish_reason
    else:
        assert response.json()["choices"][0]["finish_reason"] == finish_reason


@pytest.mark.parametrize("stream", [False, True])
async def test_response_format_json_schema_uses_native_structured_output(
    client: httpx.AsyncClient, fake: FakeAnthropic, stream: bool
) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    response = await chat(client, "anthropic/json", response_format=response_format, stream=stream)
    assert response.status_code == 200, response.text
    assert sent(fake)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "tools" not in sent(fake)
    if stream:
        chunks = chunks_of(response.text)
        content, finish = content_of(chunks), chunks[-1]["choices"][0]["finish_reason"]
    else:
        choice = response.json()["choices"][0]
        content, finish = choice["message"]["content"], choice["finish_reason"]
    assert orjson.loads(content) == JSON_ANSWER
    assert finish == "stop"


@pytest.mark.parametrize("stream", [False, True])
async def test_response_format_json_object_is_emulated_with_a_forced_tool(
    client: httpx.AsyncClient, fake: FakeAnthropic, stream: bool
) -> None:
    response = await chat(client, "anthropic/json", response_format={"type": "json_object"}, stream=stream)
    assert response.status_code == 200, response.text
    body = sent(fake)
    (tool,) = body["tools"]
    assert body["tool_choice"] == {"type": "tool", "name": tool["name"]}
    assert "output_config" not in body
    if stream:
        chunks = chunks_of(response.text)
        assert not any("tool_calls" in c["choices"][0]["delta"] for c in chunks if c["choices"])
        content, finish = content_of(chunks), chunks[-1]["choices"][0]["finish_reason"]
    else:
        choice = response.json()["choices"][0]
        assert "tool_calls" not in choice["message"]
        content, finish = choice["message"]["content"], choice["finish_reason"]
    assert orjson.loads(content) == JSON_ANSWER
    assert finish == "stop"


# --- streams --------------------------------------------------------------------------------------------


async def test_stream_chunks_share_id_created_and_model_and_end_with_one_done(
    client: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    response = await chat(client, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sent(fake)["stream"] is True
    chunks = chunks_of(response.text)
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        ("msg_fake01", chunks[0]["created"], "claude-sonnet-4-20250514", "chat.completion.chunk")
    }
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content_of(chunks) == REPLY
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"


async def test_usage_comes_only_in_a_final_chunk_without_choices_when_asked(client: httpx.AsyncClient) -> None:
    chunks = chunks_of((await chat(client, stream=True, stream_options={"include_usage": True})).text)
    *others, last = chunks
    assert last["choices"] == [] and last["usage"] == EXPECTED_USAGE
    assert all(c["usage"] is None and c["choices"] for c in others)

    plain = chunks_of((await chat(client, stream=True)).text)
    assert all(c["choices"] and "usage" not in c for c in plain)


async def test_streamed_and_whole_usage_are_equal_and_recorded_even_when_not_sent(
    gateway: Gateway, fake: FakeAnthropic
) -> None:
    usages = []
    for params in ({}, {"stream": True}, {"stream": True, "stream_options": {"include_usage": True}}):
        scope = http_scope("/v1/chat/completions", headers=JSON_HEADERS)
        body = orjson.dumps({"model": MODEL, "messages": HI, **params})
        exchange = await run(gateway.app, scope, Exchange(body))
        assert exchange.status == 200
        usages.append(get_context(scope).usage)
    assert usages[0] is not None
    assert usages[0].prompt_tokens == 47 and usages[0].completion_tokens == 9
    assert usages[0] == usages[1] == usages[2]


async def test_parallel_tool_calls_stream_with_their_own_index(client: httpx.AsyncClient) -> None:
    response = await chat(client, "anthropic/tools", tools=[WEATHER_TOOL, TIME_TOOL], stream=True)
    chunks = chunks_of(response.text)
    assert content_of(chunks) == "Let me check."
    deltas = [d for c in chunks for d in c["choices"][0]["delta"].get("tool_calls", [])]
    assert {d["index"] for d in deltas} == {0, 1}, "text is block 0 but the tool calls count from 0"
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        if delta["index"] not in calls:
            assert delta["id"] and delta["type"] == "function" and delta["function"]["name"], "first delta names it"
            calls[delta["index"]] = {"id": delta["id"], "name": delta["function"]["name"], "arguments": ""}
        else:
            assert set(delta) == {"index", "function"} and set(delta["function"]) == {"arguments"}
        calls[delta["index"]]["arguments"] += delta["function"]["arguments"]
    assert calls[0]["name"] == "get_weather" and orjson.loads(calls[0]["arguments"]) == WEATHER_ARGS
    assert calls[1]["name"] == "get_time" and calls[1]["arguments"] == "{}"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_utf8_and_events_split_across_reads_with_crlf_framing(client: httpx.AsyncClient) -> None:
    response = await chat(client, "anthropic/split", stream=True)
    assert response.status_code == 200
    chunks = chunks_of(response.text)
    assert content_of(chunks) == SPLIT_TEXT
    assert "\ufffd" not in response.text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


class _OpensGate(Exchange):
    """Opens the fake's gate once the first text has reached the client."""

    def __init__(self, body: bytes, fake: FakeAnthropic) -> None:
        super().__init__(body)
        self.fake = fake

    async def send(self, message: Message) -> None:
        await super().send(message)
        if b"Hello fr" in self.text.encode():
            self.fake.gate.set()


async def test_frames_are_relayed_as_each_upstream_read_arrives(gateway: Gateway, fake: FakeAnthropic) -> None:
    body = orjson.dumps({"model": "anthropic/gated", "messages": HI, "stream": True})
    scope = http_scope("/v1/chat/completions", headers=JSON_HEADERS)
    with anyio.fail_after(10):
        exchange = await run(gateway.app, scope, _OpensGate(body, fake))
    assert fake.gate.is_set()
    assert content_of(chunks_of(exchange.text)) == REPLY, "the upstream had to wait: the stream was held back"


async def test_a_mid_stream_error_event_is_the_final_frame_without_done(client: httpx.AsyncClient) -> None:
    response = await chat(client, "anthropic/overloaded-mid-stream", stream=True)
    assert response.status_code == 200
    found = payloads(response.text)
    assert "[DONE]" not in found
    *before, last = (orjson.loads(p) for p in found)
    assert last == {"error": {"message": "Overloaded", "type": "server_error", "param": None, "code": "overloaded"}}
    assert before[0]["choices"][0]["delta"]["role"] == "assistant"


async def test_the_openai_sdk_raises_on_a_mid_stream_error(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="anthropic/overloaded-mid-stream", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="Overloaded"):
        async for _ in stream:
            pass


async def test_a_stream_cut_before_the_end_is_an_error_not_a_done(client: httpx.AsyncClient) -> None:
    found = payloads((await chat(client, "anthropic/truncated", stream=True)).text)
    assert "[DONE]" not in found
    assert orjson.loads(found[-1])["error"]["code"] == "upstream_stream_incomplete"


async def test_a_client_leaving_closes_the_upstream_and_keeps_the_usage_known_so_far(
    gateway: Gateway, fake: FakeAnthropic
) -> None:
    scope = http_scope("/v1/chat/completions", headers=JSON_HEADERS)
    body = orjson.dumps({"model": "anthropic/endless", "messages": HI, "stream": True})
    with anyio.fail_after(5):
        await run(gateway.app, scope, Exchange(body, disconnect_after_chunks=3))
    assert await anyio.to_thread.run_sync(fake.disconnected.wait, 3), "the upstream saw the disconnect"
    ctx = get_context(scope)
    assert ctx.error == "client_disconnected"
    assert ctx.usage is not None and ctx.usage.prompt_tokens == 47


async def test_the_openai_sdk_streams_tool_calls_and_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="anthropic/tools",
        messages=[{"role": "user", "content": "Weather and time?"}],
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    arguments: dict[int, str] = {}
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                arguments[call.index] = arguments.get(call.index, "") + (
                    call.function and call.function.arguments or ""
                )
    assert {index: orjson.loads(text) for index, text in arguments.items()} == {0: WEATHER_ARGS, 1: {}}
    assert usage is not None and usage.prompt_tokens == 47 and usage.total_tokens == 56
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 30


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_529_overloaded_becomes_a_503_json_error(client: httpx.AsyncClient, stream: bool) -> None:
    response = await chat(client, "anthropic/status-529", stream=stream)
    error = assert_error(response, 503)
    assert response.headers["content-type"] == "application/json"
    assert (error["type"], error["code"]) == ("server_error", "overloaded")
    assert error["message"] == "fake failure 529"
    assert response.headers["x-request-id"] == "req_fake"


async def test_429_keeps_retry_after(client: httpx.AsyncClient) -> None:
    response = await chat(client, "anthropic/status-429")
    error = assert_error(response, 429)
    assert response.headers["retry-after"] == "7"
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")


async def test_the_sdk_sees_a_503_it_can_retry(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        await sdk.chat.completions.create(model="anthropic/status-529", messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.status_code == 503


async def test_a_refused_provider_key_is_a_provider_auth_error(fake_server: tuple[FakeAnthropic, str]) -> None:
    fake, base_url = fake_server
    fake.reset()
    gateway = Gateway(settings(base_url, api_key="sk-ant-wrong"))
    async with gateway.lifespan():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://g") as client:
            response = await chat(client)
    error = assert_error(response, 401)
    assert error["code"] == "provider_auth_error"
    assert "Provider 'anthropic'" in error["message"] and "invalid x-api-key" in error["message"]


async def test_an_upstream_400_keeps_anthropic_message(client: httpx.AsyncClient) -> None:
    error = assert_error(await chat(client, "anthropic/status-400"), 400)
    assert error["message"] == "fake failure 400"


# --- models ---------------------------------------------------------------------------------------------


async def test_models_are_listed_from_anthropic(client: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    response = await client.get("/v1/models")
    ids = [entry["id"] for entry in response.json()["data"]]
    assert [f"anthropic/{m}" for m in MODELS] == [i for i in ids if i.startswith("anthropic/")]
    listing = [r for r in fake.requests if r.path == "/v1/models"]
    assert listing and listing[0].headers["x-api-key"] == API_KEY
    assert listing[0].headers["anthropic-version"] == "2023-06-01"
    await client.get("/v1/models")
    assert len([r for r in fake.requests if r.path == "/v1/models"]) == 1, "the list is cached"


async def test_configured_models_are_listed_without_asking(fake_server: tuple[FakeAnthropic, str]) -> None:
    fake, base_url = fake_server
    fake.reset()
    gateway = Gateway(settings(base_url, models=["claude-opus-4"]))
    async with gateway.lifespan():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://g") as client:
            ids = [entry["id"] for entry in (await client.get("/v1/models")).json()["data"]]
    assert "anthropic/claude-opus-4" in ids and "anthropic/claude-sonnet-4" not in ids
    assert fake.requests == []


async def test_a_failing_model_list_is_empty(fake_server: tuple[FakeAnthropic, str]) -> None:
    gateway = Gateway(settings(fake_server[1], api_key="sk-ant-wrong"))
    async with gateway.lifespan():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://g") as client:
            response = await client.get("/v1/models")
    assert response.status_code == 200
    assert not [entry for entry in response.json()["data"] if entry["id"].startswith("anthropic/")]
