"""The official openai SDK, unchanged, against ``relaygate serve`` on the mock: structured outputs with
``.parse``, tool calls (auto, parallel, forced, streamed as OpenAI streams them) and answers from tool
results; the anthropic SDK's forced tool, as the Messages API reaches the same mock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.mock_agent.conftest import KEY, MODEL, TRIP_PROMPT, Trip, check_trip

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# What clients send as structured outputs, harder than pydantic's: allOf, tuples, formats, bounds, recursion.
HARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "required": ["label", "children"],
        },
        "Base": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}, "required": ["id"]},
    },
    "properties": {
        "tree": {"$ref": "#/$defs/Node"},
        "record": {
            "allOf": [{"$ref": "#/$defs/Base"}, {"properties": {"at": {"type": "string", "format": "date-time"}}}]
        },
        "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False},
        "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "count": {"type": "integer", "minimum": 10, "multipleOf": 5},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 3}, "minItems": 2, "uniqueItems": True},
        "kind": {"const": "fixed"},
        "either": {"oneOf": [{"type": "null"}, {"type": "string", "maxLength": 2}]},
        "mapping": {"type": "object", "additionalProperties": {"type": "integer"}},
        "email": {"type": ["string", "null"], "format": "email"},
    },
    "required": ["tree", "record", "pair", "score", "count", "tags", "kind", "either", "mapping", "email"],
    "additionalProperties": False,
}


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway_url + "/v1", api_key=KEY, max_retries=0) as client:
        yield client


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model=MODEL, messages=user(TRIP_PROMPT), response_format=Trip)
    trip = completion.choices[0].message.parsed
    assert trip is not None
    check_trip(trip)
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_a_json_schema_answer_is_valid_against_it(client: openai.OpenAI) -> None:
    response_format: Any = {"type": "json_schema", "json_schema": {"name": "hard", "schema": HARD_SCHEMA}}
    completion = client.chat.completions.create(model=MODEL, messages=user("Anything"), response_format=response_format)
    value = json.loads(completion.choices[0].message.content or "")
    jsonschema.Draft202012Validator(HARD_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(value)


def test_json_object_answers_an_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=user("Reply in JSON"), response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


def test_a_tool_named_in_the_text_is_called_with_valid_arguments(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=user("What is the weather in Paris, in f?"),
        tools=[WEATHER, TIME],  # type: ignore[list-item]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "f"}
    # Tools the text does not ask for are not called, nor any with tool_choice none.
    tools: Any = [WEATHER, TIME]
    plain = client.chat.completions.create(model=MODEL, messages=user("Hello there"), tools=tools)
    assert plain.choices[0].message.content == "relaygate mock reply to: Hello there"
    none = client.chat.completions.create(
        model=MODEL, messages=user("Use get_weather"), tools=tools, tool_choice="none"
    )
    assert none.choices[0].message.tool_calls is None


def test_parallel_calls_then_an_answer_from_their_results(client: openai.OpenAI) -> None:
    messages: list[Any] = user("What are the time and the weather in Paris?")
    tools: Any = [WEATHER, TIME]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=tools).choices[0].message
    calls = first.tool_calls or []
    assert [call.function.name for call in calls] == ["get_time", "get_weather"]  # type: ignore[union-attr]
    assert len({call.id for call in calls}) == 2
    messages.append(first.model_dump(exclude_none=True))
    for call, result in zip(calls, ["noon", "sunny"], strict=True):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=tools).choices[0]
    assert final.finish_reason == "stop"
    assert final.message.content == "get_time returned: noon\nget_weather returned: sunny"
    one = client.chat.completions.create(
        model=MODEL, messages=messages[:1], tools=tools, parallel_tool_calls=False
    ).choices[0]
    assert [call.function.name for call in one.message.tool_calls or []] == ["get_time"]  # type: ignore[union-attr]


def test_forced_calls(client: openai.OpenAI) -> None:
    tools: Any = [WEATHER, TIME]
    named = client.chat.completions.create(
        model=MODEL,
        messages=user("Hi"),
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    [call] = named.choices[0].message.tool_calls or []
    assert call.function.name == "get_time" and json.loads(call.function.arguments) == {"city": "mock"}  # type: ignore[union-attr]
    required = client.chat.completions.create(model=MODEL, messages=user("Hi"), tools=tools, tool_choice="required")
    [call] = required.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])  # type: ignore[index,union-attr]


class GetWeather(BaseModel):
    city: str


def test_parse_with_a_pydantic_function_tool(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=MODEL,
        messages=user("How is the weather in Tokyo?"),
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == GetWeather(city="Tokyo")


def test_tool_calls_structured_output_and_text_stream_as_openai_streams_them(client: openai.OpenAI) -> None:
    tools: Any = [WEATHER, TIME]
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=user("Weather and time in Paris?"),
            tools=tools,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    heads = [(delta.index, delta.function.name) for delta in deltas if delta.id and delta.function]
    assert heads == [(0, "get_weather"), (1, "get_time")]
    assert len(deltas) > 4, "the arguments come in pieces"
    pieces = [(d.index, d.function.arguments or "") for d in deltas if d.function]
    arguments = ["".join(piece for index, piece in pieces if index == i) for i in (0, 1)]
    assert [json.loads(a) for a in arguments] == [{"city": "Paris", "unit": "c"}, {"city": "Paris"}]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    with client.chat.completions.stream(model=MODEL, messages=user(TRIP_PROMPT), response_format=Trip) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "content.delta" in kinds
    parsed = final.choices[0].message.parsed
    assert parsed is not None
    check_trip(parsed)

    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=user("one two three"), stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "relaygate mock reply to: one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_responses_parse_and_function_calls(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(model=MODEL, input=TRIP_PROMPT, text_format=Trip)
    assert parsed.output_parsed is not None
    check_trip(parsed.output_parsed)
    response = client.responses.create(
        model=MODEL,
        input="What is the weather in Oslo?",
        tools=[
            {"type": "function", "name": "get_weather", "parameters": GetWeather.model_json_schema(), "strict": False}
        ],
    )
    [call] = [item for item in response.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Oslo"}


def test_the_anthropic_sdk_forced_tool_and_output_format(gateway_url: str) -> None:
    schema = Trip.model_json_schema()
    with anthropic.Anthropic(base_url=gateway_url, api_key=KEY, max_retries=0) as client:
        message = client.messages.create(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": TRIP_PROMPT}],
            tools=[{"name": "record_trip", "input_schema": schema}],
            tool_choice={"type": "tool", "name": "record_trip"},
        )
        structured = client.messages.create(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": TRIP_PROMPT}],
            extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
        )
    [block] = [block for block in message.content if block.type == "tool_use"]
    assert block.name == "record_trip" and message.stop_reason == "tool_use"
    check_trip(Trip.model_validate(block.input))
    [text] = [block for block in structured.content if block.type == "text"]
    check_trip(Trip.model_validate_json(text.text))
