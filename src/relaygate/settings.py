"""relaygate's configuration: pydantic models of the YAML config file.

This is the only module that reads the environment: ``${VAR}`` references in the config file, the
well-known provider key variables (``OPENAI_API_KEY``, ...) and ``RELAYGATE_CONFIG``. Everything
else receives a :class:`Settings` object.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from relaygate.keys import key_digest, key_id
from relaygate.limits.config import DEFAULT, ProjectLimits
from relaygate.pricing.models import ModelPrice, parse_price_key

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "BreakerSettings",
    "ConfigError",
    "GuardOptions",
    "GuardSettings",
    "ProjectSettings",
    "ProviderSettings",
    "RetrySettings",
    "RouteSettings",
    "ServerSettings",
    "Settings",
    "TargetSettings",
    "Timeouts",
    "VirtualModelSettings",
    "load_settings",
    "set_config_path",
]

DEFAULT_CONFIG_FILE = "relaygate.yaml"
CONFIG_ENV_VAR = "RELAYGATE_CONFIG"

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"

ProviderKind = Literal["openai", "anthropic", "gemini", "mock"]
# Where a native adapter goes when the config gives no base_url.
DEFAULT_BASE_URLS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}

# Provider keys picked up from the environment when the config does not name the provider itself.
ENV_PROVIDERS: dict[str, tuple[str, str, str]] = {
    # provider name: (key variable, kind, base URL)
    "openai": ("OPENAI_API_KEY", "openai", "https://api.openai.com/v1"),
    "anthropic": ("ANTHROPIC_API_KEY", "anthropic", DEFAULT_BASE_URLS["anthropic"]),
    "gemini": ("GEMINI_API_KEY", "gemini", DEFAULT_BASE_URLS["gemini"]),
}

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Model):
    """Upstream timeouts, in seconds."""

    connect: float = Field(10.0, gt=0)
    # Longest silence while reading a response; a non-streamed completion says nothing until it is done.
    read: float = Field(600.0, gt=0)
    # From sending a streamed request to its first chunk: a stuck stream fails fast and can be retried.
    first_chunk: float = Field(120.0, gt=0)


class ProviderSettings(_Model):
    """One upstream provider. Its name in ``providers:`` is the model prefix (``name/model``)."""

    kind: ProviderKind
    base_url: str | None = None
    api_key: SecretStr | None = None
    # When given, only these models are routed and listed; when absent, any model name is passed on
    # and GET /v1/models asks the upstream.
    models: list[str] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_connections: int = Field(1000, ge=1)
    # Ask the upstream for stream_options.include_usage so that usage of streams is always known.
    stream_usage: bool = True
    # mock only: seconds between streamed chunks.
    chunk_delay: float = Field(0.0, ge=0)
    # anthropic only: max_tokens when the request sets none (Anthropic requires it).
    default_max_tokens: int = Field(4096, ge=1)

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return url.rstrip("/") if url else url

    @model_validator(mode="after")
    def _base_url_known(self) -> ProviderSettings:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("base_url is required for kind openai")
        if self.base_url is None and self.kind in DEFAULT_BASE_URLS:
            object.__setattr__(self, "base_url", DEFAULT_BASE_URLS[self.kind])
        return self


class ProjectSettings(_Model):
    """A project and the API keys that may use it."""

    id: str = Field(pattern=NAME_PATTERN)
    name: str | None = None
    # A key itself (usually "${ENV_VAR}") or "sha256:<hex>" of a key.
    keys: list[SecretStr] = Field(default_factory=list)
    # Whether the ledger stores the prompts and answers of this project's threads; calls are recorded either way.
    store_messages: bool = True
    # Ids of guards (top-level ``guards:``) applied to every call of the project.
    guards: list[str] = Field(default_factory=list)

    # Rate limits and budgets of the project, its keys, users and models (relaygate.limits.config).
    limits: ProjectLimits | None = None

    @model_validator(mode="after")
    def _limited_keys_are_the_projects(self) -> ProjectSettings:
        if self.limits is not None:
            ids = {key_id(key_digest(key.get_secret_value())) for key in self.keys}
            for name in self.limits.keys:
                if name != DEFAULT and name not in ids:
                    raise ValueError(f"limits.keys: {name} is not one of the keys of project {self.id!r}")
        return self


GuardType = Literal["word_count", "regex", "pii", "json_schema", "moderation", "llm_judge", "custom"]
# Guards that can rewrite what they find instead of refusing it.
REDACTING_GUARDS = frozenset({"regex", "pii"})


class GuardSettings(_Model):
    """One guard: what it checks (``type`` and its ``parameters``), when and what it does on a finding.

    The parameters of each type are checked when the gateway is built (:mod:`relaygate.guards`).
    """

    type: GuardType
    stage: Literal["input", "output"]
    action: Literal["block", "redact", "observe"] = "block"
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _action_fits_type(self) -> GuardSettings:
        if self.action == "redact" and self.type not in REDACTING_GUARDS:
            raise ValueError(f"action redact is for guards of type {' or '.join(sorted(REDACTING_GUARDS))}")
        if self.type == "json_schema" and self.stage != "output":
            raise ValueError("a json_schema guard checks answers: its stage is output")
        return self


class GuardOptions(_Model):
    """How guards answer and how much of a stream they may hold."""

    # 400 (OpenAI's status for a refused request) or 446, the status LangDB's gateway uses for guards.
    violation_status: Literal[400, 446] = 400
    # The most text of a stream that a guard holds back. Guards that judge a whole answer (json_schema,
    # llm_judge, moderation, custom) hold a streamed answer until it is complete: a longer answer is
    # refused. regex and pii hold back a match still in progress: past this, a blocking guard refuses
    # the answer and a redacting one redacts all it holds. Never is unjudged text let through.
    stream_hold_chars: int = Field(100_000, ge=1)


class ServerSettings(_Model):
    """How ``relaygate serve`` runs uvicorn; command-line options override these."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    root_path: str = ""
    forwarded_allow_ips: str = "127.0.0.1"
    access_log: bool = False


