"""Routing: retries, the circuit breaker and virtual models with their targets and routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from relaygate.settings.base import SettingsModel

__all__ = [
    "DYNAMIC_MODEL",
    "FIXED_FIELDS",
    "ROUTER_PREFIX",
    "BreakerSettings",
    "Metric",
    "RetrySettings",
    "RouteSettings",
    "Strategy",
    "Target",
    "TargetSettings",
    "VirtualModelSettings",
]

Strategy = Literal["fallback", "percentage", "random", "optimized", "conditional"]
Metric = Literal["latency", "ttft", "error_rate", "cost"]
# Request fields a target may not override: the conversation itself, the stream switch, the gateway's own.
FIXED_FIELDS = frozenset({"model", "messages", "input", "prompt", "stream", "extra", "router", "mcp_servers"})
# `router/<name>` addresses a virtual model; `router/dynamic` is the request's own `router` object.
ROUTER_PREFIX = "router"
DYNAMIC_MODEL = "dynamic"


class RetrySettings(SettingsModel):
    """How a request is retried and sent on to its next target (see docs/guides/routing.md).

    An attempt that fails with 429, 408, 409, a 5xx, a timeout or a refused connection is followed by
    another, on the next target that is not cooling down, or on the same target after a backoff. Every
    target of a virtual model gets at least one attempt: ``max_attempts`` counts the attempts of each
    target, never of the whole request, so listing a fallback always means it is tried.
    """

    # Upstream calls per target (each target of a virtual model gets as many): 3 gives a plain
    # provider/model two retries, and a virtual model of four targets up to twelve calls in all, each
    # target reached at least once, in order, before any is retried. The deadline bounds them all.
    max_attempts: int = Field(3, ge=1, le=10)
    # Seconds from the first attempt; no attempt starts, and no wait is begun, that would end after it,
    # and an attempt still running when it passes (a stream: before its first chunk) is cut off there:
    # the client gets a 504 deadline_exceeded (or, when every target tried was rate limited, their 429).
    deadline: float = Field(60.0, gt=0, le=3600)
    # The first wait before a target is tried again; it doubles on each failure of that target, up to
    # max_backoff, and is jittered (half of it fixed, half random) so that clients do not retry in step.
    backoff: float = Field(0.25, ge=0, le=60)
    # The longest wait before a target is tried again.
    max_backoff: float = Field(8.0, ge=0, le=300)
    # A provider's Retry-After is waited for up to this many seconds; a longer one takes the target out
    # of this request. When every target tried is rate limited, the client gets a 429 at once, with the
    # soonest Retry-After of them counted from now, so that its SDK's own retry waits just that long.
    # Rate limits (429) never open a target's circuit breaker: they say "later", not "failing".
    max_retry_after: float = Field(5.0, ge=0, le=3600)


class BreakerSettings(SettingsModel):
    """The circuit breaker of every target (provider/model), shared by all requests of a process."""

    # Whether failing targets are skipped for a while.
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

    # The target: provider/model.
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


class RouteSettings(SettingsModel):
    """One route of a ``conditional`` virtual model: its targets, when every condition holds."""

    # Conditions that must all hold: user.<field>, header.<name>, param.<name> or project, each to a value, a list
    # (one of) or an operator object (eq, ne, in, not_in, gt, gte, lt, lte, contains, exists).
    when: dict[str, Any]
    # The targets when the route matches, tried in order.
    targets: list[Target] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _conditions(cls, when: dict[str, Any]) -> dict[str, Any]:
        # Imported here: relaygate.routing imports this module.
        from relaygate.routing.conditions import parse_when

        parse_when(when)
        return when


class VirtualModelSettings(SettingsModel):
    """A model name that routes to provider models by a strategy, with fallbacks and retries."""

    # How the targets are ordered: the first is tried first, the others are its fallbacks.
    strategy: Strategy = "fallback"
    # provider/model names, or objects with model and request parameters to set.
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
    # Shown in GET /v1/models.
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
