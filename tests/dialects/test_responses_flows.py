"""Acceptance of issue #18, continued: streams, function tools, structured outputs, native pass-through,
limits, guards and the ledger, with the official openai SDK through ``relaygate serve``."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pydantic
import pytest
from openai.types.responses import FunctionToolParam, ResponseStreamEvent

from tests.conftest import KEY_A
from tests.dialects.conftest import KEY_GUARDED, KEY_LIMITED, Fakes, Target, sdk_for
from tests.fakes import anthropic_server, gemini_server
from tests.fakes.openai_agent import RESPONSES_REPLY
from tests.fakes.openai_server import REPLY as OPENAI_REPLY

WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
TIME: FunctionToolParam = {
    "type": "function",
    "name": "get_time",
    "parameters": {"type": "object", "properties": {}},
    "strict": False,
}
# A model of each target that calls tools, and what it calls first.
TOOL_MODELS = {
    "mock": ("mock/echo", "get_weather"),
    "openai": ("upstream/agent", "get_weather"),
    "anthropic": ("anthropic/tools", "get_weather"),
    "gemini": ("gemini/tools", "get_weather"),
}
# A model of each fake that fails mid-stream, and the error code that ends the stream.
FAILING = {
    "openai": "upstream/error-event",
    "anthropic": "anthropic/overloaded-mid-stream",
    "gemini": "gemini/error-event",
}


class Answer(pydantic.BaseModel):
    answer: int


def sequence(events: list[ResponseStreamEvent]) -> list[str]:
    assert [event.sequence_number for event in events] == list(range(len(events)))
    return [event.type for event in events]


# --- streams -------------------------------------------------------------------------------------------------


def test_create_streamed(sdk: openai.OpenAI, target: Target) -> None:
    events = list(sdk.responses.create(model=target.model, input="Stream this", stream=True))
    kinds = sequence(events)
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "".join(deltas)
    assert "".join(deltas).strip() == target.answer_to("Stream this")
    assert final.response.usage is not None and final.response.usage.total_tokens > 0
    # The stream helper puts the same response together.
    with sdk.responses.stream(model=target.model, input="Stream this") as stream:
        assert stream.get_final_response().output_text == "".join(deltas)
    # And it was stored, as a whole answer is.
    assert sdk.responses.retrieve(final.response.id).output_text == "".join(deltas)


@pytest.mark.parametrize("model", list(FAILING.values()), ids=list(FAILING))
def test_a_mid_stream_failure_becomes_response_failed(sdk: openai.OpenAI, model: str) -> None:
    events = list(sdk.responses.create(model=model, input="Hi", stream=True))
    sequence(events)
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert last.response.error is not None and last.response.error.message


# --- function tools ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", list(TOOL_MODELS))
def test_function_tool_round_trip(sdk: openai.OpenAI, fakes: Fakes, which: str) -> None:
    model, first_tool = TOOL_MODELS[which]
    asked = sdk.responses.create(
        model=model, input="What is the weather in Paris?", tools=[WEATHER, TIME], tool_choice="required"
    )
    calls = [item for item in asked.output if item.type == "function_call"]
    assert calls and calls[0].name == first_tool and calls[0].call_id
    assert calls[0].arguments.startswith("{")
    outputs: list[Any] = [
        {"type": "function_call_output", "call_id": call.call_id, "output": f"result of {call.name}"} for call in calls
    ]
    answered = sdk.responses.create(
        model=model.replace("tools", "ordinary") if which in ("anthropic", "gemini") else model,
        input=outputs,
        previous_response_id=asked.id,
        tools=[WEATHER, TIME],
    )
    assert answered.status == "completed" and answered.output_text
    if which == "openai":
        assert answered.output_text == "The tool said: result of get_weather"
        sent = fakes.openai.last("/chat/completions").body["messages"]
        assert sent[-2]["tool_calls"][0]["id"] == calls[0].call_id
        assert sent[-1] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "result of get_weather"}
    if which == "anthropic":
        blocks = fakes.anthropic.last().body["messages"][-1]["content"]
        assert [block["type"] for block in blocks] == ["tool_result"] * len(calls)


def test_function_call_streamed(sdk: openai.OpenAI) -> None:
    events = list(
        sdk.responses.create(
            model="upstream/agent", input="Weather?", tools=[WEATHER], tool_choice="required", stream=True
        )
    )
    kinds = sequence(events)
    assert "response.function_call_arguments.delta" in kinds
    done = next(event for event in events if event.type == "response.function_call_arguments.done")
    assert done.arguments == '{"city":"Paris"}'
    item = next(event for event in events if event.type == "response.output_item.done").item
    assert item.type == "function_call" and item.name == "get_weather" and item.arguments == done.arguments
    assert kinds[-1] == "response.completed"


# --- structured outputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("upstream/agent", 1),
        ("anthropic/json", 42),
        ("gemini/json", 42),
        pytest.param("mock/echo", 1, id="mock"),
    ],
)
def test_parse_with_a_pydantic_model(sdk: openai.OpenAI, fakes: Fakes, model: str, expected: int) -> None:
    parsed = sdk.responses.parse(model=model, input="The answer?", text_format=Answer)
    assert parsed.output_parsed == Answer(answer=expected)
    if model.startswith("upstream/"):
        sent = fakes.openai.last("/chat/completions").body["response_format"]
        assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Answer"


def test_json_object(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(
        model="upstream/agent", input="Reply in JSON", text={"format": {"type": "json_object"}}
    )
    assert response.output_text == '{"answer": 42}'


# --- native pass-through -------------------------------------------------------------------------------------


def test_native_pass_through_sends_the_callers_body(sdk: openai.OpenAI, fakes: Fakes) -> None:
    body: dict[str, Any] = {
        "model": "native/search",
        "input": "Search",
        "tools": [{"type": "web_search"}],
        "include": ["reasoning.encrypted_content"],
        "metadata": {"k": "v"},
    }
    response = sdk.post("/responses", body=body, cast_to=dict)
    assert response["id"].startswith("resp_fake_")
    assert [item["type"] for item in response["output"]] == ["web_search_call", "message"]
    seen = fakes.openai.last("/responses")
    assert seen.body == {**body, "model": "search"}
    assert seen.headers["authorization"].startswith("Bearer sk-")
    # The same request to a translated provider: the built-in tool is a 400 naming it.
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.post("/responses", body={**body, "model": "upstream/gpt-4o"}, cast_to=dict)
    assert refused.value.body["param"] == "tools[0].type"  # type: ignore[index]


def test_native_stream_and_previous_response(sdk: openai.OpenAI, fakes: Fakes) -> None:
    events = list(sdk.responses.create(model="native/gpt-4.1", input="Hi", stream=True))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta").strip() == RESPONSES_REPLY
    first = events[-1].response
    second = sdk.responses.create(model="native/gpt-4.1", input="Again", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = fakes.openai.last("/responses").body
    assert "previous_response_id" not in sent
    assert [(item["type"], item.get("role")) for item in sent["input"]] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]


def test_a_virtual_model_falls_back_from_a_translated_target_to_a_native_one(sdk: openai.OpenAI, fakes: Fakes) -> None:
    raw = sdk.responses.with_raw_response.create(model="smart", input="Hi")
    response = raw.parse()
    assert response.output_text == RESPONSES_REPLY
    assert raw.headers["x-provider-name"] == "native" and raw.headers["x-relaygate-attempts"] == "2"
    assert [seen.path for seen in fakes.openai.requests] == ["/v1/chat/completions", "/v1/responses"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_native_answer_that_is_no_response_is_a_502(sdk: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.APIStatusError) as failed:
        sdk.responses.create(model="native/html", input="Hi", stream=stream)
    assert failed.value.status_code == 502
    assert isinstance(failed.value.body, dict) and set(failed.value.body) == {"message", "type", "param", "code"}


def test_native_calls_are_accounted(gateway_url: str, fakes: Fakes) -> None:
    response = httpx.post(
        gateway_url + "/v1/responses",
        json={"model": "native/gpt-4.1", "input": "Hi"},
        headers={"authorization": f"Bearer {KEY_A}", "x-thread-id": "native-thread"},
    )
    assert response.status_code == 200
    cost = httpx.get(
        gateway_url + "/v1/threads/native-thread/cost", headers={"authorization": f"Bearer {KEY_A}"}
    ).json()
    assert (cost["input_tokens"], cost["output_tokens"], cost["requests"]) == (9, 6, 1)


# --- limits, guards, the ledger --------------------------------------------------------------------------------


def test_limits_refuse_in_the_responses_shape(gateway_url: str) -> None:
    with sdk_for(gateway_url, KEY_LIMITED) as sdk:
        sdk.responses.create(model="mock/echo", input="one")
        with pytest.raises(openai.RateLimitError) as refused:
            sdk.responses.create(model="mock/echo", input="two")
    assert refused.value.code == "rate_limit_exceeded"
    assert int(refused.value.response.headers["retry-after"]) > 0


def test_guards_refuse_in_the_responses_shape(gateway_url: str) -> None:
    with sdk_for(gateway_url, KEY_GUARDED) as sdk:
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.responses.create(model="mock/echo", input="my secret")
        assert refused.value.code == "guard_violation"
        with pytest.raises(openai.BadRequestError) as answer_refused:
            sdk.responses.create(model="upstream/gpt-4o", input="greet me")
        assert answer_refused.value.code == "guard_violation"
        events = list(sdk.responses.create(model="upstream/gpt-4o", input="greet me", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None
    assert str(events[-1].response.error.code) == "guard_violation"
    assert OPENAI_REPLY not in "".join(getattr(e, "delta", "") for e in events)


def test_a_responses_call_is_recorded_as_a_chat_call(gateway_url: str) -> None:
    headers = {"authorization": f"Bearer {KEY_A}", "x-thread-id": "responses-thread"}
    with httpx.Client(base_url=gateway_url, headers=headers) as http:
        first = http.post("/v1/responses", json={"model": "anthropic/claude-sonnet-4", "input": "Hi"})
        http.post(
            "/v1/responses",
            json={"model": "anthropic/claude-sonnet-4", "input": "And?", "previous_response_id": first.json()["id"]},
        )
        messages = http.get("/v1/threads/responses-thread/messages").json()["messages"]
        cost = http.get("/v1/threads/responses-thread/cost").json()
        chat = http.post(
            "/v1/chat/completions",
            json={"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": "Hi"}]},
        )
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hi"),
        ("assistant", anthropic_server.REPLY),
        ("user", "And?"),
        ("assistant", anthropic_server.REPLY),
    ]
    assert cost["total_cost"] > 0
    # The same usage and cost as the chat call with the same conversation.
    assert first.json()["usage"]["total_tokens"] == chat.json()["usage"]["total_tokens"]
    assert first.headers["x-cost-usd"] == chat.headers["x-cost-usd"]


def test_gemini_reply_is_unchanged(sdk: openai.OpenAI) -> None:
    assert sdk.responses.create(model="gemini/gemini-2.5-flash", input="Hi").output_text == gemini_server.REPLY
