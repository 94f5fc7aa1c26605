from __future__ import annotations

from pathlib import Path

import pytest

from relaygate import ConfigError, load_settings

ISSUE_CONFIG = """
providers:
  upstream:                       # the provider's name is the model prefix: upstream/gpt-4o
    kind: openai                  # openai (any OpenAI-compatible server) | anthropic | gemini | mock
    base_url: http://127.0.0.1:9000/v1
    api_key: ${UPSTREAM_KEY}
projects:
  - id: proj-a
    keys: ["${PROJ_A_KEY}"]       # a key from the environment, or "sha256:<hex>" of a key
admin_key: ${RELAYGATE_ADMIN_KEY}
"""
ENV = {"UPSTREAM_KEY": "sk-up", "PROJ_A_KEY": "rg-a", "RELAYGATE_ADMIN_KEY": "adm"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relaygate.yaml"
    path.write_text(text)
    return path


def test_the_issue_config_loads_with_environment_interpolation(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ISSUE_CONFIG), environ=ENV)
    upstream = settings.providers["upstream"]
    assert upstream.kind == "openai" and upstream.base_url == "http://127.0.0.1:9000/v1"
    assert upstream.api_key is not None and upstream.api_key.get_secret_value() == "sk-up"
    assert settings.projects[0].keys[0].get_secret_value() == "rg-a"
    assert settings.admin_key is not None and settings.admin_key.get_secret_value() == "adm"
    assert "sk-up" not in repr(settings), "secrets stay out of reprs and logs"


def test_a_missing_variable_names_the_key_and_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, ISSUE_CONFIG), environ={"PROJ_A_KEY": "a", "RELAYGATE_ADMIN_KEY": "b"})
    message = str(raised.value)
    assert "providers.upstream.api_key" in message and "UPSTREAM_KEY" in message
    assert str(tmp_path) in message


def test_a_default_fills_an_unset_variable(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "admin_key: ${NOPE:-fallback}\n"), environ={})
    assert settings.admin_key is not None and settings.admin_key.get_secret_value() == "fallback"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("providers:\n  up:\n    kind: opeanai\n    base_url: http://x\n", "providers.up.kind"),
        ("providers:\n  up:\n    kind: openai\n", "providers.up: Value error, base_url is required"),
        ("providers:\n  up:\n    kind: openai\n    base_url: ftp://x\n", "providers.up.base_url"),
        (
            "providers:\n  up:\n    kind: openai\n    base_url: http://x\n    colour: red\n",
            "providers.up.colour: unknown key",
        ),
        ("providers:\n  up:\n    kind: anthropic\n    base_url: x\n", "providers.up.base_url"),
        ("projects:\n  - id: a\n  - id: a\n", "appears twice"),
        ("projects:\n  - keys: [x]\n", "projects[0].id: Field required"),
        ("projects:\n  - id: 'has space'\n", "projects[0].id"),
        ("max_body_bytes: lots\n", "max_body_bytes"),
        ("default_provider: nowhere\n", "default_provider 'nowhere'"),
        ("- just\n- a list\n", "mapping at its top level"),
        ("providers: [\n", "not valid YAML"),
    ],
)
def test_a_bad_file_names_the_key_and_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text), environ={})
    assert expected.replace("Value error, ", "") in str(raised.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_provider_keys_in_the_environment_add_providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={"OPENAI_API_KEY": "sk-env"})
    openai = settings.providers["openai"]
    assert openai.base_url == "https://api.openai.com/v1"
    assert openai.api_key is not None and openai.api_key.get_secret_value() == "sk-env"
    both = load_settings(environ={"ANTHROPIC_API_KEY": "sk-ant", "GEMINI_API_KEY": "g-key"}).providers
    assert both["anthropic"].base_url == "https://api.anthropic.com/v1"
    assert both["gemini"].base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert (both["anthropic"].kind, both["gemini"].kind) == ("anthropic", "gemini")
    assert "openai" not in both
    # a configured provider of that name wins over the environment
    path = write(tmp_path, "providers:\n  openai:\n    kind: openai\n    base_url: http://local/v1\n")
    assert load_settings(path, environ={"OPENAI_API_KEY": "sk-env"}).providers["openai"].base_url == "http://local/v1"


def test_without_a_file_the_embedded_default_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.providers == {} and settings.projects == []


def test_the_file_is_found_through_the_environment_or_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "default_provider: mock\n")
    assert load_settings(environ={}).default_provider == "mock"
    other = tmp_path / "other.yaml"
    other.write_text("max_body_bytes: 4096\n")
    assert load_settings(environ={"RELAYGATE_CONFIG": str(other)}).max_body_bytes == 4096


def test_standard_otel_variables_override_the_telemetry_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "telemetry:\n  endpoint: http://from-config:4318\n  service_name: from-config\n  langdb_attributes: true\n",
    )
    assert load_settings(path, environ={}).telemetry.endpoint == "http://from-config:4318"
    telemetry = load_settings(
        path,
        environ={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_SERVICE_NAME": "gateway-eu",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=ml%20ops",
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20collector-token",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
    ).telemetry
    assert telemetry.endpoint == "http://collector:4318"
    assert telemetry.service_name == "gateway-eu"
    assert telemetry.resource_attributes == {"deployment.environment": "prod", "team": "ml ops"}
    assert telemetry.headers["authorization"].get_secret_value() == "Bearer collector-token"
    assert "collector-token" not in repr(telemetry)
    assert telemetry.capture_content is True
    assert telemetry.protocol == "grpc"
    assert telemetry.langdb_attributes is True  # from the file; no variable says otherwise
    assert load_settings(path, environ={"OTEL_SDK_DISABLED": "true"}).telemetry.enabled is False
    assert telemetry.traces is True and telemetry.metrics is True
    quiet = load_settings(path, environ={"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "None"}).telemetry
    assert quiet.traces is False and quiet.metrics is False
    no_content = load_settings(path, environ={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"})
    assert no_content.telemetry.capture_content is False
    with pytest.raises(ConfigError, match="telemetry.protocol"):
        load_settings(path, environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"})
