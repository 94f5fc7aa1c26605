"""Who a call's limits belong to (the project, its key, its user, its model) and what each charges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from relaygate.context import RequestContext, Route
from relaygate.counters import Charge
from relaygate.limits.config import DEFAULT, LimitSet, ModelLimits, ProjectLimits
from relaygate.limits.estimate import DEFAULT_MAX_OUTPUT_TOKENS
from relaygate.limits.periods import Period
from relaygate.store import SpendKind, SpendScope

__all__ = ["MINUTE", "Item", "Scope", "applicable", "output_cap", "user_id"]

UNITS = {"requests_per_minute": "requests", "tokens_per_minute": "tokens", "tool_calls_per_minute": "tool_calls"}
# Rates are per minute; their counters drain limit/60 a second and are empty a minute after their last use.
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Scope:
    """Who a limit belongs to: the project, or one of its keys, users or models."""

    kind: SpendKind
    id: str
    project_id: str
    provider: str | None = None
    model: str | None = None

    @property
    def label(self) -> str:
        if self.kind == SpendKind.PROJECT:
            return f"project {self.project_id}"
        return f"{self.kind.value} {self.id} of project {self.project_id}"

    @property
    def key(self) -> str:
        project = quote(self.project_id, safe="")
        if self.kind == SpendKind.PROJECT:
            return f"{project}:project"
        return f"{project}:{self.kind.value}:{quote(self.id, safe='')}"

    def spend_scope(self) -> SpendScope:
        if self.kind == SpendKind.PROJECT:
            return SpendScope(SpendKind.PROJECT, self.project_id)
        if self.kind == SpendKind.MODEL:
            return SpendScope(SpendKind.MODEL, self.model or self.id, self.project_id, provider=self.provider)
        return SpendScope(self.kind, self.id, self.project_id)


@dataclass(frozen=True, slots=True)
class Item:
    """One limit on one call: what it is, and what the call charges to its counter."""

    scope: Scope
    name: str
    value: int | Decimal
    charge: Charge
    period: Period | None = None

    @property
    def unit(self) -> str:
        return UNITS.get(self.name, "usd")


def applicable(
    limits: ProjectLimits, ctx: RequestContext, body: dict[str, Any], routes: Sequence[Route]
) -> list[tuple[Scope, LimitSet]]:
    """The limits of a call that may be served by any of ``routes``: the project's, its key's and its user's,
    and the model limits of each of those models (see :class:`~relaygate.limits.limiter.Limiter`)."""
    project = ctx.project_id or ""
    found: list[tuple[Scope, LimitSet | None]] = [(Scope(SpendKind.PROJECT, project, project), limits)]
    if ctx.key is not None:
        found.append((Scope(SpendKind.KEY, ctx.key.id, project), limits.keys.get(ctx.key.id, limits.keys.get(DEFAULT))))
    user = user_id(body)
    if user is not None:
        found.append((Scope(SpendKind.USER, user, project), limits.users.get(user, limits.users.get(DEFAULT))))
    models: dict[str, Route] = {f"{route.provider.name}/{route.model}": route for route in routes}
    for model_name, route in models.items():
        model_limits = limits.models.get(model_name, limits.models.get(DEFAULT))
        scope = Scope(SpendKind.MODEL, model_name, project, provider=route.provider.name, model=route.model)
        found.append((scope, model_limits))
    return [(scope, limit_set) for scope, limit_set in found if limit_set is not None and not limit_set.empty]


def user_id(body: dict[str, Any]) -> str | None:
    """The ``extra.user.id`` of a request, when it names one."""
    extra = body.get("extra")
    user = extra.get("user") if isinstance(extra, dict) else None
    found = user.get("id") if isinstance(user, dict) else None
    return found if isinstance(found, str) and found else None


def output_cap(limits: ProjectLimits, route: Route, listed: int | None = None) -> int:
    """Output tokens assumed for a chat request that sets no max_tokens.

    ``listed`` is the model's cap from its price (:meth:`~relaygate.pricing.PriceBook.output_cap`). The
    project's own ``max_output_tokens`` stands in for it only for models no price describes: a blanket
    figure below a known model's cap would let that model's calls pass a budget by the difference.
    """
    provider = route.provider
    if provider.kind == "anthropic":
        return provider.settings.default_max_tokens  # what the adapter sends in that case
    model: ModelLimits | None = limits.models.get(f"{provider.name}/{route.model}", limits.models.get(DEFAULT))
    if model is not None and model.max_output_tokens is not None:
        return model.max_output_tokens
    return listed or limits.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
