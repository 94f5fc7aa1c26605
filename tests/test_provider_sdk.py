"""Acceptance suite of the native adapters: the official ``openai`` SDK, unchanged, through relaygate.

One gateway holds both native providers, each in front of its fake server on 127.0.0.1
(``tests/fakes/anthropic_server.py``, ``tests/fakes/gemini_server.py``), which speak the providers' real
wire formats, refuse what the providers refuse and record what they receive. Each scenario runs over
both providers where it applies, and checks both ends: what the SDK hands its caller (typed objects,
exception classes) and what reached the provider (URL, headers, body in the provider's documented shape).
The per-adapter files test the mappings in detail; this one proves the SDK-level criterion end to end.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import orjson
import pydantic
import pytest
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from relaygate import Gateway, Settings
from relaygate.settings import ProviderSettings, RetrySettings
from tests.fakes import anthropic_server, gemini_server
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini, fake_vector
from tests.servers import free_port, serve_in_thread

pytestmark = pytest.mark.anyio

# The key the SDK holds is the client's; it must never reach a provider.
CLIENT_KEY = "sk-client-key-not-for-providers"
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city"],
}
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "The weather in a city", "parameters": WEATHER_PARAMETERS},
    },
    {"type": "function", "function": {"name": "get_time"}},
]
ERROR_FIELDS = {"message", "type", "param", "code"}
EMBEDDING_MODEL = "gemini/gemini-embedding-001"


@dataclass(frozen=True)
class Case:
    """One provider, and what its fake answers."""

    provider: str
    model: str  # an ordinary model: a plain text answer
    reply: str
    usage: tuple[int, int, int]  # prompt, completion, total of a whole answer
    stream_usage: tuple[int, int, int]
    weather_args: dict[str, Any]  # the arguments of the fake's get_weather call
    tools_text: str | None  # the text the fake answers alongside its tool calls
    error_message: str  # the fake's message for status-<code>, with the code as {}
    mid_stream: tuple[str, str, str]  # model whose stream fails midway, its message, the error code


ANTHROPIC = Case(
    provider="anthropic",
    model="anthropic/claude-sonnet-4",
    reply=anthropic_server.REPLY,
    # Anthropic leaves the 30 cache reads and 5 cache writes out of input_tokens; OpenAI counts them in.
    usage=(47, 9, 56),
    stream_usage=(47, 9, 56),
    weather_args=anthropic_server.WEATHER_ARGS,
    tools_text="Let me check.",
    error_message="fake failure {}",
    mid_stream=("anthropic/overloaded-mid-stream", "Overloaded", "overloaded"),
)
GEMINI = Case(
    provider="gemini",
    model="gemini/gemini-2.5-flash",
    reply=gemini_server.REPLY,
    # Thoughts (7) are completion tokens, tool-use prompt tokens (2) are prompt tokens.
    usage=(14, 12, 26),
    stream_usage=(14, 10, 24),
    weather_args={"city": "Paris", "unit": "°C"},
    tools_text=None,
    error_message="fake Gemini failure {}",
    mid_stream=("gemini/error-event", "The model is overloaded.", "unavailable"),
)


@dataclass
class Upstreams:
    anthropic: FakeAnthropic
    anthropic_url: str
    gemini: FakeGemini
    gemini_url: str

    def reset(self) -> None:
        self.anthropic.reset()
        self.gemini.requests.clear()
        self.gemini.disconnected.clear()

    def received(self) -> int:
        return len(self.anthropic.requests) + len(self.gemini.requests)


@pytest.fixture(scope="module")
def servers() -> Iterator[Upstreams]:
    anthropic, gemini = FakeAnthropic(), FakeGemini()
    with serve_in_thread(anthropic) as anthropic_url, serve_in_thread(gemini) as gemini_url:
        yield Upstreams(anthropic, anthropic_url + "/v1", gemini, gemini_url + "/v1beta")


@pytest.fixture
def fakes(servers: Upstreams) -> Upstreams:
    servers.reset()
    return servers


@pytest.fixture(params=[ANTHROPIC, GEMINI], ids=lambda case: case.provider)
def case(request: pytest.FixtureRequest) -> Case:
    given: Case = request.param
    return given


def settings(
    fakes: Upstreams, anthropic_key: str = anthropic_server.API_KEY, gemini_key: str = gemini_server.API_KEY
) -> Settings:
    return Settings(
        providers={
            "anthropic": ProviderSettings(kind="anthropic", base_url=fakes.anthropic_url, api_key=anthropic_key),
            "gemini": ProviderSettings(kind="gemini", base_url=fakes.gemini_url, api_key=gemini_key),
        },
        # One attempt: these tests are about how the SDK sees a provider's answers, not about retries.
        retry=RetrySettings(max_attempts=1),
    )


@asynccontextmanager
async def sdk_through(gateway_settings: Settings) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK as a user sets it up, pointed at an in-process gateway (the SDK runs on httpx2)."""
    gateway = Gateway(gateway_settings)
    async with gateway.lifespan():
        http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gateway.app))
        async with openai.AsyncOpenAI(
            api_key=CLIENT_KEY, base_url="http://gateway/v1", http_client=http_client, max_retries=0
        ) as sdk:
            yield sdk


