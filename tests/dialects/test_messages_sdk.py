"""Acceptance of issue #19: the official anthropic SDK, unchanged, through ``relaygate serve``.

One ``relaygate serve`` subprocess sits in front of the fake Anthropic server (the request passes through
natively), the fake OpenAI-compatible server (translated into a chat call) and the built-in mock, all on
127.0.0.1; the scenarios run against each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from relaygate.keys import hash_key
from tests.conftest import KEY_A, KEY_B, UPSTREAM_KEY
from tests.fakes import anthropic_server, openai_server
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import relaygate_serve, serve_in_thread

KEY_LIMITED = "rg-test-key-messages-limited"
KEY_GUARDED = "rg-test-key-messages-guarded"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
IMAGE_URL = "https://example.com/cat.png"

CONFIG = """\
providers:
  mock: {{kind: mock}}
  upstream: {{kind: openai, base_url: "{openai}", api_key: "{openai_key}"}}
  anthropic: {{kind: anthropic, base_url: "{anthropic}", api_key: "{anthropic_key}"}}
model_aliases:
  claude-sonnet-4-5: anthropic/claude-sonnet-4
  claude-haiku*: upstream/gpt-4o
models:
  # Its first target fails; the next one is Anthropic, served natively.
  fallback:
    targets: [upstream/status-503, anthropic/claude-sonnet-4]
    retry: {{max_attempts: 3, backoff: 0.01}}
guards:
  no_secrets: {{type: regex, stage: input, parameters: {{patterns: ["secret"]}}}}
  no_greetings: {{type: regex, stage: output, parameters: {{patterns: ["(?i)hello"]}}}}
projects:
  - id: proj-a
    keys: ["{key_a}"]
  - id: proj-b
    keys: ["{key_b}"]
  - id: proj-limited
    keys: ["{key_limited}"]
    limits: {{requests_per_minute: 1}}
  - id: proj-guarded
    keys: ["{key_guarded}"]
    guards: [no_secrets, no_greetings]
