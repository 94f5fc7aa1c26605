"""Guards in ``relaygate serve`` with a config of the issue's shape, used through the official openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import KEY_A, UPSTREAM_KEY
from tests.fakes.openai_server import REPLY, FakeOpenAI
from tests.guards.test_models import SEED_REQUEST
from tests.servers import relaygate_serve

CONFIG = """\
providers:
  upstream:
    kind: openai
    base_url: {upstream}
    api_key: ${{UPSTREAM_KEY}}
default_provider: upstream
guards:
  word_count_validator_bd4bdnun: {{type: word_count, stage: input, action: block, parameters: {{max_words: 50}}}}
  toxicity_detection_4yj4cdvu:
    type: llm_judge
    stage: input
    action: block
    parameters: {{template: toxicity, model: upstream/judge}}
  no_pii: {{type: pii, stage: input, action: redact}}
  no_secrets_out: {{type: regex, stage: output, action: block, parameters: {{patterns: ["sk-[A-Za-z0-9]{{8,}}"]}}}}
guard_options:
  violation_status: 446
projects:
  - id: proj-a
    keys: ["${{PROJ_A_KEY}}"]
    guards: [no_pii]
    request_scripts: true   # the seed's request carries a script router
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, fake_upstream_server: tuple[FakeOpenAI, str]) -> Iterator[str]:
    _, upstream = fake_upstream_server
    config: Path = tmp_path_factory.mktemp("guards") / "relaygate.yaml"
    config.write_text(CONFIG.format(upstream=upstream + "/v1"))
    env = {"UPSTREAM_KEY": UPSTREAM_KEY, "PROJ_A_KEY": KEY_A}
    with relaygate_serve(["--config", str(config)], env=env) as base_url:
        yield base_url


@pytest.fixture
def sdk(served: str, fake_upstream: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=served + "/v1", api_key=KEY_A, max_retries=0) as client:
        yield client


def test_the_seeds_request_and_the_projects_pii_guard(sdk: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    extra = {key: SEED_REQUEST[key] for key in ("extra", "router", "mcp_servers")}
    reply = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Write a haiku about recursion; reply to ada@example.com."}],
        extra_body=extra,
    )
    assert reply.choices[0].message.content == REPLY
    sent = fake_upstream.last("/chat/completions").body
    assert sent["model"] == "test"  # where the seed's script router sends it
    assert sent["messages"][0]["content"] == "Write a haiku about recursion; reply to [EMAIL]."
    assert any(seen.body["model"] == "judge" for seen in fake_upstream.requests)


def test_a_violation_is_a_446_for_langdb_clients(sdk: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "you idiot"}],
            extra_body={"extra": {"guards": ["toxicity_detection_4yj4cdvu"]}},
        )
    assert raised.value.status_code == 446
    assert raised.value.body == {
        "message": "Guard 'toxicity_detection_4yj4cdvu' blocked the request: judged toxic.",
        "type": "invalid_request_error",
        "param": None,
        "code": "guard_violation",
    }


def test_a_blocked_stream_ends_with_content_filter_and_raises_in_the_sdk(
    sdk: openai.OpenAI, fake_upstream: FakeOpenAI
) -> None:
    stream = sdk.chat.completions.create(
        model="echo-4",
        messages=[{"role": "user", "content": "your key: sk-live0123456789abcdef, keep it safe"}],
        stream=True,
        extra_body={"extra": {"guards": ["no_secrets_out"]}},
    )
    text, finishes = "", []
    with stream, pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                if choice.finish_reason:
                    finishes.append(choice.finish_reason)
    assert text == "your key: "
    assert finishes == ["content_filter"]
    assert "Guard 'no_secrets_out' blocked the answer" in raised.value.message