@pytest.fixture
async def sdk(fakes: Upstreams) -> AsyncIterator[openai.AsyncOpenAI]:
    async with sdk_through(settings(fakes)) as sdk:
        yield sdk


def sent(fakes: Upstreams, case: Case) -> Any:
    """The body of the last chat request the provider received."""
    if case.provider == "anthropic":
        return fakes.anthropic.last().body
    return fakes.gemini.last("Content").body  # :generateContent or :streamGenerateContent


def assert_upstream_auth(fakes: Upstreams, case: Case) -> None:
    """Every request carried the provider's own key header and nothing of the client's key."""
    requests: list[Any] = fakes.anthropic.requests if case.provider == "anthropic" else fakes.gemini.requests
    assert requests
    for seen in requests:
        if case.provider == "anthropic":
            assert seen.headers["x-api-key"] == anthropic_server.API_KEY
            assert seen.headers["anthropic-version"] == "2023-06-01"
        else:
            assert seen.headers["x-goog-api-key"] == gemini_server.API_KEY
        assert "authorization" not in seen.headers
        assert not [value for value in seen.headers.values() if CLIENT_KEY in value]


def usage_of(usage: openai.types.CompletionUsage | None) -> tuple[int, int, int]:
    assert usage is not None
    return usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


# --- plain and streaming chat ---------------------------------------------------------------------------


async def test_plain_chat(sdk: openai.AsyncOpenAI, fakes: Upstreams, case: Case) -> None:
    completion = await sdk.chat.completions.create(
        model=case.model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Who are you?"},
        ],
        max_completion_tokens=100,
        temperature=0.5,
    )
    assert completion.object == "chat.completion"
    (choice,) = completion.choices
    assert (choice.message.role, choice.message.content, choice.finish_reason) == ("assistant", case.reply, "stop")
    assert choice.message.tool_calls is None
    assert usage_of(completion.usage) == case.usage

    assert_upstream_auth(fakes, case)
    if case.provider == "anthropic":
        messages = fakes.anthropic.last()
        assert (messages.method, messages.path) == ("POST", "/v1/messages")
        assert messages.headers["content-type"] == "application/json"
        assert messages.body == {
            "model": "claude-sonnet-4",
            "max_tokens": 100,
            "temperature": 0.5,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
                {"role": "user", "content": [{"type": "text", "text": "Who are you?"}]},
            ],
        }
    else:
        generate = fakes.gemini.last()
        assert (generate.method, generate.path) == ("POST", "/v1beta/models/gemini-2.5-flash:generateContent")
        assert generate.headers["content-type"] == "application/json"
        assert generate.body == {
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello."}]},
                {"role": "user", "parts": [{"text": "Who are you?"}]},
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"maxOutputTokens": 100, "temperature": 0.5},
        }


