"""Agent frameworks whose default is the Responses API, unchanged, running a tool-using agent through
``relaygate serve``: the OpenAI Agents SDK's default model (``OpenAIResponsesModel``) and the Vercel AI SDK's
default OpenAI provider (``createOpenAI({baseURL})(model)``, on Node; ``tests/node/agent.mjs``).

Each runs against the fake OpenAI-compatible server's ``agent`` model and against the built-in mock, which
plays an agent (tool calls with ``tool_choice: auto``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.conftest import KEY_A
from tests.dialects.conftest import Fakes

pytestmark = pytest.mark.anyio

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
PROMPT = "What is the weather in Paris? Use get_weather."
MODELS = [pytest.param("upstream/agent", id="fake-openai"), pytest.param("mock/echo", id="mock")]


@pytest.fixture(scope="module")
def node_clients() -> Path:
    """tests/node with its packages installed (npm ci, once; .ci/run does it too)."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("node and npm are needed: .ci/run installs them")
        pytest.skip("node and npm are not installed")
    if not (NODE_DIR / "node_modules" / "ai").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True)
    return NODE_DIR


@pytest.mark.parametrize("model", MODELS)
async def test_the_agents_sdk_runs_a_tool_using_agent(gateway_url: str, fakes: Fakes, model: str) -> None:
    set_tracing_disabled(True)
    executed: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        executed.append(city)
        return f"sunny in {city}"

    client = AsyncOpenAI(base_url=gateway_url + "/v1", api_key=KEY_A, max_retries=0)
    agent = Agent(
        name="weather",
        instructions="Answer with the tools you have.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model=model, openai_client=client),
    )
    result = await Runner.run(agent, PROMPT)
    streamed = Runner.run_streamed(agent, PROMPT)
    kinds = [event.type async for event in streamed.stream_events()]
    await client.close()
    assert executed == ["Paris", "Paris"]
    assert "sunny in Paris" in str(result.final_output)
    assert [type(item).__name__ for item in result.new_items] == [
        "ToolCallItem",
        "ToolCallOutputItem",
        "MessageOutputItem",
    ]
    assert "raw_response_event" in kinds
    assert "sunny in Paris" in str(streamed.final_output)
    if model.startswith("upstream/"):
        # The agent's second turn carried the tool's output back as a tool message.
        sent = fakes.openai.last("/chat/completions").body["messages"]
        assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "sunny in Paris"


@pytest.mark.parametrize("model", MODELS)
def test_the_vercel_ai_sdk_runs_a_tool_using_agent(gateway_url: str, node_clients: Path, model: str) -> None:
    done = subprocess.run(
        ["node", "agent.mjs", gateway_url + "/v1", KEY_A, model],
        cwd=node_clients,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["paths"] == ["POST /v1/responses"], "the AI SDK's default provider speaks the Responses API"
    assert result["toolCalls"] == ["get_weather"]
    assert result["executed"] == ["Paris", "Paris"]
    assert "sunny in Paris" in result["text"] and "sunny in Paris" in result["streamedText"]
    assert result["steps"] == result["streamedSteps"] == 2
    assert result["usage"]["totalTokens"] > 0
