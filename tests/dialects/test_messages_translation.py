"""The Messages API's translation, both ways through the one layer it shares with the Anthropic adapter.

A Messages request read into the canonical chat request and written back by the adapter
(``messages_request``) is the request it was; an Anthropic answer, stream and error read by the adapter
and written back by the dialect are the answer, stream and error they were. The tables both read live in
:mod:`relaygate.providers.anthropic.mapping`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from relaygate.context import RequestContext
from relaygate.dialects.base import DialectRoute
from relaygate.dialects.messages import MessagesDialect, MessagesExchange
from relaygate.dialects.messages.answer import error_body, message
from relaygate.dialects.messages.content import Untranslatable
from relaygate.dialects.messages.count import estimate_tokens
from relaygate.dialects.messages.request import chat_request, check_request, reasoning_effort
from relaygate.dialects.messages.splice import splice
from relaygate.dialects.messages.stream import MessagesStream
from relaygate.errors import InvalidRequestError
from relaygate.providers.anthropic import anthropic_error, chat_completion, messages_request
from relaygate.providers.anthropic.mapping import FINISH_REASONS, STOP_REASONS, anthropic_usage, openai_usage
from relaygate.providers.anthropic.stream import AnthropicStream
from relaygate.routing import ModelRouter
from relaygate.sse import DONE, SSEDecoder
from tests.fakes import anthropic_server

JSON = dict[str, Any]
PDF = "JVBERi0xLjQKJcfs"
PNG = "iVBORw0KGgo="
EPHEMERAL = {"type": "ephemeral"}

ROUND_TRIP: JSON = {
    "model": "claude-sonnet-4",
    "max_tokens": 512,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look at these.", "cache_control": EPHEMERAL},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "The weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "cache_control": EPHEMERAL,
        }
    ],
    "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_k": 5,
    "metadata": {"user_id": "u-1"},
}


def canonical(body: JSON, *, anthropic: bool = False) -> tuple[JSON, list[Untranslatable]]:
    check_request(body)
    untranslatable: list[Untranslatable] = []
    return chat_request(body, anthropic=anthropic, untranslatable=untranslatable), untranslatable


# --- requests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_read_by_the_dialect_and_written_by_the_adapter_is_the_same_request(stream: bool) -> None:
    body = {**ROUND_TRIP, "stream": True} if stream else ROUND_TRIP
    chat, untranslatable = canonical(body, anthropic=True)
    assert not untranslatable
    assert messages_request(chat, "claude-sonnet-4", stream=stream, default_max_tokens=1) == body


def test_for_other_providers_only_what_chat_apis_take_is_kept() -> None:
    chat, _ = canonical(ROUND_TRIP)
    assert "top_k" not in chat
    assert b"cache_control" not in orjson.dumps(chat), "OpenAI refuses fields it does not know"
    assert chat["messages"][0] == {"role": "system", "content": "Be brief."}
    assert chat["messages"][1]["content"][0] == {"type": "text", "text": "Look at these."}
    assert chat["messages"][1]["content"][3] == {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{PDF}"},
    }
    assert chat["messages"][2] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ],
    }
    assert chat["messages"][3:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "user", "content": "Thanks"},
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["parallel_tool_calls"] is False
    assert chat["max_completion_tokens"] == 512 and chat["stop"] == ["END"]
    assert chat["user"] == "u-1" and chat["extra"] == {"user": {"id": "u-1"}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none")],
)
def test_tool_choice_types(choice: JSON, expected: str) -> None:
    chat, _ = canonical({**ROUND_TRIP, "tool_choice": choice})
    assert chat["tool_choice"] == expected and "parallel_tool_calls" not in chat


def test_blocks_that_chat_carries_differently() -> None:
    body: JSON = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "Doc"},
                        "title": "T",
                    },
                    {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "C"}]}},
                    {
                        "type": "search_result",
                        "title": "S",
                        "source": "https://s",
                        "content": [{"type": "text", "text": "R"}],
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "tool_use", "id": "t1", "name": "shot", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "failed"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                        ],
                    }
                ],
            },
            {"role": "system", "content": "Mid-conversation instructions."},
        ],
    }
    chat, untranslatable = canonical(body)
    assert not untranslatable
    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "T\n\nDoc"},
        {"type": "text", "text": "C"},
        {"type": "text", "text": "S https://s\nR"},
    ]
    # Thinking is dropped; the tool call stays.
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}],
    }
    # An error result says so; its image follows in a user message (chat APIs take images from users only).
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": "Error: failed"}
    assert chat["messages"][3]["role"] == "user"
    assert chat["messages"][3]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG}"},
    }
    assert chat["messages"][4] == {"role": "system", "content": "Mid-conversation instructions."}


def test_what_only_anthropic_takes_is_noted_not_refused() -> None:
    body: JSON = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}],
            },
            {
                "role": "assistant",
                "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}],
            },
        ],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "mcp_servers": [{"type": "url", "url": "https://mcp", "name": "x"}],
        "context_management": {"edits": []},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
    }
    chat, untranslatable = canonical(body)
    assert [item.param for item in untranslatable] == [
        "messages.0.content.0.source",
        "messages.1.content.0.type",
        "tools.0.type",
        "mcp_servers",
    ]
    assert "tools" not in chat and "reasoning_effort" not in chat
    error = untranslatable[0].error()
    assert error.status == 400 and "Anthropic provider" in error.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": []}, "max_tokens"),
        ({"max_tokens": 1, "messages": []}, "model"),
        ({"model": "m", "max_tokens": 0, "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": 1, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text",
        ),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages.0.content.0.type",
        ),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages.0.content.0.tool_use_id",
        ),
        (
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "x", "name": "n", "input": []}]}
                ],
            },
            "messages.0.content.0.input",
        ),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "t"}]},
            "tools.0.input_schema",
        ),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "top_k": -1}, "top_k"),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "metadata": {"user_id": 5}},
            "metadata.user_id",
        ),
        (
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "x"}],
                "thinking": {"type": "enabled"},
            },
            "thinking.budget_tokens",
        ),
        (
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "x"}],
                "output_config": {"format": {"type": "text"}},
            },
            "output_config.format",
        ),
    ],
)
def test_bad_input_names_the_field(body: JSON, param: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        canonical(body)
    assert refused.value.param == param
    assert param in refused.value.message


def test_thinking_budgets_are_reasoning_efforts() -> None:
    assert [reasoning_effort({"type": "enabled", "budget_tokens": n}) for n in (1024, 8000, 20000)] == [
        "low",
        "medium",
        "high",
    ]
    assert reasoning_effort({"type": "disabled"}) is None and reasoning_effort({"type": "adaptive"}) is None


def test_structured_outputs_are_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    chat, _ = canonical({**body, "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    # ... which the adapter writes as Anthropic's output_config again.
    assert messages_request(chat, "m", stream=False, default_max_tokens=1)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }


# --- answers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude", "tools", "tool-only", "stop-max_tokens", "stop-refusal"])
def test_an_answer_read_by_the_adapter_and_written_by_the_dialect_is_the_same_answer(model: str) -> None:
    original = anthropic_server._message({"model": model})
    chat = chat_completion(original, created=0)
    assert message(chat, model="unused") == original


def test_stop_reasons_and_usage_are_read_from_one_table_both_ways() -> None:
    for stop, finish in FINISH_REASONS.items():
        assert FINISH_REASONS[STOP_REASONS[finish]] == finish, stop
    assert anthropic_usage(openai_usage(anthropic_server.USAGE)) == anthropic_server.USAGE


def test_a_chat_answer_with_reasoning_and_bad_arguments() -> None:
    chat = {
        "id": "chatcmpl-1",
        "model": "deepseek-r1",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "Think first.",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}],
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14, "cost": 0.25},
    }
    answer = message(chat, model="asked")
    assert answer["id"] == "msg_chatcmpl-1" and answer["model"] == "deepseek-r1"
    assert [block["type"] for block in answer["content"]] == ["thinking", "text", "tool_use"]
    assert answer["content"][2]["input"] == {"arguments": "{oops"}
    assert answer["stop_reason"] == "tool_use"
    assert answer["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 4,
        "cost": 0.25,
    }


# --- streams ---------------------------------------------------------------------------------------------


def exchange() -> MessagesExchange:
    async def no_models(ctx: RequestContext) -> list[JSON]:
        return []

    dialect = MessagesDialect(router=ModelRouter({}), model_entries=no_models, max_body_bytes=1024)
    ctx = RequestContext(trace_id="trace-1")
    made = dialect.exchange(ctx, DialectRoute("POST", "/v1/messages", name="create"), {})
    made.request = {"model": "asked"}
    return made


def anthropic_events(raw: bytes) -> list[tuple[str, JSON]]:
    return [(str((event.event or b"").decode()), orjson.loads(event.data)) for event in SSEDecoder().feed(raw)]


def accumulate(events: list[tuple[str, JSON]]) -> JSON:
    """The message a client builds from Anthropic's events (as the SDKs' stream helpers do)."""
    built: JSON = {}
    for name, event in events:
        assert event["type"] == name
        if name == "message_start":
            built = {**event["message"], "content": []}
        elif name == "content_block_start":
            assert event["index"] == len(built["content"])
            built["content"].append({**event["content_block"], "_json": ""})
        elif name == "content_block_delta":
            block, delta = built["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                block["_json"] += delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
        elif name == "message_delta":
            built.update(event["delta"])
            built["usage"] = {**built["usage"], **event["usage"]}
    for block in built["content"]:
        raw = block.pop("_json")
        if block["type"] == "tool_use":
            block["input"] = orjson.loads(raw) if raw else {}
    return built


@pytest.mark.parametrize("model", ["claude", "tools", "tool-only"])
def test_a_stream_read_by_the_adapter_and_written_by_the_dialect_is_the_same_stream(model: str) -> None:
    original = anthropic_server._message({"model": model})
    upstream = b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
        for name, payload in anthropic_server.stream_events(original)
    )
    mapper = AnthropicStream("anthropic", RequestContext(), usage_chunk=True, json_mode=False)
    frames, ended = mapper.feed(SSEDecoder().feed(upstream))
    assert ended
    translator = MessagesStream(exchange())
    out = b""
    for event in SSEDecoder().feed(frames):
        out += asyncio.run(translator.done()) if event.data == DONE else translator.chunk(orjson.loads(event.data))
    events = anthropic_events(out)
    assert [name for name, _ in events][:2] == ["message_start", "ping"]
    built = accumulate([item for item in events if item[0] != "ping"])
    assert built["content"] == original["content"]
    assert built["stop_reason"] == original["stop_reason"] and built["id"] == original["id"]
    assert built["usage"] == anthropic_server.USAGE


def test_a_failed_stream_ends_with_an_error_event() -> None:
    translator = MessagesStream(exchange())
    out = translator.chunk({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    out += asyncio.run(translator.failed({"message": "Overloaded", "type": "server_error", "code": "overloaded"}))
    events = anthropic_events(out)
    assert events[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "trace-1"},
    )


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_an_anthropic_error_read_by_the_adapter_and_written_by_the_dialect_is_the_same_error(
    status: int, kind: str
) -> None:
    raw = orjson.dumps({"type": "error", "error": {"type": kind, "message": "nope"}})
    error = anthropic_error("anthropic", status, {}, raw)
    back_status, body = error_body(error.status, dict(error.body()["error"]), None)
    assert back_status == status
    assert orjson.loads(body)["error"]["type"] == kind


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (405, "method_not_allowed", (405, "invalid_request_error")),
        (446, "guard_violation", (446, "invalid_request_error")),
        (502, "upstream_connection_error", (502, "api_error")),
        (503, "service_unavailable", (529, "overloaded_error")),
        (504, "upstream_timeout", (504, "timeout_error")),
    ],
)
def test_the_gateways_own_errors(status: int, code: str, expected: tuple[int, str]) -> None:
    got_status, body = error_body(status, {"message": "m", "type": "x", "param": None, "code": code}, "r")
    assert (got_status, orjson.loads(body)["error"]["type"]) == expected


# --- splice and count ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"a","x":1}',
        b'{ "x" : [1,{"model":"no"}] , "model" : "q\\"\\\\" ,"y":"}\\\\"}',
        b'\n{\n  "extra": {"user": {"id": "u"}},\n  "model": "m",\n  "n": -1.5e3, "router": null\n}\n',
        b'{"a":{"b":"]"},"extra":[{"}":"{"}]}',
    ],
)
def test_splice_changes_only_the_members_named(raw: bytes) -> None:
    out = splice(raw, replace={"model": "new"}, drop={"extra", "router"})
    expected = {key: value for key, value in orjson.loads(raw).items() if key not in ("extra", "router")}
    if "model" in expected:
        expected["model"] = "new"
    assert orjson.loads(out) == expected
    untouched = raw.replace(b'"model":"a"', b"").replace(b'"model" : "q\\"\\\\"', b"")
    assert len(out) <= len(raw) + 5 and (b"1.5e3" in out) == (b"1.5e3" in untouched)


def test_the_estimate_counts_text_images_and_tools() -> None:
    text = {"model": "m", "messages": [{"role": "user", "content": "word " * 400}]}
    assert 450 < estimate_tokens(text) < 600  # 2,000 bytes at four a token
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    with_image = {"model": "m", "messages": [{"role": "user", "content": [image]}]}
    assert estimate_tokens(with_image) > 1600
    tools = {**text, "tools": [{"name": "t", "input_schema": {"type": "object"}}]}
    assert estimate_tokens(tools) > estimate_tokens(text) + 346
