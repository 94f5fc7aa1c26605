"""LangChain's ``ChatOpenAI`` (langchain-openai), unchanged, against ``relaygate serve`` on the mock:
``with_structured_output`` (json_schema and function calling), and a tool call whose result is answered."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.mock_agent.conftest import KEY, MODEL, TRIP_PROMPT, Trip, check_trip, get_weather


@pytest.fixture
def llm(gateway_url: str) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=gateway_url + "/v1", api_key=KEY, max_retries=0)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output(llm: ChatOpenAI, method: str) -> None:
    trip = llm.with_structured_output(Trip, method=method).invoke(TRIP_PROMPT)  # type: ignore[arg-type]
    assert isinstance(trip, Trip)
    check_trip(trip)


def test_a_tool_call_and_its_result(llm: ChatOpenAI) -> None:
    weather = tool(get_weather)
    bound = llm.bind_tools([weather])
    messages: list[object] = [HumanMessage("What is the weather in Paris?")]
    first = bound.invoke(messages)  # type: ignore[arg-type]
    assert [(call["name"], call["args"]) for call in first.tool_calls] == [("get_weather", {"city": "Paris"})]
    messages.append(first)
    for call in first.tool_calls:
        messages.append(ToolMessage(weather.invoke(call["args"]), tool_call_id=call["id"]))
    final = bound.invoke(messages)  # type: ignore[arg-type]
    assert not final.tool_calls and final.content == "get_weather returned: sunny in Paris"
    assert final.usage_metadata is not None and final.usage_metadata["total_tokens"] > 0

    chunks = list(bound.stream(messages[:1]))  # type: ignore[arg-type]
    streamed = sum(chunks[1:], chunks[0])
    assert [(call["name"], call["args"]) for call in streamed.tool_calls] == [("get_weather", {"city": "Paris"})]
