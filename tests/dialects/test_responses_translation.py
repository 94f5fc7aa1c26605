"""The Responses translation, both ways: requests into the canonical chat call; canonical answers and streams
into response objects and events; and back (a provider's own Responses answers and events into canonical
ones, for the ledger), checked as round trips."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.context import RequestContext
from relaygate.dialects.responses import ResponsesDialect, ResponsesExchange
from relaygate.dialects.responses.answer import chat_completion
from relaygate.dialects.responses.native import ResponsesEvents
from relaygate.errors import InvalidRequestError
from relaygate.sse import SSEDecoder

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]
USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 7,
    "total_tokens": 27,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


async def exchange_for(body: JSON) -> tuple[ResponsesExchange, JSON]:
    ctx = RequestContext(project_id="p")
    route = ResponsesDialect.routes[0]
    exchange = ResponsesExchange(ResponsesDialect(ledger=None), ctx, route, {})
    return exchange, await exchange.canonical(orjson.dumps(body))


async def canonical(body: JSON) -> JSON:
    return (await exchange_for(body))[1]


# --- requests ---------------------------------------------------------------------------------------------


async def test_a_string_input_and_instructions() -> None:
    assert await canonical({"model": "m", "input": "Hi", "instructions": "Be brief."}) == {
        "model": "m",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }


async def test_items_become_chat_messages() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "developer", "content": "Rules."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                    {"type": "input_file", "file_data": "data:application/pdf;base64,BBBB", "filename": "a.pdf"},
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Calling."}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x":1}'},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
        ],
    }
    assert (await canonical(body))["messages"] == [
        {"role": "system", "content": "Rules."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,BBBB", "filename": "a.pdf"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Calling.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]},
    ]


async def test_parameters_tools_and_formats() -> None:
    body = {
        "model": "m",
        "input": "Hi",
        "tools": [
            {"type": "function", "name": "f", "description": "F", "parameters": {"type": "object"}, "strict": True},
            {"type": "function", "name": "g"},
        ],
        "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "g"}]},
        "parallel_tool_calls": False,
        "text": {"format": {"type": "json_schema", "name": "A", "schema": {"type": "object"}, "strict": True}},
        "max_output_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "reasoning": {"effort": "low", "summary": "auto"},
        "user": "u",
        "metadata": {"k": "v"},
        "store": True,
        "stream": True,
        "extra": {"guards": ["g1"]},
    }
    out = await canonical(body)
    assert out == {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "g"}}],
        "parallel_tool_calls": False,
        "tool_choice": "required",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "A", "schema": {"type": "object"}, "strict": True},
        },
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "reasoning_effort": "low",
        "user": "u",
        "extra": {"guards": ["g1"]},
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    json_object = await canonical({"model": "m", "input": "Hi", "text": {"format": {"type": "json_object"}}})
    assert json_object["response_format"] == {"type": "json_object"}
    named = await canonical(
        {"model": "m", "input": "Hi", "tools": body["tools"], "tool_choice": {"type": "function", "name": "f"}}
    )
    assert named["tool_choice"] == {"type": "function", "function": {"name": "f"}}


async def test_what_only_a_native_provider_takes_is_noted_not_refused() -> None:
    exchange, out = await exchange_for(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]},
                {"type": "item_reference", "id": "msg_1"},
            ],
            "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}],
            "tool_choice": {"type": "web_search_preview"},
        }
    )
    assert [item.param for item in exchange.untranslatable] == [
        "input[0].content[0].file_id",
        "input[1].type",
        "tools[0].type",
        "tool_choice",
    ]
    assert out["tools"] == [{"type": "function", "function": {"name": "f"}}] and "tool_choice" not in out


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": [{"type": "message", "role": "user", "content": 3}]}, "input[0].content"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
        ),
        ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0].output"),
        ({"model": "m", "input": "x", "top_p": 2}, "top_p"),
        ({"model": "m", "input": "x", "reasoning": {"effort": "max"}}, "reasoning.effort"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "A"}}}, "text.format.schema"),
        ({"model": "m", "input": "x", "tool_choice": 3}, "tool_choice"),
        ({"model": "m", "input": "x", "metadata": {"k": 1}}, "metadata"),
        ({"model": "m", "input": "x", "conversation": "conv_1"}, "conversation"),
        ({"model": "m", "instructions": "only instructions"}, "input"),
    ],
)
async def test_bad_input_names_the_field(body: JSON, param: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        await canonical(body)
    assert refused.value.param == param and refused.value.status == 400


# --- answers, both ways ---------------------------------------------------------------------------------------


def completion(message: JSON, finish: str = "stop") -> JSON:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {**USAGE, "cost": 0.001},
    }


async def test_a_text_answer_and_back() -> None:
    exchange, _ = await exchange_for({"model": "p/m", "input": "Hi", "metadata": {"k": "v"}, "temperature": 0.3})
    response = orjson.loads(await exchange.answer(completion({"role": "assistant", "content": "Hello"})))
    assert response["object"] == "response" and response["id"] == exchange.shape.id
    assert (response["status"], response["model"], response["metadata"], response["temperature"]) == (
        "completed",
        "gpt-x",
        {"k": "v"},
        0.3,
    )
    (message,) = response["output"]
    assert message["type"] == "message" and message["content"][0]["text"] == "Hello"
    assert response["usage"] == {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 27,
        "cost": 0.001,
    }
    back = chat_completion(response)
    assert back["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Hello"},
        "finish_reason": "stop",
    }
    assert back["usage"] == USAGE


async def test_tool_calls_reasoning_refusal_and_length() -> None:
    exchange, _ = await exchange_for({"model": "m", "input": "Hi"})
    message = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Let me think.",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
    }
    response = orjson.loads(await exchange.answer(completion(message, "tool_calls")))
    assert [item["type"] for item in response["output"]] == ["reasoning", "function_call"]
    assert response["output"][0]["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    call = response["output"][1]
    assert (call["call_id"], call["name"], call["arguments"], call["status"]) == ("c1", "f", '{"a":1}', "completed")
    back = chat_completion(response)["choices"][0]
    assert back["finish_reason"] == "tool_calls"
    assert back["message"]["tool_calls"] == message["tool_calls"]

    cut = orjson.loads(await exchange.answer(completion({"role": "assistant", "content": "Hel"}, "length")))
    assert (cut["status"], cut["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert chat_completion(cut)["choices"][0]["finish_reason"] == "length"
    refused = orjson.loads(await exchange.answer(completion({"role": "assistant", "content": None, "refusal": "No."})))
    assert refused["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]


# --- streams, both ways --------------------------------------------------------------------------------------


def chunk(delta: JSON, finish: str | None = None) -> JSON:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def decoded(data: bytes) -> list[JSON]:
    return [orjson.loads(event.data) for event in SSEDecoder().feed(data)]


async def test_a_stream_and_back() -> None:
    exchange, _ = await exchange_for({"model": "m", "input": "Hi", "stream": True})
    translator = exchange.stream()
    out = b""
    for piece in [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Hmm"}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, "tool_calls"),
        {**chunk({}), "choices": [], "usage": USAGE},
    ]:
        out += translator.chunk(piece)
    out += await translator.done()
    events = decoded(out)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][2]["arguments"] == '{"a":1}' and final["usage"]["total_tokens"] == 27
    assert exchange.ctx.response_id == final["id"]

    # Back: the Responses events, read as a provider's own stream, give the canonical stream again.
    ctx = RequestContext()
    mapper = ResponsesEvents("p", ctx, usage_chunk=False)
    frames, ended = mapper.feed(SSEDecoder().feed(out))
    assert ended and frames.endswith(b"data: [DONE]\n\n")
    assert ctx.usage is not None and (ctx.usage.prompt_tokens, ctx.usage.total_tokens, ctx.usage.cached_tokens) == (
        20,
        27,
        4,
    )
    assert ctx.finish_reasons == ["tool_calls"]
    canonical_chunks = [orjson.loads(event.data) for event in SSEDecoder().feed(frames) if event.data != b"[DONE]"]
    deltas = [c["choices"][0]["delta"] for c in canonical_chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "Hello"
    calls = [call for d in deltas for call in d.get("tool_calls") or ()]
    assert calls[0]["id"] == "c1" and "".join(call["function"]["arguments"] for call in calls) == '{"a":1}'


async def test_a_failed_stream_ends_with_response_failed() -> None:
    exchange, _ = await exchange_for({"model": "m", "input": "Hi", "stream": True})
    translator = exchange.stream()
    out = translator.chunk(chunk({"content": "Hel"}))
    out += await translator.failed({"message": "overloaded", "type": "server_error", "code": "overloaded"})
    events = decoded(out)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "overloaded", "message": "overloaded"}
    assert events[-1]["response"]["output"][0]["status"] == "incomplete"
    # Read back as a provider's stream, the failure is the stream's error.
    ctx = RequestContext()
    frames, ended = ResponsesEvents("p", ctx, usage_chunk=False).feed(SSEDecoder().feed(out))
    assert ended and b'"error"' in frames and ctx.error is not None
