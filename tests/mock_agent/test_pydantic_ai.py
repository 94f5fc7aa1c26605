"""A pydantic-ai ``Agent``, unchanged, against ``relaygate serve`` on the mock: a tool, then a structured
output (pydantic-ai's output tool, forced with ``tool_choice: required``), run whole and streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.mock_agent.conftest import KEY, MODEL, TRIP_PROMPT, Trip, WeatherReport, check_trip, get_weather

pytestmark = pytest.mark.anyio


@pytest.fixture
async def model(gateway_url: str) -> AsyncIterator[OpenAIChatModel]:
    async with AsyncOpenAI(base_url=gateway_url + "/v1", api_key=KEY, max_retries=0) as client:
        yield OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=client))


async def test_an_agent_with_a_tool_and_a_structured_output(model: OpenAIChatModel) -> None:
    executed: list[str] = []

    def weather(city: str) -> str:
        """The weather in a city."""
        executed.append(city)
        return get_weather(city)

    agent = Agent(model, output_type=WeatherReport, tools=[weather])
    result = await agent.run("What is the weather in Paris?")
    assert executed == ["Paris"]
    assert result.output == WeatherReport(city="Paris", summary="sunny in Paris")
    assert result.usage.total_tokens > 0

    async with agent.run_stream("What is the weather in Rome?") as streamed:
        output = await streamed.get_output()
    assert output == WeatherReport(city="Rome", summary="sunny in Rome") and executed == ["Paris", "Rome"]


async def test_an_agent_with_a_nested_output(model: OpenAIChatModel) -> None:
    result = await Agent(model, output_type=Trip).run(TRIP_PROMPT)
    check_trip(result.output)
    text = await Agent(model).run("Hello")
    assert text.output == "relaygate mock reply to: Hello"
