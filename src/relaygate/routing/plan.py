"""What routing decides: the targets of a request, in the order to try them, and how to retry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relaygate.context import Route
from relaygate.routing.conditions import Test
from relaygate.settings import Metric, RetrySettings, Strategy

__all__ = ["Plan", "Target", "VirtualModel"]


@dataclass(frozen=True, slots=True)
class Target:
    """A provider model to call, and the request parameters it sets (``None`` removes a parameter)."""

    route: Route
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``provider/model``: the name its breaker and figures are kept under."""
        return f"{self.route.provider.name}/{self.route.model}"

    def body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request body as this target gets it."""
        if not self.overrides:
            return body
        out = dict(body)
        for key, value in self.overrides.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    """One request's targets, best first, and the retry settings that bound the attempts."""

    targets: tuple[Target, ...]
    retry: RetrySettings


@dataclass(frozen=True, slots=True)
class VirtualModel:
    """A virtual model with its targets resolved to providers, ready to order per request."""

    name: str
    strategy: Strategy
    targets: tuple[Target, ...]
    retry: RetrySettings
    weights: tuple[float, ...] = ()
    metric: Metric = "latency"
    explore: float = 0.0
    # conditional: (conditions, targets) in the order they are tried.
    routes: tuple[tuple[tuple[Test, ...], tuple[Target, ...]], ...] = ()
    description: str | None = None

    def all_targets(self) -> tuple[Target, ...]:
        """Every target the model may call: its targets, then its routes' ones (a model may appear twice)."""
        return (*self.targets, *(target for _, targets in self.routes for target in targets))

    def target_keys(self) -> list[str]:
        """Every ``provider/model`` the model may call, once each: its targets, then its routes' ones."""
        return list(dict.fromkeys(target.key for target in self.all_targets()))
