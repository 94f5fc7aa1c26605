"""The Vercel AI SDK, unchanged, against ``relaygate serve`` on the mock, over Chat Completions and over the
Responses API: ``generateObject`` with a zod schema, and a multi-step agent calling two tools in parallel
(``generateText`` and ``streamText``); tests/node/mock.mjs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.mock_agent.conftest import KEY, MODEL

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


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


@pytest.mark.parametrize(("api", "path"), [("chat", "/v1/chat/completions"), ("responses", "/v1/responses")])
def test_generate_object_and_a_multi_step_agent(gateway_url: str, node_clients: Path, api: str, path: str) -> None:
    done = subprocess.run(
        ["node", "mock.mjs", gateway_url + "/v1", KEY, MODEL, api],
        cwd=node_clients,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["paths"] == [f"POST {path}"]
    obj = result["object"]
    assert obj["city"] == "Lisbon" and obj["days"] == 3 and obj["units"] == "fahrenheit"
    assert obj["stops"] and "note" in obj
    assert result["objectTokens"] > 0
    assert result["toolCalls"] == ["get_weather", "get_time"]
    assert result["executed"] == ["weather:Paris", "time:Paris"] * 2
    for text in (result["text"], result["streamedText"]):
        assert "sunny in Paris" in text and "noon in Paris" in text
    assert result["steps"] == result["streamedSteps"] == 2
    assert result["usage"]["totalTokens"] > 0
