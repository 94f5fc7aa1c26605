"""Acceptance of issue #19: Claude Code (npm ``@anthropic-ai/claude-code``) in print mode through ``relaygate serve``.

``claude -p`` runs with ``ANTHROPIC_BASE_URL`` at the gateway and a relaygate key, with a scratch ``HOME`` and
every call home switched off, against the mock (translated), the fake OpenAI-compatible server (translated) and
the fake Anthropic server (native), all on 127.0.0.1. Claude Code asks for its own model names
(``claude-opus-...``, ``claude-haiku-...``); ``model_aliases`` maps them.

Claude Code is installed from npm into tests/node (``npm ci``, as .ci/run does); without Node the tests skip,
except under ``CI=true``, where they must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KEY_A, UPSTREAM_KEY
from tests.fakes import anthropic_server, openai_server
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import relaygate_serve, serve_in_thread

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
PACKAGE = NODE_DIR / "node_modules" / "@anthropic-ai" / "claude-code"
# Print mode talks to the API only: no telemetry, error reports, updates or other calls home.
QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}

CONFIG = """\
providers:
  mock: {{kind: mock}}
  upstream: {{kind: openai, base_url: "{openai}", api_key: "{openai_key}"}}
  anthropic: {{kind: anthropic, base_url: "{anthropic}", api_key: "{anthropic_key}"}}
projects:
  - id: claude-code
    keys: ["{key}"]
model_aliases:
  claude-sonnet-4-5: anthropic/claude-sonnet-4
  "claude-*": mock/echo
database: null
"""
# What Claude Code is told to ask for (ANTHROPIC_MODEL; unset, it asks for its default Claude model), and where
# the gateway sends it.
MODELS = {
    "mock": None,  # its default, claude-opus-..., is aliased by "claude-*"
    "openai": "upstream/gpt-4o",  # a gateway name, as is
    "anthropic": "claude-sonnet-4-5",  # a Claude name aliased to the Anthropic provider
}


@pytest.fixture(scope="module")
def claude() -> list[str]:
    """The command that runs Claude Code (installed into tests/node, once)."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("node and npm are needed: .ci/run installs them")
        pytest.skip("node and npm are not installed")
    if not PACKAGE.is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True)
    binary = NODE_DIR / "node_modules" / ".bin" / "claude"
    probe = subprocess.run([str(binary), "--version"], capture_output=True, timeout=60)
    if probe.returncode == 0:
        return [str(binary)]
    # The package's postinstall (which puts the native binary in place) did not run: its own launcher finds it.
    return ["node", str(PACKAGE / "cli-wrapper.cjs")]


@pytest.fixture(scope="module")
def fakes_and_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeOpenAI, FakeAnthropic, str]]:
    openai_fake, anthropic_fake = FakeOpenAI(), FakeAnthropic()
    directory = tmp_path_factory.mktemp("claude-code")
    with serve_in_thread(openai_fake) as openai_url, serve_in_thread(anthropic_fake) as anthropic_url:
        config = directory / "relaygate.yaml"
        config.write_text(
            CONFIG.format(
                openai=openai_url + "/v1",
                openai_key=UPSTREAM_KEY,
                anthropic=anthropic_url + "/v1",
                anthropic_key=anthropic_server.API_KEY,
                key=KEY_A,
            )
        )
        with relaygate_serve(["--config", str(config)], cwd=directory) as url:
            yield openai_fake, anthropic_fake, url


def run_claude(claude: list[str], gateway_url: str, home: Path, prompt: str, *, model: str | None, bearer: bool) -> str:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(QUIET, HOME=str(home), ANTHROPIC_BASE_URL=gateway_url)
    env["ANTHROPIC_AUTH_TOKEN" if bearer else "ANTHROPIC_API_KEY"] = KEY_A
    if model is not None:
        env["ANTHROPIC_MODEL"] = model
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [*claude, "-p", prompt],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"claude failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()


@pytest.mark.parametrize("provider", list(MODELS))
def test_claude_code_completes_a_prompt_through_the_gateway(
    claude: list[str], fakes_and_gateway: tuple[FakeOpenAI, FakeAnthropic, str], tmp_path: Path, provider: str
) -> None:
    openai_fake, anthropic_fake, url = fakes_and_gateway
    openai_fake.requests.clear()
    anthropic_fake.reset()
    home = tmp_path / "home"
    answer = run_claude(claude, url, home, "Say pong", model=MODELS[provider], bearer=False)
    if provider == "mock":
        # The mock answers with the prompt it got: Claude Code's own context, then the user's words.
        assert answer.startswith("relaygate mock reply to:") and answer.endswith("Say pong")
        # The key as ANTHROPIC_AUTH_TOKEN (Authorization: Bearer) works too.
        again = run_claude(claude, url, home, "Say ping", model=None, bearer=True)
        assert again.startswith("relaygate mock reply to:") and again.endswith("Say ping")
    elif provider == "openai":
        assert answer == openai_server.REPLY
        sent = openai_fake.last("/chat/completions").body
        assert sent["model"] == "gpt-4o" and sent["stream"] is True
        assert sent["messages"][0]["role"] == "system" and len(sent["tools"]) > 5, "Claude Code's tools, translated"
    else:
        assert answer == anthropic_server.REPLY
        seen = anthropic_fake.last()
        assert seen.body["model"] == "claude-sonnet-4"
        assert "claude-code" in seen.headers["anthropic-beta"], "Claude Code's betas reach Anthropic"
        assert seen.headers["x-api-key"] == anthropic_server.API_KEY