class TelemetrySettings(_Model):
    """OpenTelemetry. The standard ``OTEL_*`` variables override these when the config is loaded.

    relaygate always records through the global (or an injected) TracerProvider; a host that set one
    up keeps it. ``relaygate serve`` installs an OTLP exporter only when no provider exists and an
    endpoint is given, so that a gateway without a collector does not log export failures.
    """

    enabled: bool = True  # OTEL_SDK_DISABLED=true turns it off
    service_name: str = "relaygate"  # OTEL_SERVICE_NAME
    resource_attributes: dict[str, str] = Field(default_factory=dict)  # OTEL_RESOURCE_ATTRIBUTES
    endpoint: str | None = None  # OTEL_EXPORTER_OTLP_ENDPOINT; /v1/traces and /v1/metrics are added
    traces_endpoint: str | None = None  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as given
    metrics_endpoint: str | None = None  # OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, used as given
    protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"  # OTEL_EXPORTER_OTLP_PROTOCOL
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # OTEL_EXPORTER_OTLP_HEADERS
    traces: bool = True  # export spans; OTEL_TRACES_EXPORTER=none turns it off
    metrics: bool = True  # record and export metrics; OTEL_METRICS_EXPORTER=none turns it off
    # Prompts and answers on the spans (gen_ai.input.messages, ...); off unless asked for, also by
    # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY|SPAN_AND_EVENT|true.
    capture_content: bool = False
    # Also emit LangDB's names (langdb.thread_id, langdb.run_id, langdb.label).
    langdb_attributes: bool = False


Strategy = Literal["fallback", "percentage", "random", "optimized", "conditional"]
Metric = Literal["latency", "ttft", "error_rate", "cost"]
# Request fields a target may not override: the conversation itself, the stream switch, the gateway's own.
FIXED_FIELDS = frozenset({"model", "messages", "input", "prompt", "stream", "extra", "router", "mcp_servers"})
# `router/<name>` addresses a virtual model; `router/dynamic` is the request's own `router` object.
ROUTER_PREFIX = "router"
DYNAMIC_MODEL = "dynamic"


class RetrySettings(_Model):
    """How a request is retried and sent on to its next target (see README.md, "Routing, fallbacks and retries").

    An attempt that fails with 429, 408, 409, a 5xx, a timeout or a refused connection is followed by
    another, on the next target that is not cooling down, or on the same target after a backoff.
    """

    # Upstream calls per request in all, over every target: 3 gives a plain provider/model two retries.
    max_attempts: int = Field(3, ge=1, le=10)
    # Seconds from the first attempt; no attempt starts, and no wait is begun, that would end after it,
    # and an attempt still running when it passes (a stream: before its first chunk) is cut off there:
    # the client gets a 504 deadline_exceeded.
    deadline: float = Field(60.0, gt=0, le=3600)
    # The first wait before a target is tried again; it doubles on each failure of that target, up to
    # max_backoff, and is jittered (half of it fixed, half random) so that clients do not retry in step.
    backoff: float = Field(0.25, ge=0, le=60)
    max_backoff: float = Field(8.0, ge=0, le=300)
    # A provider's Retry-After is waited for up to this many seconds; a longer one takes the target out
    # of this request (the next target answers, or the client gets the 429 with its Retry-After).
    max_retry_after: float = Field(30.0, ge=0, le=3600)