database: "sqlite:///{database}"
retry: {{max_attempts: 1}}
"""


@dataclass(frozen=True)
class Target:
    model: str
    reply: str
    native: bool = False


TARGETS = {
    # A bare name Claude Code sends, dated, mapped by model_aliases to the Anthropic provider.
    "native": Target("claude-sonnet-4-5-20250929", anthropic_server.REPLY, native=True),
    "translated": Target("upstream/gpt-4o", openai_server.REPLY),
    "mock": Target("mock/echo", "relaygate mock reply to: {}"),
}


@dataclass
class Fakes:
    openai: FakeOpenAI
    anthropic: FakeAnthropic


@pytest.fixture(scope="module")
def fakes_and_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fakes, str]]:
    fakes = Fakes(FakeOpenAI(), FakeAnthropic())
    directory: Path = tmp_path_factory.mktemp("messages")
    with serve_in_thread(fakes.openai) as openai_url, serve_in_thread(fakes.anthropic) as anthropic_url:
        config = directory / "relaygate.yaml"
        config.write_text(
            CONFIG.format(
                openai=openai_url + "/v1",
                openai_key=UPSTREAM_KEY,
                anthropic=anthropic_url + "/v1",
                anthropic_key=anthropic_server.API_KEY,
                key_a=KEY_A,
                key_b=hash_key(KEY_B),
                key_limited=KEY_LIMITED,
                key_guarded=KEY_GUARDED,
                database=directory / "relaygate.db",
            )
        )
        with relaygate_serve(["--config", str(config)], cwd=directory) as url:
            yield fakes, url


@pytest.fixture
def fakes(fakes_and_gateway: tuple[Fakes, str]) -> Fakes:
    fakes = fakes_and_gateway[0]
    fakes.openai.requests.clear()
    fakes.anthropic.reset()
    return fakes


@pytest.fixture
def gateway_url(fakes_and_gateway: tuple[Fakes, str]) -> str:
    return fakes_and_gateway[1]


def client_for(gateway_url: str, key: str = KEY_A, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gateway_url, max_retries=0, **options)


@pytest.fixture
def sdk(gateway_url: str) -> Iterator[anthropic.Anthropic]:
    with client_for(gateway_url) as client:
        yield client


@pytest.fixture(params=list(TARGETS), ids=list(TARGETS))
def target(request: pytest.FixtureRequest) -> Target:
    return TARGETS[request.param]


def user(text: str) -> Any:
    return [{"role": "user", "content": text}]


def reply_to(target: Target, prompt: str) -> str:
    return target.reply.format(prompt)


# --- messages.create ------------------------------------------------------------------------------------


def test_create_plain(sdk: anthropic.Anthropic, fakes: Fakes, target: Target) -> None:
    message = sdk.messages.create(model=target.model, max_tokens=200, messages=user("Hello there"), system="Be brief.")
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == reply_to(target, "Hello there")  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message._request_id, "the request-id header is the trace id"
    if target.native:
        # Anthropic's own usage, with the cache counts as they came.
        assert message.usage.cache_creation_input_tokens == 5 and message.usage.cache_read_input_tokens == 30
        assert message.usage.input_tokens == 12 and message.usage.output_tokens == 9
        assert fakes.anthropic.last().body["model"] == "claude-sonnet-4"
    elif target.model.startswith("upstream/"):
        sent = fakes.openai.last("/chat/completions").body
        assert sent["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
        ]
        assert sent["max_completion_tokens"] == 200


def test_stream_helpers_and_the_final_message(sdk: anthropic.Anthropic, target: Target) -> None:
    with sdk.messages.stream(model=target.model, max_tokens=200, messages=user("Stream it")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    # The fake OpenAI server streams its reply with a trailing space.
    assert text.rstrip() == reply_to(target, "Stream it")
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_the_event_sequence(sdk: anthropic.Anthropic, gateway_url: str, target: Target) -> None:
    events: list[Any] = list(
        sdk.messages.create(model=target.model, max_tokens=200, messages=user("Events"), stream=True)
    )
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1
    deltas = [event for event in events if event.type == "content_block_delta"]
    assert deltas and all(event.delta.type == "text_delta" for event in deltas)
    last = events[-2]
    assert last.type == "message_delta" and last.usage.output_tokens > 0
    # On the wire (the SDK hides pings): each event named, its data's type the same, a ping after message_start.
    body = {"model": target.model, "max_tokens": 50, "messages": user("Events"), "stream": True}
    raw = httpx.post(gateway_url + "/v1/messages", json=body, headers={"x-api-key": KEY_A}, timeout=30)
    assert raw.headers["content-type"].startswith("text/event-stream")
    names = []
    for block in raw.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        assert orjson.loads(lines["data"])["type"] == lines["event"]
        names.append(lines["event"])
    assert names[:2] == ["message_start", "ping"] and names[-1] == "message_stop"


# --- tools ------------------------------------------------------------------------------------------------

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {"name": "get_time", "description": "The time", "input_schema": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_tools_with_a_tool_result_round_trip(
    sdk: anthropic.Anthropic, fakes: Fakes, streamed: bool, native: bool
) -> None:
    # The fake Anthropic model "tools" calls get_weather and get_time; the fake OpenAI "agent" calls the first tool.
    first_model, next_model = ("anthropic/tools", "anthropic/claude-sonnet-4") if native else ("upstream/agent",) * 2
    question = user("Weather in Paris?")
    tools: Any = [WEATHER, TIME]
    asked: Any
    if streamed:
        with sdk.messages.stream(model=first_model, max_tokens=300, messages=question, tools=tools) as stream:
            asked = stream.get_final_message()
    else:
        asked = sdk.messages.create(model=first_model, max_tokens=300, messages=question, tools=tools)
    assert asked.stop_reason == "tool_use"
    calls = [block for block in asked.content if block.type == "tool_use"]
    assert calls[0].name == "get_weather"
    assert calls[0].input == (anthropic_server.WEATHER_ARGS if native else {"city": "Paris"})
    results: list[Any] = [
        {"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": "sunny"}]}
        for call in calls
    ]
    results[-1]["is_error"] = len(results) > 1  # a second call failed, as a tool may
    history: Any = [*question, {"role": "assistant", "content": asked.content}, {"role": "user", "content": results}]
    answered = sdk.messages.create(model=next_model, max_tokens=300, messages=history, tools=tools)
    assert answered.stop_reason == "end_turn"
    if native:
        assert answered.content[0].text == anthropic_server.REPLY  # type: ignore[union-attr]
        sent = fakes.anthropic.last().body["messages"]
        assert sent[2]["content"] == results, "the tool results reached Anthropic as they were sent"
    else:
        assert answered.content[0].text == "The tool said: sunny"  # type: ignore[union-attr]
        sent = fakes.openai.last("/chat/completions").body["messages"]
        assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert sent[2] == {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"}


@pytest.fixture(params=[True, False], ids=["native", "translated"])
def native(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_tool_choice_reaches_the_provider(sdk: anthropic.Anthropic, fakes: Fakes) -> None:
    tools: Any = [WEATHER, TIME]
    choice: Any = {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True}
    sdk.messages.create(model="upstream/agent", max_tokens=100, messages=user("Time?"), tools=tools, tool_choice=choice)
    sent = fakes.openai.last("/chat/completions").body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert sent["parallel_tool_calls"] is False
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather", "get_time"]


# --- images -----------------------------------------------------------------------------------------------


def test_images_base64_and_by_url(sdk: anthropic.Anthropic, fakes: Fakes, target: Target) -> None:
    content: Any = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
        {"type": "text", "text": "What is in these?"},
    ]
    message = sdk.messages.create(model=target.model, max_tokens=100, messages=[{"role": "user", "content": content}])
    assert message.content[0].type == "text"
    if target.native:
        assert fakes.anthropic.last().body["messages"][0]["content"] == content
    elif target.model.startswith("upstream/"):
        parts = fakes.openai.last("/chat/completions").body["messages"][0]["content"]
        assert parts == [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
            {"type": "text", "text": "What is in these?"},
        ]


# --- count_tokens -----------------------------------------------------------------------------------------


def test_count_tokens_exact_from_anthropic_estimated_otherwise(sdk: anthropic.Anthropic, fakes: Fakes) -> None:
    messages: Any = [{"role": "user", "content": "Count me, please."}]
    exact = sdk.messages.with_raw_response.count_tokens(model="claude-sonnet-4-5", messages=messages)
    assert exact.headers["x-relaygate-token-count"] == "exact"
    assert exact.parse().input_tokens == anthropic_server.count_of({"messages": messages})
    assert fakes.anthropic.requests[-1].path == "/v1/messages/count_tokens"
    assert fakes.anthropic.requests[-1].body["model"] == "claude-sonnet-4"

    for model in ("upstream/gpt-4o", "mock/echo", "anthropic/status-404"):
        estimated = sdk.messages.with_raw_response.count_tokens(model=model, messages=messages, system="Be brief.")
        assert estimated.headers["x-relaygate-token-count"] == "estimate", model
        counted = estimated.parse()
        assert 5 < counted.input_tokens < 40
        assert counted.to_dict()["estimated"] is True


def test_count_tokens_errors_are_anthropic_shaped(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.count_tokens(model="nowhere/x", messages=user("x"))
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as refused:
        # Anthropic's own 400 (here: a field it does not know) reaches the caller as it is.
        sdk.messages.count_tokens(
            model="claude-sonnet-4-5",
            messages=user("x"),
            extra_body={"frobnicate": True},
        )
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "frobnicate" in refused.value.body["error"]["message"]  # type: ignore[index]


# --- native pass-through ------------------------------------------------------------------------------


def test_the_native_upstream_gets_the_callers_bytes_but_for_the_model(gateway_url: str, fakes: Fakes) -> None:
    # Odd spacing, escapes, key order, a prior thinking block with its signature, cache_control and a
    # beta header: everything reaches Anthropic as sent; only the model name changes.
    body = (
        b'{ "max_tokens" : 64,\n "messages":[{"role":"user","content":[{"type":"text","text":"caf\\u00e9 \\"x\\"",'
        b'"cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":[{"type":"thinking",'
        b'"thinking":"hm","signature":"sig-1"},{"type":"text","text":"Hi"}]},{"role":"user","content":"go"}],'
        b'  "model":"claude-sonnet-4-5-20250929", "temperature":0.50,'
        b' "thinking":{"type":"enabled","budget_tokens":1024}}'
    )
    headers = {
        "x-api-key": KEY_A,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14",
        "content-type": "application/json",
    }
    response = httpx.post(gateway_url + "/v1/messages", content=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    seen = fakes.anthropic.last()
    assert seen.raw == body.replace(b'"model":"claude-sonnet-4-5-20250929"', b'"model":"claude-sonnet-4"')
    assert seen.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert seen.headers["x-api-key"] == anthropic_server.API_KEY, "the provider's key, not the caller's"
    # The answer is Anthropic's own bytes.
    assert response.json()["id"] == "msg_fake01" and response.json()["model"] == "claude-sonnet-4-20250514"


def test_thinking_blocks_and_signatures_pass_through(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model="anthropic/thinking", max_tokens=2048, messages=user("Hi"))
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == (anthropic_server.THINKING, anthropic_server.SIGNATURE)
    with sdk.messages.stream(model="anthropic/thinking", max_tokens=2048, messages=user("Hi")) as stream:
        kinds = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "thinking_delta" in kinds and "signature_delta" in kinds
    assert final.content[0].signature == anthropic_server.SIGNATURE  # type: ignore[union-attr]


def test_a_virtual_model_falls_back_to_a_native_anthropic_target(sdk: anthropic.Anthropic, fakes: Fakes) -> None:
    message = sdk.messages.create(model="fallback", max_tokens=50, messages=user("Hi"))
    assert message.id == "msg_fake01"
    assert fakes.openai.models_seen() == ["status-503"]


# --- errors -----------------------------------------------------------------------------------------------


def error_of(raised: pytest.ExceptionInfo[anthropic.APIStatusError]) -> dict[str, Any]:
    body = raised.value.body
    assert isinstance(body, dict) and body["type"] == "error", body
    assert set(body["error"]) == {"type", "message"}
    return dict(body["error"])


def test_auth_errors(gateway_url: str) -> None:
    with client_for(gateway_url, key="wrong") as client, pytest.raises(anthropic.AuthenticationError) as refused:
        client.messages.create(model="mock/echo", max_tokens=10, messages=user("x"))
    assert error_of(refused)["type"] == "authentication_error"
    # The key as Authorization: Bearer (ANTHROPIC_AUTH_TOKEN) works as well.
    with anthropic.Anthropic(auth_token=KEY_A, base_url=gateway_url, max_retries=0) as client:
        message = client.messages.create(model="mock/echo", max_tokens=10, messages=user("x"))
    assert message.content


def test_bad_input_is_a_400_naming_the_field(gateway_url: str) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": "mock/echo", "messages": user("x")}, "max_tokens"),
        ({"max_tokens": 5, "messages": user("x")}, "model"),
        ({"model": "mock/echo", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "mock/echo", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": "mock/echo", "max_tokens": 5, "messages": user("x"), "temperature": 3}, "temperature"),
        (
            {"model": "mock/echo", "max_tokens": 5, "messages": user("x"), "tool_choice": {"type": "some"}},
            "tool_choice",
        ),
        (
            {"model": "mock/echo", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]},
            "messages.0.content.0.source",
        ),
        # Server tools need Anthropic itself.
        (
            {"model": "mock/echo", "max_tokens": 5, "messages": user("x"), "tools": [{"type": "web_search_20250305"}]},
            "tools.0.type",
        ),
    ]
    with client_for(gateway_url) as client:
        for body, param in cases:
            with pytest.raises(anthropic.BadRequestError) as refused:
                client.post("/v1/messages", body=body, cast_to=object)
            error = error_of(refused)
            assert error["type"] == "invalid_request_error"
            assert param in error["message"], (body, error)


def test_not_found_method_and_too_large(gateway_url: str) -> None:
    with client_for(gateway_url) as client:
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.messages.create(model="nowhere/model", max_tokens=5, messages=user("x"))
        assert error_of(missing)["type"] == "not_found_error"
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.list()  # not served: the gateway's 404
    not_allowed = httpx.get(gateway_url + "/v1/messages", headers={"x-api-key": KEY_A})
    assert not_allowed.status_code == 405
    assert not_allowed.json()["error"]["type"] == "invalid_request_error"


def test_limits_and_guards_refuse_in_anthropics_shape(gateway_url: str) -> None:
    with client_for(gateway_url, key=KEY_LIMITED) as client:
        client.messages.create(model="mock/echo", max_tokens=5, messages=user("x"))
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.create(model="mock/echo", max_tokens=5, messages=user("x"))
    assert error_of(limited)["type"] == "rate_limit_error"
    assert int(limited.value.response.headers["retry-after"]) > 0
    with client_for(gateway_url, key=KEY_GUARDED) as client:
        with pytest.raises(anthropic.BadRequestError) as guarded:
            client.messages.create(model="mock/echo", max_tokens=5, messages=user("my secret"))
        assert error_of(guarded)["type"] == "invalid_request_error"
        # An output guard stops a stream: the stream ends with Anthropic's error event.
        with pytest.raises(anthropic.APIStatusError) as stopped:
            with client.messages.stream(model="upstream/gpt-4o", max_tokens=50, messages=user("Hi")) as stream:
                stream.get_final_message()
    assert isinstance(stopped.value.body, dict) and stopped.value.body["type"] == "error"


def test_upstream_failures(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk.messages.create(model="upstream/status-429", max_tokens=5, messages=user("x"))
    assert limited.value.response.headers["retry-after"] == "7"
    assert error_of(limited)["type"] == "rate_limit_error"
    with pytest.raises(anthropic.InternalServerError) as failed:
        sdk.messages.create(model="anthropic/status-500", max_tokens=5, messages=user("x"))
    assert failed.value.status_code == 500 and error_of(failed)["type"] == "api_error"
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        sdk.messages.create(model="anthropic/status-529", max_tokens=5, messages=user("x"))
    assert overloaded.value.status_code == 529 and error_of(overloaded)["type"] == "overloaded_error"


@pytest.mark.parametrize("model", ["anthropic/overloaded-mid-stream", "upstream/error-event", "anthropic/truncated"])
def test_a_mid_stream_failure_is_an_error_event(sdk: anthropic.Anthropic, model: str) -> None:
    with pytest.raises(anthropic.APIStatusError) as failed:
        with sdk.messages.stream(model=model, max_tokens=50, messages=user("Hi")) as stream:
            stream.get_final_message()
    body = failed.value.body
    assert (
        isinstance(body, dict)
        and body["type"] == "error"
        and body["error"]["type"]
        in (
            "overloaded_error",
            "api_error",
        )
    )


# --- models ---------------------------------------------------------------------------------------------


def test_models_list_in_anthropics_shape(sdk: anthropic.Anthropic, gateway_url: str) -> None:
    ids = [model.id for model in sdk.models.list(limit=2)]  # pages of two, followed by the SDK
    assert ids[0] == "fallback" and "claude-sonnet-4-5" in ids and "upstream/gpt-4o" in ids
    assert len(ids) == len(set(ids))
    one = sdk.models.retrieve("claude-sonnet-4-5")
    assert one.type == "model" and one.id == "claude-sonnet-4-5"
    # Without anthropic-version, the OpenAI list.
    openai_list = httpx.get(gateway_url + "/v1/models", headers={"authorization": f"Bearer {KEY_A}"}).json()
    assert openai_list["object"] == "list"
    alias = next(entry for entry in openai_list["data"] if entry["id"] == "claude-sonnet-4-5")
    assert alias["alias_of"] == "anthropic/claude-sonnet-4"


def test_alias_patterns_route_bare_names(sdk: anthropic.Anthropic, fakes: Fakes) -> None:
    message = sdk.messages.create(model="claude-haiku-4-5-20251001", max_tokens=20, messages=user("Hi"))
    assert message.content[0].text == openai_server.REPLY  # type: ignore[union-attr]
    assert fakes.openai.last("/chat/completions").body["model"] == "gpt-4o"


def test_metadata_user_id_reaches_the_provider(sdk: anthropic.Anthropic, fakes: Fakes) -> None:
    sdk.messages.create(model="upstream/gpt-4o", max_tokens=20, messages=user("Hi"), metadata={"user_id": "u-42"})
    sent = fakes.openai.last("/chat/completions").body
    assert sent["user"] == "u-42" and "extra" not in sent and "metadata" not in sent


def test_an_image_block_without_source_data_is_refused_before_upstream(gateway_url: str, fakes: Fakes) -> None:
    body = {
        "model": "upstream/gpt-4o",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}],
    }
    response = httpx.post(gateway_url + "/v1/messages", json=body, headers={"x-api-key": KEY_A})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert not fakes.openai.requests
    assert orjson.loads(response.content)["request_id"] == response.headers["request-id"]
