"""Acceptance of issue #18: the official openai SDK's Responses API, unchanged, through ``relaygate serve``.

One ``relaygate serve`` subprocess sits in front of the built-in mock and the fake OpenAI-compatible,
Anthropic and Gemini servers on 127.0.0.1 (``tests/fakes/``); every scenario runs against each of them.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.dialects.conftest import Fakes, Target, last_upstream_messages

# --- plain ------------------------------------------------------------------------------------------------


def test_create_plain(sdk: openai.OpenAI, target: Target) -> None:
    response = sdk.responses.create(model=target.model, input="Hello there", instructions="Be brief.")
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == target.answer_to("Hello there")
    assert response.instructions == "Be brief."
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert response.usage is not None and response.usage.total_tokens > 0
    assert response.usage.input_tokens + response.usage.output_tokens == response.usage.total_tokens


def test_previous_response_id_carries_the_conversation(sdk: openai.OpenAI, fakes: Fakes, target: Target) -> None:
    first = sdk.responses.create(model=target.model, input="My name is Ada.")
    second = sdk.responses.create(model=target.model, input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert second.output_text == target.answer_to("What is my name?")
    items = list(sdk.responses.input_items.list(second.id, order="asc"))
    assert [(item.type, getattr(item, "role", None)) for item in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert all(item.id for item in items)
    sent = last_upstream_messages(fakes, target)
    if sent is not None:
        assert len(sent) == 3, "the provider got the whole conversation"


def test_retrieve_and_delete(sdk: openai.OpenAI, target: Target) -> None:
    created = sdk.responses.create(model=target.model, input="Keep this")
    retrieved = sdk.responses.retrieve(created.id)
    assert retrieved.id == created.id and retrieved.output_text == created.output_text
    sdk.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.delete(created.id)


def test_store_false_keeps_nothing(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="mock/echo", input="Forget this", store=False)
    assert response.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as refused:
        sdk.responses.create(model="mock/echo", input="and?", previous_response_id=response.id)
    assert refused.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_a_response_of_another_project_is_a_404(sdk: openai.OpenAI, sdk_b: openai.OpenAI) -> None:
    mine = sdk.responses.create(model="mock/echo", input="Mine")
    with pytest.raises(openai.NotFoundError):
        sdk_b.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        sdk_b.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        sdk_b.responses.create(model="mock/echo", input="Theirs?", previous_response_id=mine.id)
    assert sdk.responses.retrieve(mine.id).id == mine.id


# --- errors -----------------------------------------------------------------------------------------------


def test_bad_input_is_a_400_naming_the_field(sdk: openai.OpenAI) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": "Hi"}, "model"),
        ({"model": "mock/echo", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "mock/echo", "input": "x", "temperature": 9}, "temperature"),
        ({"model": "mock/echo", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "mock/echo", "input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.name"),
        ({"model": "mock/echo", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "mock/echo", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "mock/echo", "input": "x", "background": True}, "background"),
        ({"model": "mock/echo"}, "input"),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.post("/responses", body=body, cast_to=object)
        assert refused.value.status_code == 400
        error = refused.value.body
        assert isinstance(error, dict) and error["param"] == param, (body, error)
        assert set(error) == {"message", "type", "param", "code"}


def test_unknown_model_and_upstream_failures(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.responses.create(model="nowhere/model", input="Hi")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.responses.create(model="upstream/status-429", input="Hi")
    assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.InternalServerError) as failed:
        sdk.responses.create(model="anthropic/status-500", input="Hi")
    # The provider's own status and message, as on /v1/chat/completions.
    assert failed.value.status_code == 500 and failed.value.message.endswith("fake failure 500")
    assert isinstance(failed.value.body, dict) and set(failed.value.body) == {"message", "type", "param", "code"}


def test_no_key_is_a_401_in_the_openai_shape(fakes_and_gateway: tuple[Fakes, str]) -> None:
    with openai.OpenAI(api_key="wrong", base_url=fakes_and_gateway[1] + "/v1", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as refused:
            client.responses.create(model="mock/echo", input="Hi")
    assert refused.value.code == "invalid_api_key"