async def test_streaming_chat(sdk: openai.AsyncOpenAI, fakes: Upstreams, case: Case) -> None:
    stream = await sdk.chat.completions.create(
        model=case.model,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finishes, usage, ids = "", [], None, set()
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        ids.add(chunk.id)
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason is not None:
                finishes.append(choice.finish_reason)
        if chunk.usage is not None:
            assert not chunk.choices, "usage comes in its own final chunk"
            usage = chunk.usage
    assert text == case.reply
    assert finishes == ["stop"]
    assert usage_of(usage) == case.stream_usage
    assert len(ids) == 1, "every chunk of one answer has the same id"

    assert_upstream_auth(fakes, case)
    if case.provider == "anthropic":
        messages = fakes.anthropic.last()
        assert (messages.method, messages.path) == ("POST", "/v1/messages")
        assert messages.body["stream"] is True
    else:
        generate = fakes.gemini.last()
        assert (generate.method, generate.path) == ("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent")
        assert generate.query == {"alt": ["sse"]}
        assert "stream" not in generate.body


# --- tools ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_parallel_tool_calls(sdk: openai.AsyncOpenAI, fakes: Upstreams, case: Case, stream: bool) -> None:
    model = f"{case.provider}/tools"
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather and time in Paris?"}]
    completion: ChatCompletion
    if stream:
        # The SDK's own stream helper accumulates the deltas, and checks their indices as it goes.
        async with sdk.chat.completions.stream(model=model, messages=messages, tools=TOOLS) as events:
            completion = await events.get_final_completion()
        if case.provider == "anthropic":
            assert fakes.anthropic.last().body["stream"] is True
        else:
            assert fakes.gemini.last().path == "/v1beta/models/tools:streamGenerateContent"
    else:
        completion = await sdk.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert (choice.message.content or None) == case.tools_text
    calls = choice.message.tool_calls or []
    assert all(isinstance(call, ChatCompletionMessageFunctionToolCall) for call in calls)
    assert [
        (call.function.name, orjson.loads(call.function.arguments))
        for call in calls
        if isinstance(call, ChatCompletionMessageFunctionToolCall)
    ] == [("get_weather", case.weather_args), ("get_time", {})]
    assert all(call.id for call in calls) and len({call.id for call in calls}) == 2

    body = sent(fakes, case)
    if case.provider == "anthropic":
        assert body["tools"] == [
            {"name": "get_weather", "description": "The weather in a city", "input_schema": WEATHER_PARAMETERS},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ]
        assert "tool_choice" not in body, "parallel calls stay allowed"
    else:
        assert body["tools"] == [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "The weather in a city",
                        "parametersJsonSchema": WEATHER_PARAMETERS,
                    },
                    {"name": "get_time"},
                ]
            }
        ]


async def test_tool_results_sent_back(sdk: openai.AsyncOpenAI, fakes: Upstreams, case: Case) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    first = await sdk.chat.completions.create(model=f"{case.provider}/tools", messages=messages, tools=TOOLS)
    message = first.choices[0].message
    weather, time = message.tool_calls or []
    # As the SDK's docs do it: the assistant message object itself goes back into the history; the results
    # come in the other order, so the provider's pairing must go by id, not by position.
    messages += [
        message,
        {"role": "tool", "tool_call_id": time.id, "content": "10:00"},
        {"role": "tool", "tool_call_id": weather.id, "content": [{"type": "text", "text": "18 C"}]},
    ]
    second = await sdk.chat.completions.create(model=case.model, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == case.reply
    assert second.choices[0].finish_reason == "stop"

    body = sent(fakes, case)
    if case.provider == "anthropic":
        assert body["messages"][1:] == [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_weather", "name": "get_weather", "input": case.weather_args},
                    {"type": "tool_use", "id": "toolu_time", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_time", "content": "10:00"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_weather",
                        "content": [{"type": "text", "text": "18 C"}],
                    },
                ],
            },
        ]
    else:
        assert body["contents"][1:] == [
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": case.weather_args}},
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [  # Gemini pairs results by name: recovered from the ids of the calls
                    {"functionResponse": {"name": "get_time", "response": {"content": "10:00"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"content": "18 C"}}},
                ],
            },
        ]


# --- images ---------------------------------------------------------------------------------------------


async def test_images_in_messages(sdk: openai.AsyncOpenAI, fakes: Upstreams, case: Case) -> None:
    completion = await sdk.chat.completions.create(
        model=case.model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == case.reply

    body = sent(fakes, case)
    if case.provider == "anthropic":
        assert body["messages"][0]["content"] == [
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ]
    else:
        assert body["contents"][0]["parts"] == [
            {"text": "What is in these?"},
            {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        ]


# --- structured output ----------------------------------------------------------------------------------


class Answer(pydantic.BaseModel):
    answer: int


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_structured_output(sdk: openai.AsyncOpenAI, fakes: Upstreams, case: Case, stream: bool) -> None:
    model = f"{case.provider}/json"
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "The answer?"}]
    # The SDK turns the pydantic model into response_format json_schema (strict) and parses the answer back.
    if stream:
        async with sdk.chat.completions.stream(model=model, messages=messages, response_format=Answer) as events:
            completion = await events.get_final_completion()
    else:
        completion = await sdk.chat.completions.parse(model=model, messages=messages, response_format=Answer)
    (choice,) = completion.choices
    assert choice.message.parsed == Answer(answer=42)
    assert choice.finish_reason == "stop"

    body = sent(fakes, case)
    if case.provider == "anthropic":
        assert set(body["output_config"]) == {"format"}
        schema = body["output_config"]["format"]["schema"]
        assert body["output_config"]["format"]["type"] == "json_schema"
        assert "tools" not in body and "tool_choice" not in body, "native structured output, not a forced tool"
    else:
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        schema = config["responseJsonSchema"]
    assert schema["type"] == "object" and schema["required"] == ["answer"]
    assert schema["properties"]["answer"]["type"] == "integer"
    assert schema["additionalProperties"] is False


