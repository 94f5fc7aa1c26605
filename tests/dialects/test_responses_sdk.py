"""Acceptance of issue #18: the official openai SDK's Responses API, unchanged, through ``relaygate serve``.

One ``relaygate serve`` subprocess sits in front of the built-in mock and the fake OpenAI-compatible,
Anthropic and Gemini servers on 127.0.0.1 (``tests/fakes/``); every scenario runs against each of them.
"""

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

CONFIG = """\
providers:
  mock: {{kind: mock}}
  upstream: {{kind: openai, base_url: "{openai}", api_key: "{openai_key}"}}
  anthropic: {{kind: anthropic, base_url: "{anthropic}", api_key: "{anthropic_key}"}}
  gemini: {{kind: gemini, base_url: "{gemini}", api_key: "{gemini_key}"}}
projects:
  - id: proj-a
    keys: ["{key_a}"]
  - id: proj-b
    keys: ["{key_b}"]
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


@pytest.fixture(scope="module")
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
                database=directory / "relaygate.db",
            )
        )
        with relaygate_serve(["--config", str(config)], cwd=directory) as url:
            yield fakes, url


@pytest.fixture
def fakes(fakes_and_gateway: tuple[Fakes, str]) -> Fakes:
    return fakes_and_gateway[0]


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
