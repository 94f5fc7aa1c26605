"""Which counters a call reserves, worked out once for each project, key, user and set of models.

Every call of a limited project asks which of its limits apply (:func:`~relaygate.limits.scopes.applicable`)
and builds each one's counter key (the project, key, user and model quoted into it). The answer depends only
on the project's limits, the call's key, its user, the models it may reach and whether it is paid with the
caller's own key, so :class:`Plans` keeps it: a :class:`Plan` lists each limit with its counter key, its limit
in counter units and its rate, and what the call charges then depends only on its worst case and, for
budgets, the period it starts in (:meth:`Plan.items`).

A plan holds the :class:`~relaygate.limits.config.ProjectLimits` it was made from and is used only while the
limiter's limits of that project are that same object: limits replaced (the limiter's ``projects`` set again,
or one project's entry) make new plans. The cache is bounded, as user ids come from requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from relaygate.context import RequestContext, Route
from relaygate.counters import Charge
from relaygate.limits.config import USD_LIMITS, LimitSet, ProjectLimits
from relaygate.limits.periods import period_of
from relaygate.limits.scopes import MINUTE, Item, Scope, applicable, user_id
from relaygate.limits.worst import WorstCase
from relaygate.store import SpendKind

__all__ = ["PLAN_CACHE_SIZE", "Plan", "Planned", "Plans"]

PLAN_CACHE_SIZE = 4096

_NANOS = Decimal(1_000_000_000)
_RATE_TTL = MINUTE + 1
_RATES = ("requests_per_minute", "tokens_per_minute")

# (project id, key id, user id, caller's key ignored by the budgets, (provider name, model) of each target)
PlanKey = tuple[str, str | None, str | None, bool, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Planned:
    """One limit of one scope: its counter key (a budget's takes its period's label after it), its limit in
    counter units (requests, tokens, nano-dollars) and its rate (0 for a budget)."""

    scope: Scope
    name: str
    value: int | Decimal
    key: str
    limit: int
    rate: float
    model: bool  # a model's own limit: charged what the call costs on that model
    # A requests_per_minute item is the same on every call: made once.
    fixed: Item | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    limits: ProjectLimits
    planned: tuple[Planned, ...]
    budgeted: bool
    rated: bool  # a limit other than requests_per_minute (a stream is tallied for those)

    def items(self, worst: WorstCase, now: float, started: float, *, loaded: bool) -> list[Item]:
        """What the call with ``worst`` charges on each limit; budgets in the periods of ``started``."""
        items: list[Item] = []
        tokens = nanos = -1
        for planned in self.planned:
            if planned.fixed is not None:
                items.append(planned.fixed)
                continue
            if planned.model:
                case = worst.targets[planned.scope.id]
                amount_tokens, amount_nanos = case.tokens, worst.nanos_on(case)
            else:
                if tokens < 0:
                    tokens, nanos = worst.tokens, worst.nanos
                amount_tokens, amount_nanos = tokens, nanos
            if planned.rate:
                charge = Charge(planned.key, amount_tokens, planned.limit, rate=planned.rate, ttl=_RATE_TTL)
                items.append(Item(planned.scope, planned.name, planned.value, charge))
            else:
                period = period_of(planned.name, started)
                charge = Charge(
                    f"{planned.key}:{period.label}", amount_nanos, planned.limit, ttl=period.ttl(now), loaded=loaded
                )
                items.append(Item(planned.scope, planned.name, planned.value, charge, period))
        return items


class Plans:
    """The plans of a limiter's calls, by what they depend on; see the module docstring."""

    def __init__(self, prefix: str, size: int = PLAN_CACHE_SIZE) -> None:
        self.prefix = prefix
        self.size = size
        self._plans: dict[PlanKey, Plan] = {}

    def clear(self) -> None:
        self._plans = {}

    def __len__(self) -> int:
        return len(self._plans)

    def plan(
        self, limits: ProjectLimits, ctx: RequestContext, body: dict[str, Any], routes: Sequence[Route]
    ) -> Plan | None:
        """The plan of a call to ``routes``; ``None`` when no limit of model calls applies to it."""
        key = ctx.key
        ignored = ctx.caller_key is not None and limits.byok_calls == "ignore"
        cache_key: PlanKey = (
            ctx.project_id or "",
            key.id if key is not None else None,
            user_id(body),
            ignored,
            tuple((route.provider.name, route.model) for route in routes),
        )
        plan = self._plans.get(cache_key)
        if plan is None or plan.limits is not limits:
            plan = self._make(limits, ctx, body, routes, ignored=ignored)
            if len(self._plans) >= self.size:
                self._plans = {}
            self._plans[cache_key] = plan
        return plan if plan.planned else None

    def _make(
        self,
        limits: ProjectLimits,
        ctx: RequestContext,
        body: dict[str, Any],
        routes: Sequence[Route],
        *,
        ignored: bool,
    ) -> Plan:
        scoped = applicable(limits, ctx, body, routes)
        if ignored:
            # The caller's own key pays: the budgets are not the gateway's to hold; the rates still are.
            scoped = [(scope, _rates_only(limit_set)) for scope, limit_set in scoped]
            scoped = [(scope, limit_set) for scope, limit_set in scoped if not limit_set.empty]
        planned: list[Planned] = []
        for scope, limit_set in scoped:
            base = f"{self.prefix}:{scope.key}"
            model = scope.kind == SpendKind.MODEL
            for name in _RATES:
                value = getattr(limit_set, name)
                if value is not None:
                    key, rate = f"{base}:{name}", value / MINUTE
                    fixed = None
                    if name == "requests_per_minute":
                        fixed = Item(scope, name, value, Charge(key, 1, value, rate=rate, ttl=_RATE_TTL))
                    planned.append(Planned(scope, name, value, key, value, rate, model, fixed))
            for name in USD_LIMITS:
                usd = getattr(limit_set, name)
                if usd is not None:
                    planned.append(Planned(scope, name, usd, f"{base}:{name}", int(usd * _NANOS), 0.0, model))
        budgeted = any(limit_set.has_usd for _, limit_set in scoped)
        rated = any(item.name != "requests_per_minute" for item in planned)
        return Plan(limits, tuple(planned), budgeted, rated)


def _rates_only(limits: LimitSet) -> LimitSet:
    """``limits`` without its budgets."""
    return limits.model_copy(update=dict.fromkeys(USD_LIMITS))
