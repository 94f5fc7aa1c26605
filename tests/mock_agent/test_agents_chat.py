"""The OpenAI Agents SDK, unchanged, over Chat Completions (``OpenAIChatCompletionsModel``) against
``relaygate serve`` on the mock: a function tool, then a typed final output."""

from __future__ import annotations

import pytest
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.mock_agent.conftest import KEY, MODEL, TRIP_PROMPT, Trip, WeatherReport, check_trip, get_weather

pytestmark = pytest.mark.anyio


async def test_a_function_tool_then_a_typed_output(gateway_url: str) -> None:
    set_tracing_disabled(True)
    executed: list[str] = []

    @function_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        executed.append(city)
        return get_weather(city)

    client = AsyncOpenAI(base_url=gateway_url + "/v1", api_key=KEY, max_retries=0)
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    agent = Agent(name="weather", instructions="Use your tools.", tools=[weather], model=model)
    result = await Runner.run(agent, "What is the weather in Paris?")
    assert executed == ["Paris"]
    assert [type(item).__name__ for item in result.new_items] == [
        "ToolCallItem",
        "ToolCallOutputItem",
        "MessageOutputItem",
    ]
    assert "sunny in Paris" in str(result.final_output)

    streamed = Runner.run_streamed(agent, "What is the weather in Rome?")
    kinds = [event.type async for event in streamed.stream_events()]
    assert "raw_response_event" in kinds and executed == ["Paris", "Rome"]
    assert "sunny in Rome" in str(streamed.final_output)

    reporter = Agent(name="reporter", tools=[weather], model=model, output_type=WeatherReport)
    report = (await Runner.run(reporter, "What is the weather in Paris?")).final_output
    assert report == WeatherReport(city="Paris", summary="sunny in Paris")

    planner = Agent(name="planner", model=model, output_type=Trip)
    check_trip((await Runner.run(planner, TRIP_PROMPT)).final_output)
    await client.close()