# --- embeddings -----------------------------------------------------------------------------------------


def expected_embedding(text: str, dimensions: int) -> list[float]:
    """The fake's vector for ``text``, normalised (the gateway renormalises shortened vectors)."""
    raw = fake_vector(text, dimensions)
    norm = math.sqrt(sum(v * v for v in raw))
    return [v / norm for v in raw]


@pytest.mark.parametrize("encoding_format", [None, "float"], ids=["sdk-default-base64", "float"])
@pytest.mark.parametrize("dimensions", [None, 8], ids=["full-size", "shortened"])
async def test_gemini_embeddings(
    sdk: openai.AsyncOpenAI, fakes: Upstreams, encoding_format: str | None, dimensions: int | None
) -> None:
    texts = ["first text", "second text"]
    options: dict[str, Any] = {}
    if encoding_format is not None:
        options["encoding_format"] = encoding_format
    if dimensions is not None:
        options["dimensions"] = dimensions
    response = await sdk.embeddings.create(model=EMBEDDING_MODEL, input=texts, **options)
    assert response.model == "gemini-embedding-001"
    assert [item.index for item in response.data] == [0, 1]
    size = dimensions or gemini_server.FULL_SIZE
    for text, item in zip(texts, response.data, strict=True):
        assert len(item.embedding) == size
        assert item.embedding == pytest.approx(expected_embedding(text, size), abs=1e-6)
    assert response.usage.prompt_tokens > 0

    (seen,) = fakes.gemini.calls(":batchEmbedContents")
    assert (seen.method, seen.path) == ("POST", "/v1beta/models/gemini-embedding-001:batchEmbedContents")
    assert seen.headers["x-goog-api-key"] == gemini_server.API_KEY and "authorization" not in seen.headers
    extra = {} if dimensions is None else {"outputDimensionality": dimensions}
    assert seen.body == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]}, **extra} for text in texts
        ]
    }


async def test_embeddings_from_anthropic_are_a_bad_request(sdk: openai.AsyncOpenAI, fakes: Upstreams) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.embeddings.create(model=ANTHROPIC.model, input="hello")
    assert raised.value.status_code == 400 and raised.value.param == "model"
    assert "does not serve embeddings" in raised.value.message
    assert fakes.received() == 0


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("case", "status", "error_class", "client_status", "code"),
    [
        (ANTHROPIC, 400, openai.BadRequestError, 400, None),
        (ANTHROPIC, 403, openai.PermissionDeniedError, 403, "provider_auth_error"),
        (ANTHROPIC, 404, openai.NotFoundError, 404, "model_not_found"),
        (ANTHROPIC, 429, openai.RateLimitError, 429, "rate_limit_exceeded"),
        (ANTHROPIC, 529, openai.InternalServerError, 503, "overloaded"),
        (GEMINI, 400, openai.BadRequestError, 400, "invalid_argument"),
        (GEMINI, 403, openai.PermissionDeniedError, 403, "provider_auth_error"),
        (GEMINI, 404, openai.NotFoundError, 404, "model_not_found"),
        (GEMINI, 429, openai.RateLimitError, 429, "rate_limit_exceeded"),
        (GEMINI, 503, openai.InternalServerError, 503, "unavailable"),
    ],
    ids=lambda value: value.provider if isinstance(value, Case) else None,
)
async def test_provider_errors_raise_the_matching_sdk_exception(
    sdk: openai.AsyncOpenAI,
    case: Case,
    status: int,
    error_class: type[openai.APIStatusError],
    client_status: int,
    code: str | None,
    stream: bool,
) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk.chat.completions.create(
            model=f"{case.provider}/status-{status}", messages=[{"role": "user", "content": "Hi"}], stream=stream
        )
    error = raised.value
    assert type(error) is error_class
    assert error.status_code == client_status
    assert case.error_message.format(status) in error.message
    assert error.code == code
    assert isinstance(error.body, dict) and set(error.body) == ERROR_FIELDS
    assert error.response.headers["content-type"] == "application/json", "an error before the first byte is JSON"
    if status == 429:
        assert error.response.headers["retry-after"] == ("7" if case.provider == "anthropic" else "30")