class BreakerSettings(_Model):
    """The circuit breaker of every target (provider/model), shared by all requests of a process."""

    enabled: bool = True
    # Consecutive failed attempts (of the kinds that are retried) that open a target's breaker.
    failures: int = Field(5, ge=1)
    # Seconds an open target is skipped; then one trial request goes through (half-open) and its
    # outcome closes the breaker or opens it for another cooldown.
    cooldown: float = Field(30.0, gt=0)


def _target_object(value: Any) -> Any:
    return {"model": value} if isinstance(value, str) else value


class TargetSettings(BaseModel):
    """A target of a virtual model: ``provider/model`` and request parameters to set (``null`` removes one)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: str = Field(min_length=1)

    @model_validator(mode="after")
    def _overridable(self) -> TargetSettings:
        fixed = sorted(FIXED_FIELDS.intersection(self.model_extra or {}))
        if fixed:
            raise ValueError(f"a target cannot set {', '.join(fixed)}")
        return self

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


Target = Annotated[TargetSettings, BeforeValidator(_target_object)]


class RouteSettings(_Model):
    """One route of a ``conditional`` virtual model: its targets, when every condition holds."""

    when: dict[str, Any]
    targets: list[Target] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _conditions(cls, when: dict[str, Any]) -> dict[str, Any]:
        # Imported here: relaygate.routing imports this module.
        from relaygate.routing.conditions import parse_when

        parse_when(when)
        return when


class VirtualModelSettings(_Model):
    """A model name that routes to provider models by a strategy, with fallbacks and retries."""

    strategy: Strategy = "fallback"
    targets: list[Target] = Field(min_length=1)
    # percentage: one weight per target (any scale: [80, 20] or [0.8, 0.2]).
    weights: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    # optimized: the live per-target figure to minimise.
    metric: Metric = "latency"
    # optimized: the share of requests sent to a target other than the best, so that every target's
    # figures stay current.
    explore: float = Field(0.05, ge=0, le=1)
    # conditional: the first route whose conditions hold gives the targets; else ``targets`` do.
    routes: list[RouteSettings] = Field(default_factory=list)
    # Fields given here override the top-level ``retry``.
    retry: RetrySettings | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _strategy_fields(self) -> VirtualModelSettings:
        if self.strategy == "percentage":
            if self.weights is None:
                raise ValueError("weights: the percentage strategy needs one weight per target")
            if len(self.weights) != len(self.targets):
                raise ValueError(f"weights: {len(self.weights)} weights for {len(self.targets)} targets")
            if not sum(self.weights) > 0:
                raise ValueError("weights: at least one weight must be above 0")
        elif self.weights is not None:
            raise ValueError(f"weights: only the percentage strategy has weights, not {self.strategy}")
        if self.strategy == "conditional" and not self.routes:
            raise ValueError("routes: the conditional strategy needs at least one route")
        if self.strategy != "conditional" and self.routes:
            raise ValueError(f"routes: only the conditional strategy has routes, not {self.strategy}")
        return self

    def all_targets(self) -> list[tuple[str, TargetSettings]]:
        """Every target with where it is written (``targets[1]``, ``routes[0].targets[0]``)."""
        out = [(f"targets[{i}]", target) for i, target in enumerate(self.targets)]
        for r, route in enumerate(self.routes):
            out += [(f"routes[{r}].targets[{i}]", target) for i, target in enumerate(route.targets)]
        return out

    def retry_over(self, defaults: RetrySettings) -> RetrySettings:
        """The retry settings of this model: its own fields over ``defaults``."""
        if self.retry is None:
            return defaults
        return defaults.model_copy(update={key: getattr(self.retry, key) for key in self.retry.model_fields_set})


class Settings(_Model):
    """The whole configuration. Build it in code or load it with :func:`load_settings`."""

    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    projects: list[ProjectSettings] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    # Bare model names ("gpt-4o") are routed to this provider.
    default_provider: str | None = None
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    server: ServerSettings = Field(default_factory=ServerSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    # The ledger's database: sqlite:///relaygate.db (the embedded default) or postgresql://user@host:5432/name;
    # null turns the ledger (costs, threads, analytics) off.
    database: str | None = "sqlite:///relaygate.db"
    # Prices over the shipped catalogue, USD per 1M tokens: {"provider/model": {input, output, cached_input, ...}};
    # "provider" is a provider's name or a kind (openai, anthropic, gemini).
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # Where limit counters live: absent means in-process; redis://host:6379/0 shares them between gateways
    # (and the per-target figures of the optimized routing strategy).
    counters: str | None = None
    # Guards by id; projects name their default ones, requests add theirs with extra.guards.
    guards: dict[str, GuardSettings] = Field(default_factory=dict)
    guard_options: GuardOptions = Field(default_factory=GuardOptions)
    # Virtual models: a name clients ask for (``smart`` or ``router/smart``) routed to provider models.
    models: dict[str, VirtualModelSettings] = Field(default_factory=dict)
    # Retries of every request; a virtual model may override fields of it.
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, providers: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
        for name in providers:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"provider name {name!r} may hold only letters, digits, '_', '.' and '-'")
        return providers

    @field_validator("database")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("database must be sqlite:///path/to/file.db or postgresql://user@host:5432/name")
        return url

    @field_validator("counters")
    @classmethod
    def _counters_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://")):
            raise ValueError(
                "counters must be redis://host:6379/0 or rediss://...; leave it out for in-process counters"
            )
        return url

    @field_validator("prices")
    @classmethod
    def _price_keys(cls, prices: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        for key in prices:
            parse_price_key(key)
        return prices

    @field_validator("guards")
    @classmethod
    def _guard_ids(cls, guards: dict[str, GuardSettings]) -> dict[str, GuardSettings]:
        for guard_id in guards:
            if not re.match(NAME_PATTERN, guard_id):
                raise ValueError(f"guard id {guard_id!r} may hold only letters, digits, '_', '.' and '-'")
        return guards

    @field_validator("projects")
    @classmethod
    def _unique_projects(cls, projects: list[ProjectSettings]) -> list[ProjectSettings]:
        seen: set[str] = set()
        for project in projects:
            if project.id in seen:
                raise ValueError(f"project id {project.id!r} appears twice")
            seen.add(project.id)
        return projects

    @model_validator(mode="after")
    def _limits_are_usable(self) -> Settings:
        for project in self.projects:
            limits = project.limits
            if limits is None:
                continue
            if limits.has_usd and self.database is None:
                raise ValueError(
                    f"projects.{project.id}.limits: USD budgets need the ledger (they price calls and reload spend "
                    "from it at start); set database:"
                )
            for name in limits.models:
                provider = name.split("/", 1)[0]
                if name != DEFAULT and provider not in self.providers and provider != "mock":
                    raise ValueError(f"projects.{project.id}.limits.models: no provider {provider!r} for {name!r}")
        return self

    @model_validator(mode="after")
    def _default_provider_exists(self) -> Settings:
        if self.default_provider and self.default_provider not in self.providers and self.default_provider != "mock":
            raise ValueError(f"default_provider {self.default_provider!r} is not among the providers")
        return self

    @model_validator(mode="after")
    def _project_guards_exist(self) -> Settings:
        for project in self.projects:
            unknown = [guard_id for guard_id in project.guards if guard_id not in self.guards]
            if unknown:
                raise ValueError(
                    f"project {project.id!r} names guards that are not defined under guards: {', '.join(unknown)}"
                )
        return self

    @model_validator(mode="after")
    def _virtual_models_route_to_providers(self) -> Settings:
        if ROUTER_PREFIX in self.providers:
            raise ValueError(f"providers.{ROUTER_PREFIX}: the name is reserved for virtual models (router/<name>)")
        problems = []
        for name, model in self.models.items():
            if not re.match(NAME_PATTERN, name) or name == DYNAMIC_MODEL:
                problems.append(
                    f"models.{name}: a virtual model's name holds only letters, digits, '_', '.' and '-', "
                    f"and is not {DYNAMIC_MODEL!r}"
                )
            for where, target in model.all_targets():
                problem = self.target_problem(target.model)
                if problem:
                    problems.append(f"models.{name}.{where}: {problem}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def target_problem(self, target: str) -> str | None:
        """Why ``target`` (``provider/model``) cannot be routed with these settings, or ``None``."""
        if target in self.models:
            return f"{target!r} is a virtual model; targets name provider/model"
        provider_name, slash, model = target.partition("/")
        if not slash:
            if self.default_provider is None:
                return f"{target!r} is not provider/model"
            provider_name, model = self.default_provider, target
        known = sorted({*self.providers, "mock"})
        if provider_name not in known or not model:
            return f"unknown provider {provider_name!r} in {target!r}; the providers are: {', '.join(known)}"
        provider = self.providers.get(provider_name)
        if provider is not None and provider.models is not None and model not in provider.models:
            return f"provider {provider_name!r} does not serve {model!r} (its models: {', '.join(provider.models)})"
        return None


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
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(f"{where}: {line}" for line in _describe(exc))) from None


def set_config_path(path: str | os.PathLike[str]) -> None:
    """Make ``path`` the config file of processes started from here (``serve --workers``)."""
    os.environ[CONFIG_ENV_VAR] = str(Path(path).resolve())


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
    providers = data.get("providers")
    if providers is None:
        providers = data["providers"] = {}
    if not isinstance(providers, dict):
        return  # validation reports it
    for name, (variable, kind, base_url) in ENV_PROVIDERS.items():
        if name in providers or not env.get(variable):
            continue
        providers[name] = {"kind": kind, "base_url": base_url, "api_key": env[variable]}


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
