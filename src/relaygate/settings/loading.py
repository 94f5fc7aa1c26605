"""Loading the config file: the only code that reads the environment.

``${VAR}`` references in the config file, the provider presets' key variables (``OPENAI_API_KEY``,
``TOGETHER_API_KEY``, ...: :mod:`relaygate.settings.presets`), the ``OTEL_*`` variables and
``RELAYGATE_CONFIG`` are read here, once, when the settings are loaded. Everything else receives a
:class:`~relaygate.settings.Settings` object.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml
from pydantic import ValidationError

from relaygate.settings.base import ConfigError
from relaygate.settings.presets import PRESETS
from relaygate.settings.root import Settings

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
    "UI_SECRET_ENV_VAR",
    "load_settings",
    "set_config_path",
    "share_ui_session_secret",
]

DEFAULT_CONFIG_FILE = "relaygate.yaml"
CONFIG_ENV_VAR = "RELAYGATE_CONFIG"
# The dashboard's session secret when ui.session_secret is left out (shared by serve --workers).
UI_SECRET_ENV_VAR = "RELAYGATE_UI_SESSION_SECRET"

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load the config file, fill ``${VAR}`` references and add providers whose key is in the environment.

    Without a path, ``$RELAYGATE_CONFIG`` or ``./relaygate.yaml`` is used when present; with neither,
    the embedded default (the mock provider, no keys) is returned.
    """
    env = os.environ if environ is None else environ
    file = _config_file(path, env)
    raw: Any = {}
    if file is not None:
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read the config file: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{file}: the config file must hold a mapping at its top level")
    where = str(file) if file is not None else "config"
    errors: list[str] = []
    data = _interpolate(raw, env, (), errors)
    if errors:
        raise ConfigError("\n".join(f"{where}: {error}" for error in errors))
    _add_environment_providers(data, env)
    _add_environment_telemetry(data, env)
    _add_environment_ui_secret(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(f"{where}: {line}" for line in _describe(exc))) from None


def set_config_path(path: str | os.PathLike[str]) -> None:
    """Make ``path`` the config file of processes started from here (``serve --workers``)."""
    os.environ[CONFIG_ENV_VAR] = str(Path(path).resolve())


def share_ui_session_secret() -> None:
    """Give the processes started from here one dashboard session secret (``serve --workers``), unless the
    environment has one: the config's ``ui.session_secret`` still wins over it."""
    if not os.environ.get(UI_SECRET_ENV_VAR):
        os.environ[UI_SECRET_ENV_VAR] = secrets.token_urlsafe(32)


def _add_environment_ui_secret(data: dict[str, Any], env: Mapping[str, str]) -> None:
    secret = env.get(UI_SECRET_ENV_VAR)
    ui = data.get("ui")
    if ui is None:
        ui = data["ui"] = {}
    if secret and isinstance(ui, dict) and not ui.get("session_secret"):
        ui["session_secret"] = secret


def _config_file(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get(CONFIG_ENV_VAR):
        return Path(env[CONFIG_ENV_VAR])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _interpolate(node: Any, env: Mapping[str, str], where: tuple[str | int, ...], errors: list[str]) -> Any:
    if isinstance(node, dict):
        return {key: _interpolate(value, env, (*where, str(key)), errors) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env, (*where, index), errors) for index, value in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = env.get(name)
            if value is None:
                if default is not None:
                    return default
                errors.append(f"{_dotted(where)}: environment variable {name} is not set")
                return ""
            return value

        return _ENV_REF.sub(replace, node)
    return node


def _add_environment_providers(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Each preset whose key variable is set becomes a provider, unless the config names it; a config entry
    named after a preset that gives no ``api_key`` takes it from the variable."""
    providers = data.get("providers")
    if providers is None:
        providers = data["providers"] = {}
    if not isinstance(providers, dict):
        return  # validation reports it
    for name, preset in PRESETS.items():
        key = next((env[variable] for variable in preset.key_variables if env.get(variable)), None)
        if key is None:
            continue
        entry = providers.get(name)
        if entry is None:
            providers[name] = {"kind": preset.kind, "base_url": preset.base_url, "api_key": key}
        elif isinstance(entry, dict) and "api_key" not in entry and entry.get("kind", preset.kind) == preset.kind:
            providers[name] = {**entry, "api_key": key}


# OTEL_* variable: the telemetry setting it overrides (the OpenTelemetry spec has the variables win).
OTEL_VARIABLES = {
    "OTEL_SERVICE_NAME": "service_name",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "endpoint",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "traces_endpoint",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "metrics_endpoint",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "protocol",
}
CAPTURE_CONTENT_VALUES = frozenset({"span_only", "span_and_event", "true"})


def _add_environment_telemetry(data: dict[str, Any], env: Mapping[str, str]) -> None:
    telemetry = data.get("telemetry")
    if telemetry is None:
        telemetry = data["telemetry"] = {}
    if not isinstance(telemetry, dict):
        return  # validation reports it
    for variable, key in OTEL_VARIABLES.items():
        if env.get(variable):
            telemetry[key] = env[variable]
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        telemetry["enabled"] = False
    for variable, key in (("OTEL_TRACES_EXPORTER", "traces"), ("OTEL_METRICS_EXPORTER", "metrics")):
        # "otlp" is the one exporter relaygate installs; "none" switches the signal's export off.
        if env.get(variable, "").strip().lower() == "none":
            telemetry[key] = False
    if env.get("OTEL_RESOURCE_ATTRIBUTES"):
        telemetry["resource_attributes"] = {
            **(telemetry.get("resource_attributes") or {}),
            **_key_values(env["OTEL_RESOURCE_ATTRIBUTES"]),
        }
    if env.get("OTEL_EXPORTER_OTLP_HEADERS"):
        telemetry["headers"] = {**(telemetry.get("headers") or {}), **_key_values(env["OTEL_EXPORTER_OTLP_HEADERS"])}
    capture = env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    if capture:
        telemetry["capture_content"] = capture.strip().lower() in CAPTURE_CONTENT_VALUES


def _key_values(value: str) -> dict[str, str]:
    """``k=v,k2=v2`` as the OTEL_* list variables write it (values percent-encoded)."""
    out = {}
    for pair in value.split(","):
        key, sep, item = pair.partition("=")
        if sep and key.strip():
            out[unquote(key.strip())] = unquote(item.strip())
    return out


def _describe(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors():
        loc = _dotted(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "literal_error":
            # Only kinds are literals; other inputs are not echoed because they may be keys.
            message = f"{message} (got {error['input']!r})"
        # A check across the whole config may report several problems, one per line.
        lines.extend(f"{loc}: {part}" if loc else part for part in message.split("\n"))
    return lines


def _dotted(loc: tuple[str | int, ...] | Any) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