async def test_a_refused_provider_key_is_an_authentication_error(fakes: Upstreams, case: Case) -> None:
    async with sdk_through(settings(fakes, anthropic_key="sk-ant-wrong", gemini_key="wrong-key")) as sdk:
        with pytest.raises(openai.AuthenticationError) as raised:
            await sdk.chat.completions.create(model=case.model, messages=[{"role": "user", "content": "Hi"}])
    error = raised.value
    assert error.status_code == 401 and error.code == "provider_auth_error"
    assert f"Provider '{case.provider}'" in error.message
    provider_message = "invalid x-api-key" if case.provider == "anthropic" else "API key not valid"
    assert provider_message in error.message
    if case.provider == "anthropic":
        assert fakes.anthropic.last().headers["x-api-key"] == "sk-ant-wrong"
    else:
        assert fakes.gemini.last().headers["x-goog-api-key"] == "wrong-key"


BAD_ARGUMENTS = '{"city": "Par'


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": BAD_ARGUMENTS},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": "18 C"},
            ],
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look"},
                        {"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="}},
                    ],
                }
            ],
            "messages[0].content[1].image_url",
        ),
    ],
    ids=["malformed-tool-call-arguments", "svg-image"],
)
async def test_bad_client_input_is_a_bad_request_that_never_reaches_the_provider(
    sdk: openai.AsyncOpenAI, fakes: Upstreams, case: Case, messages: list[Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.chat.completions.create(model=case.model, messages=messages, tools=TOOLS)
    error = raised.value
    assert error.status_code == 400 and error.type == "invalid_request_error"
    assert isinstance(error.param, str) and error.param.startswith(param)
    assert isinstance(error.body, dict) and set(error.body) == ERROR_FIELDS
    assert fakes.received() == 0


async def test_a_mid_stream_error_raises_while_iterating(sdk: openai.AsyncOpenAI, case: Case) -> None:
    model, message, code = case.mid_stream
    stream = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], stream=True)
    received = 0
    with pytest.raises(openai.APIError) as raised:
        async for _ in stream:
            received += 1
    assert received >= 1, "the stream had started (a 200) before the provider failed"
    assert not isinstance(raised.value, openai.APIStatusError)
    assert message in raised.value.message
    assert raised.value.code == code


async def test_an_anthropic_stream_cut_short_raises_while_iterating(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="anthropic/truncated", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    text = ""
    with pytest.raises(openai.APIError) as raised:
        async for chunk in stream:
            text += chunk.choices[0].delta.content or ""
    assert text == anthropic_server.REPLY, "what came before the cut was relayed"
    assert raised.value.code == "upstream_stream_incomplete"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_an_unreachable_provider_is_a_502_not_a_500(fakes: Upstreams, case: Case, stream: bool) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = Settings(
        providers={
            "anthropic": ProviderSettings(kind="anthropic", base_url=dead + "/v1", api_key=anthropic_server.API_KEY),
            "gemini": ProviderSettings(kind="gemini", base_url=dead + "/v1beta", api_key=gemini_server.API_KEY),
        }
    )
    async with sdk_through(unreachable) as sdk:
        with pytest.raises(openai.InternalServerError) as raised:
            await sdk.chat.completions.create(
                model=case.model, messages=[{"role": "user", "content": "Hi"}], stream=stream
            )
    assert raised.value.status_code == 502 and raised.value.code == "upstream_connection_error"
    assert isinstance(raised.value.body, dict) and set(raised.value.body) == ERROR_FIELDS


async def test_an_answer_that_is_not_json_is_a_502_not_a_500(sdk: openai.AsyncOpenAI, case: Case) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        await sdk.chat.completions.create(
            model=f"{case.provider}/not-json", messages=[{"role": "user", "content": "Hi"}]
        )
    assert raised.value.status_code == 502
    assert "not JSON" in raised.value.message
    assert isinstance(raised.value.body, dict) and set(raised.value.body) == ERROR_FIELDS
