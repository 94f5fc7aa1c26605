"""The whole configuration: :class:`Settings`, and the checks that span its parts."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from relaygate.limits.config import DEFAULT
from relaygate.pricing.models import ModelPrice, parse_price_key
from relaygate.settings.base import NAME_PATTERN, SettingsModel
from relaygate.settings.guards import GuardOptions, GuardSettings
from relaygate.settings.mcp import McpServerSettings, McpSettings
from relaygate.settings.presets import configured_name, preset
from relaygate.settings.projects import ProjectSettings
from relaygate.settings.providers import ProviderSettings
from relaygate.settings.routing import (
    DYNAMIC_MODEL,
    ROUTER_PREFIX,
    BreakerSettings,
    RetrySettings,
    VirtualModelSettings,
)
from relaygate.settings.scripts import ENGINE_MISSING, ScriptLimits, ScriptRouterSettings
from relaygate.settings.service import ServerSettings, TelemetrySettings
from relaygate.settings.ui import UiSettings

__all__ = ["Settings"]


class Settings(SettingsModel):
    """The whole configuration. Build it in code or load it with :func:`load_settings`."""

    # Upstream providers by name; the name is the model prefix (`upstream/gpt-4o`). The mock provider is always
    # there, and OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY add openai, anthropic, gemini.
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    # Projects and their API keys. With none, every request is accepted into project `default`.
    projects: list[ProjectSettings] = Field(default_factory=list)
    # The X-Admin-Key of the admin routes (/admin/..., /projects/{id}/custom_prices); without one they are off.
    admin_key: SecretStr | None = None
    # Bare model names ("gpt-4o") are routed to this provider.
    default_provider: str | None = None
    # Request bodies larger than this get a 413.
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    # How `relaygate serve` runs; its command-line flags override these.
    server: ServerSettings = Field(default_factory=ServerSettings)
    # OpenTelemetry traces and metrics; the standard OTEL_* variables override these.
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
    # How guards answer a violation and how much of a stream they may hold.
    guard_options: GuardOptions = Field(default_factory=GuardOptions)
    # Virtual models: a name clients ask for (``smart`` or ``router/smart``) routed to provider models.
    models: dict[str, VirtualModelSettings] = Field(default_factory=dict)
    # Model names clients send (Claude Code's ``claude-sonnet-4-5``) -> what the gateway routes them to: a
    # provider/model, a virtual model, or a bare name for default_provider. A name also stands for its dated
    # snapshots (``claude-sonnet-4-5-20250929``); one ending in ``*`` for every name it starts (``claude-*``,
    # ``*``), the longest winning. See relaygate.routing.aliases.
    model_aliases: dict[str, str] = Field(default_factory=dict)
    # Named script routers, which a request's router object names: {"router": {"name": "kg_random_router"}}.
    routers: dict[str, ScriptRouterSettings] = Field(default_factory=dict)
    # The time and memory limits of every script router, and what a failing one gets (see docs/guides/routing.md).
    router_scripts: ScriptLimits = Field(default_factory=ScriptLimits)
    # GET /models and GET /pricing (at the root and under /v1) answer without a key: the gateway's whole
    # catalogue, with no project's registered models or custom prices. A key still gets its project's view.
    public_catalogue: bool = False
    # Retries of every request; a virtual model may override fields of it.
    retry: RetrySettings = Field(default_factory=RetrySettings)
    # The circuit breaker of every target (provider/model).
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    # The dashboard at /ui.
    ui: UiSettings = Field(default_factory=UiSettings)
    # MCP servers by name: requests name them in mcp_servers to give their tools to the model (the gateway
    # runs the tool loop), and MCP clients reach them at /mcp/<name>.
    mcp_servers: dict[str, McpServerSettings] = Field(default_factory=dict)
    # How the tool loop runs: its iterations, tool timeout and the hosts a request's own server_url may name.
    mcp: McpSettings = Field(default_factory=McpSettings)

    @field_validator("providers", mode="before")
    @classmethod
    def _presets_fill_in(cls, providers: Any) -> Any:
        # An entry named after a preset (together, openrouter, ...) may leave out what the preset knows.
        if not isinstance(providers, dict):
            return providers
        out = dict(providers)
        for name, entry in providers.items():
            known = preset(name) if isinstance(name, str) else None
            if known is None or not isinstance(entry, dict):
                continue
            kind = entry.get("kind", known.kind)
            filled = {"kind": kind, **entry}
            if kind == known.kind:
                filled.setdefault("base_url", known.base_url)
                if known.images_api is not None:
                    filled.setdefault("images_api", known.images_api)
            out[name] = filled
        return out

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

    @field_validator("mcp_servers")
    @classmethod
    def _mcp_server_names(cls, servers: dict[str, McpServerSettings]) -> dict[str, McpServerSettings]:
        for name in servers:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"MCP server name {name!r} may hold only letters, digits, '_', '.' and '-'")
        return servers

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
    def _mcp_projects_exist(self) -> Settings:
        known = {project.id for project in self.projects}
        for name, server in self.mcp_servers.items():
            unknown = [project for project in server.projects or () if known and project not in known]
            if unknown:
                raise ValueError(f"mcp_servers.{name}.projects: no such project: {', '.join(unknown)}")
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

    @field_validator("routers")
    @classmethod
    def _router_names(cls, routers: dict[str, ScriptRouterSettings]) -> dict[str, ScriptRouterSettings]:
        for name in routers:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"router name {name!r} may hold only letters, digits, '_', '.' and '-'")
        if routers and importlib.util.find_spec("py_mini_racer") is None:
            # A named router that could never run is a failed start, not a 400 on each request.
            raise ValueError(ENGINE_MISSING)
        return routers

    @model_validator(mode="after")
    def _aliases_route_somewhere(self) -> Settings:
        problems = []
        for name, target in self.model_aliases.items():
            if not name or not name.isprintable() or "*" in name[:-1]:
                problems.append(f"model_aliases.{name}: a name is printable, and holds '*' only at its end")
                continue
            _, slash, virtual = target.partition("/")
            if target in self.models or (slash and target.startswith(ROUTER_PREFIX + "/") and virtual in self.models):
                continue
            problem = self.target_problem(target)
            if problem:
                problems.append(f"model_aliases.{name}: {problem}")
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
        provider_name = configured_name(provider_name, known) or provider_name
        if provider_name not in known or not model:
            return f"unknown provider {provider_name!r} in {target!r}; the providers are: {', '.join(known)}"
        provider = self.providers.get(provider_name)
        if provider is not None and provider.models is not None and model not in provider.models:
            return f"provider {provider_name!r} does not serve {model!r} (its models: {', '.join(provider.models)})"
        return None
