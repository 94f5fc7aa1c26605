"""One ``relaygate serve`` for the dialect tests, in front of the mock and the fake providers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from relaygate.keys import hash_key
from tests.conftest import KEY_A, KEY_B, UPSTREAM_KEY
from tests.fakes import anthropic_server, gemini_server, openai_server
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import relaygate_serve, serve_in_thread

KEY_LIMITED = "rg-test-key-limited-project"
KEY_GUARDED = "rg-test-key-guarded-project"

CONFIG = """\
providers:
  mock: {{kind: mock}}
  upstream: {{kind: openai, base_url: "{openai}", api_key: "{openai_key}"}}
  anthropic: {{kind: anthropic, base_url: "{anthropic}", api_key: "{anthropic_key}"}}
  gemini: {{kind: gemini, base_url: "{gemini}", api_key: "{gemini_key}"}}
  native: {{kind: openai, base_url: "{openai}", api_key: "{openai_key}", native_responses: true}}
models:
  # Its first target fails; the next one serves the Responses API itself.
  smart:
    targets: [upstream/status-503, native/gpt-4.1]
    retry: {{max_attempts: 3, backoff: 0.01}}
guards:
  no_secrets: {{type: regex, stage: input, parameters: {{patterns: ["secret"]}}}}
  no_greetings: {{type: regex, stage: output, parameters: {{patterns: ["(?i)hello"]}}}}
projects:
  - id: proj-a
    keys: ["{key_a}"]
  - id: proj-b
    keys: ["{key_b}"]
  - id: proj-limited
    keys: ["{key_limited}"]
    limits: {{requests_per_minute: 1}}
  - id: proj-guarded
    keys: ["{key_guarded}"]
    guards: [no_secrets, no_greetings]
database: "sqlite:///{database}"
retry: {{max_attempts: 1}}
"""


@dataclass(frozen=True)
class Target:
    model: str
    reply: str  # what the target answers to an ordinary prompt ("{}" is the prompt, for the mock)

    def answer_to(self, prompt: str) -> str:
        return self.reply.format(prompt)


TARGETS = {
    "mock": Target("mock/echo", "relaygate mock reply to: {}"),
    "openai": Target("upstream/gpt-4o", openai_server.REPLY),
    "anthropic": Target("anthropic/claude-sonnet-4", anthropic_server.REPLY),
    "gemini": Target("gemini/gemini-2.5-flash", gemini_server.REPLY),
}


@dataclass
class Fakes:
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    gemini: FakeGemini


@pytest.fixture(scope="package")
def fakes_and_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fakes, str]]:
    fakes = Fakes(FakeOpenAI(), FakeAnthropic(), FakeGemini())
    directory: Path = tmp_path_factory.mktemp("responses")
    with (
        serve_in_thread(fakes.openai) as openai_url,
        serve_in_thread(fakes.anthropic) as anthropic_url,
        serve_in_thread(fakes.gemini) as gemini_url,
    ):
        config = directory / "relaygate.yaml"
        config.write_text(
            CONFIG.format(
                openai=openai_url + "/v1",
                openai_key=UPSTREAM_KEY,
                anthropic=anthropic_url + "/v1",
                anthropic_key=anthropic_server.API_KEY,
                gemini=gemini_url + "/v1beta",
                gemini_key=gemini_server.API_KEY,
                key_a=KEY_A,
                key_b=hash_key(KEY_B),
                key_limited=KEY_LIMITED,
                key_guarded=KEY_GUARDED,
                database=directory / "relaygate.db",
            )
        )
        with relaygate_serve(["--config", str(config)], cwd=directory) as url:
            yield fakes, url


@pytest.fixture
def fakes(fakes_and_gateway: tuple[Fakes, str]) -> Fakes:
    fakes = fakes_and_gateway[0]
    fakes.openai.requests.clear()
    fakes.anthropic.reset()
    fakes.gemini.requests.clear()
    return fakes


@pytest.fixture
def gateway_url(fakes_and_gateway: tuple[Fakes, str]) -> str:
    return fakes_and_gateway[1]


def sdk_for(gateway_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gateway_url + "/v1", max_retries=0)


@pytest.fixture
def sdk(fakes_and_gateway: tuple[Fakes, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY_A, base_url=fakes_and_gateway[1] + "/v1", max_retries=0) as client:
        yield client


@pytest.fixture
def sdk_b(fakes_and_gateway: tuple[Fakes, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY_B, base_url=fakes_and_gateway[1] + "/v1", max_retries=0) as client:
        yield client


@pytest.fixture(params=list(TARGETS), ids=list(TARGETS))
def target(request: pytest.FixtureRequest) -> Target:
    return TARGETS[request.param]


def last_upstream_messages(fakes: Fakes, target: Target) -> Any:
    """What the last chat call carried upstream, as the provider's own conversation field."""
    if target.model.startswith("upstream/"):
        return fakes.openai.last("/chat/completions").body["messages"]
    if target.model.startswith("anthropic/"):
        return fakes.anthropic.last().body["messages"]
    if target.model.startswith("gemini/"):
        return fakes.gemini.last("Content").body["contents"]
    return None
