"""Guards in the configuration: mistakes stop start-up with a message naming the guard and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relaygate import ConfigError, Gateway, load_settings
from relaygate.settings import Settings

ISSUE_CONFIG = """
providers:
  upstream: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-x}
guards:
  word_count_validator_bd4bdnun: {type: word_count, stage: input, action: block, parameters: {max_words: 50}}
  no_pii: {type: pii, stage: input, action: redact}
  no_secrets_out: {type: regex, stage: output, action: block, parameters: {patterns: ["sk-[A-Za-z0-9]{8,}"]}}
projects:
  - id: proj-a
    keys: ["${PROJ_A_KEY}"]
    guards: [no_pii]                 # applied to every call of the project
"""


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "relaygate.yaml"
    path.write_text(text)
    return load_settings(path, environ={"PROJ_A_KEY": "rg-a"})


def test_the_issue_config_loads_and_builds(tmp_path: Path) -> None:
    settings = load(tmp_path, ISSUE_CONFIG)
    assert settings.projects[0].guards == ["no_pii"]
    assert settings.guards["no_pii"].action == "redact" and settings.guard_options.violation_status == 400
    gateway = Gateway(settings)
    assert set(gateway.guards.guards) == {"word_count_validator_bd4bdnun", "no_pii", "no_secrets_out"}


def test_a_project_naming_unknown_guards_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, ISSUE_CONFIG.replace("guards: [no_pii]", "guards: [no_pii, ghost, phantom]"))
    assert "project 'proj-a' names guards that are not defined under guards: ghost, phantom" in str(raised.value)


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        (
            {"type": "word_count", "stage": "input", "action": "redact"},
            "guards.g: action redact is for guards of type pii or regex",
        ),
        (
            {"type": "json_schema", "stage": "input", "parameters": {"schema": {}}},
            "guards.g: a json_schema guard checks answers",
        ),
        ({"type": "sentiment", "stage": "input"}, "guards.g.type: Input should be"),
        ({"type": "pii", "stage": "input", "action": "allow"}, "guards.g.action: Input should be"),
    ],
)
def test_guard_settings_are_checked_when_loaded(tmp_path: Path, guard: dict[str, Any], message: str) -> None:
    import yaml

    with pytest.raises(ConfigError) as raised:
        load(tmp_path, yaml.safe_dump({"guards": {"g": guard}}))
    assert message in str(raised.value)


def spec(kind: str, stage: str = "input", action: str = "block", **parameters: Any) -> dict[str, Any]:
    return {"type": kind, "stage": stage, "action": action, "parameters": parameters}


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        (spec("word_count"), "guards.g: give min_words, max_words or both"),
        (spec("word_count", max_word=3), "guards.g: parameters.max_word: unknown parameter"),
        (spec("regex", patterns=["("]), "pattern #1 is not a valid regular expression"),
        (spec("regex", action="redact", patterns=["a"], match="all"), "action redact needs match: none"),
        (spec("json_schema", "output", schema={"type": "thing"}), "not a valid JSON Schema"),
        (
            spec("llm_judge", model="nowhere/judge", template="toxicity"),
            "parameters.model: The model 'nowhere/judge' does not exist",
        ),
        (spec("llm_judge", model="mock/judge"), "give either template"),
        (spec("llm_judge", model="mock/judge", template="topic_adherence"), "needs topics"),
        (spec("moderation", provider="nowhere"), "no provider named 'nowhere'"),
        (spec("custom", callable="tests.guards.nothing_here:check"), "cannot import 'tests.guards.nothing_here'"),
        (spec("custom", callable="tests.guards.callables:missing"), "has no 'missing'"),
    ],
)
def test_guard_parameters_are_checked_when_the_gateway_is_built(guard: dict[str, Any], message: str) -> None:
    settings = Settings(guards={"g": guard})
    with pytest.raises(ConfigError) as raised:
        Gateway(settings)
    assert message in str(raised.value)
    assert str(raised.value).startswith("guards.g")


def test_check_refuses_bad_guard_parameters_and_lists_good_guards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from relaygate.cli import main

    config = tmp_path / "relaygate.yaml"
    config.write_text(ISSUE_CONFIG.replace('keys: ["${PROJ_A_KEY}"]', "keys: [rg-a]"))
    assert main(["check", "--config", str(config)]) == 0
    assert "guards: word_count_validator_bd4bdnun (word_count), no_pii (pii), no_secrets_out (regex)" in (
        capsys.readouterr().out
    )
    config.write_text(ISSUE_CONFIG.replace("max_words: 50", "max_words: fifty").replace("${PROJ_A_KEY}", "rg-a"))
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "relaygate: invalid configuration" in err
    assert "guards.word_count_validator_bd4bdnun: parameters.max_words: Input should be a valid integer" in err


def test_the_docs_guards_example_loads_and_builds(tmp_path: Path) -> None:
    section = (Path(__file__).parents[2] / "docs" / "guides" / "guards.md").read_text(encoding="utf-8")
    start = section.index("\n", section.index("```yaml")) + 1
    example = section[start : section.index("```\n", start)]
    path = tmp_path / "relaygate.yaml"
    path.write_text(example)
    settings = load_settings(path, environ={"UPSTREAM_KEY": "sk-x", "PROJ_A_KEY": "rg-a"})
    gateway = Gateway(settings)
    assert {"word_count_validator_bd4bdnun", "toxicity_detection_4yj4cdvu", "no_pii"} <= set(gateway.guards.guards)
    assert gateway.guards.defaults == {"proj-a": ("no_pii",)}
