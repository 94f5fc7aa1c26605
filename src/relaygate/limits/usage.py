"""What a project's limits stand at now: for each rate limit and budget, what is used and what is left.

Read from the same counters the :class:`~relaygate.limits.limiter.Limiter` reserves on, under the same keys,
so the figures are the ones the next call will be admitted against. A budget whose counter is not loaded yet
(no call in its period since the gateway started) is read from the ledger, as the limiter would load it. A
``default`` entry (each key, user or model without an entry of its own) is listed once, without usage: it is
counted for each of them apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from relaygate.limits.config import DEFAULT, LIMIT_NAMES, TOOL_LIMIT, USD_LIMITS, LimitSet, ProjectLimits
from relaygate.limits.limiter import Limiter
from relaygate.limits.periods import period_of
from relaygate.limits.scopes import MINUTE, Scope
from relaygate.store import SpendKind

__all__ = ["LimitUse", "limit_usage"]

_NANOS = Decimal(1_000_000_000)
UNITS = {"requests_per_minute": "requests", "tokens_per_minute": "tokens", TOOL_LIMIT: "tool_calls"}


@dataclass(frozen=True, slots=True)
class LimitUse:
    """One limit of one scope: ``used`` of ``limit`` (``None``: a default entry, counted per member)."""

    kind: SpendKind
    id: str
    name: str
    limit: Decimal
    used: Decimal | None
    period: str  # "minute" for rates, the budget's period label (2025-06-01, 2025-06, total)
    resets_in: float | None  # seconds until a budget's period ends; None for rates and usd_total

    @property
    def unit(self) -> str:
        return UNITS.get(self.name, "usd")

    @property
    def left(self) -> Decimal | None:
        return None if self.used is None else max(Decimal(0), self.limit - self.used)

    @property
    def share(self) -> float | None:
        """Used as a share of the limit, 0 to 1."""
        if self.used is None or not self.limit:
            return None
        return min(1.0, float(self.used / self.limit))


def _scopes(project_id: str, limits: ProjectLimits, key_ids: Iterable[str]) -> list[tuple[Scope | None, LimitSet]]:
    found: list[tuple[Scope | None, LimitSet]] = [(Scope(SpendKind.PROJECT, project_id, project_id), limits)]
    for key_id in dict.fromkeys(key_ids):
        limit_set = limits.keys.get(key_id, limits.keys.get(DEFAULT))
        if limit_set is not None:
            found.append((Scope(SpendKind.KEY, key_id, project_id), limit_set))
    for user, limit_set in limits.users.items():
        found.append((Scope(SpendKind.USER, user, project_id) if user != DEFAULT else None, limit_set))
    for name, model_limits in limits.models.items():
        if name == DEFAULT:
            found.append((None, model_limits))
            continue
        provider, _, model = name.partition("/")
        found.append((Scope(SpendKind.MODEL, name, project_id, provider=provider, model=model), model_limits))
    return found


async def limit_usage(
    limiter: Limiter, project_id: str, key_ids: Sequence[str] = (), *, now: float | None = None
) -> list[LimitUse]:
    """Every limit of ``project_id`` (its own, those of ``key_ids``, its users' and models'), with its usage."""
    limits = limiter.projects.get(project_id)
    if limits is None:
        return []
    now = limiter.clock() if now is None else now
    out: list[LimitUse] = []
    defaults = {SpendKind.USER: limits.users.get(DEFAULT), SpendKind.MODEL: limits.models.get(DEFAULT)}
    for scope, limit_set in _scopes(project_id, limits, key_ids):
        kind = scope.kind if scope is not None else next(k for k, v in defaults.items() if v is limit_set)
        ident = scope.id if scope is not None else DEFAULT
        for name in (*LIMIT_NAMES, TOOL_LIMIT):
            value = getattr(limit_set, name)
            if value is None:
                continue
            used = None if scope is None else await _used(limiter, scope, name, Decimal(value), now)
            if name in USD_LIMITS:
                period = period_of(name, now)
                resets = None if period.endless else max(period.end.timestamp() - now, 0.0)
                out.append(LimitUse(kind, ident, name, Decimal(value), used, period.label, resets))
            else:
                out.append(LimitUse(kind, ident, name, Decimal(value), used, "minute", None))
    return out


async def _used(limiter: Limiter, scope: Scope, name: str, value: Decimal, now: float) -> Decimal:
    base = f"{limiter.prefix}:{scope.key}:{name}"
    if name not in USD_LIMITS:
        level = await limiter.counters.level(base, float(value) / MINUTE, now)
        return Decimal(round(level or 0.0, 3))
    period = period_of(name, now)
    level = await limiter.counters.level(f"{base}:{period.label}", 0.0, now)
    if level is None and limiter.ledger is not None:
        level = await limiter.ledger.store.spend(scope.spend_scope(), period.start, period.end)
    return Decimal(round(level or 0.0)) / _NANOS
