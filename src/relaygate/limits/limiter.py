"""The :class:`Limiter`: which limits a call falls under, its reservation against the counters, its settlement.

Per call, :meth:`Limiter.admit` finds the limits that apply (the project's, its key's, its user's, its
model's), estimates the call's worst case (:mod:`relaygate.limits.estimate`) and reserves it on every
counter at once: one request on each ``requests_per_minute``, the estimated tokens on each
``tokens_per_minute``, the worst-case cost in nano-dollars on each budget. If any limit would be passed,
nothing is reserved and the call is refused. :meth:`Limiter.settle` then moves the counters from the
reservation to what the call really used: the ledger's cost and the usage; a stream cut short without
usage, an estimate from what it streamed; a failed call, nothing.

A budget's counter is keyed by its period (``usd_per_day:2025-06-01``). When it is absent (the gateway
started, a new period began, or it expired) the spend of that period is read from the ledger and set
only if still absent, so several gateways loading the same budget count it once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio

from relaygate.context import RequestContext, Route
from relaygate.counters import Adjustment, Charge, Counters
from relaygate.errors import (
    GatewayError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
)
from relaygate.limits.config import DEFAULT, USD_LIMITS, LimitSet, ModelLimits, ProjectLimits
from relaygate.limits.estimate import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    Estimate,
    StreamTally,
    estimate,
    images_cost,
    token_cost,
)
from relaygate.limits.periods import Period, period_of
from relaygate.pricing import ModelPrice
from relaygate.routing import ModelRouter
from relaygate.store import SpendKind, SpendScope, usd_to_nanos

if TYPE_CHECKING:
    from relaygate.ledger import Ledger

__all__ = ["Admission", "Limiter"]

logger = logging.getLogger("relaygate.limits")

Headers = list[tuple[bytes, bytes]]

_NANOS = Decimal(1_000_000_000)
# Rates are per minute; their counters drain limit/60 a second and are empty a minute after their last use.
_MINUTE = 60.0
# A budget counter absent again right after it was loaded (it expired between two steps): give up then.
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class _Scope:
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
class _Item:
    """One limit on one call: what it is, and what the call charges to its counter."""

    scope: _Scope
    name: str
    value: int | Decimal
    charge: Charge
    period: Period | None = None

    @property
    def unit(self) -> str:
        return {"requests_per_minute": "requests", "tokens_per_minute": "tokens"}.get(self.name, "usd")


@dataclass(slots=True)
class Admission:
    """A call let through: what it reserved, to be settled when it ends; the rate headers for its answer."""

    items: list[_Item]
    estimate: Estimate
    price: ModelPrice | None
    tally: StreamTally | None = None
    headers: Headers = field(default_factory=list)


class Limiter:
    """Reserves and settles calls against the limits of ``projects``; see the module docstring.

    ``ledger`` prices the calls and holds the spend that budgets load; without it there can be no budgets
    (the settings refuse them), only rates. ``clock`` gives seconds since the epoch (tests move it).
    """

    def __init__(
        self,
        *,
        projects: Mapping[str, ProjectLimits],
        counters: Counters,
        router: ModelRouter,
        ledger: Ledger | None = None,
        prefix: str = "relaygate",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.projects = dict(projects)
        self.counters = counters
        self.router = router
        self.ledger = ledger
        self.prefix = prefix
        self.clock = clock
        # Budget counters being loaded from the ledger by this process: concurrent calls wait for one load.
        self._loading: dict[str, anyio.Event] = {}

    async def start(self) -> None:
        await self.counters.start()

    async def aclose(self) -> None:
        await self.counters.aclose()

    # --- before the call --------------------------------------------------------------------------------

    async def admit(self, ctx: RequestContext, endpoint: str, body: dict[str, Any]) -> Admission | None:
        """Reserve the call's worst case, or raise the refusal; ``None`` when no limit applies to it."""
        limits = self.projects.get(ctx.project_id or "")
        model = body.get("model")
        if limits is None or not isinstance(model, str):
            return None
        try:
            route = self.router.resolve(model)
        except GatewayError:
            return None  # the proxy answers with the error; an unroutable call costs nothing
        scoped = _applicable(limits, ctx, body, route)
        if not scoped:
            return None
        worst = estimate(endpoint, body, _output_cap(limits, route))
        price = None
        nanos = 0
        if any(limit_set.has_usd for _, limit_set in scoped):
            price = self._price(ctx, route)
            cost = images_cost(body, worst.images, price) if endpoint == "images" else None
            if endpoint != "images":
                cost = token_cost(worst.prompt_tokens, worst.output_tokens, price)
            if cost is None:
                raise PermissionDeniedError(
                    f"{route.provider.name}/{route.model} has no price, so its cost cannot be held against the "
                    f"budgets of project {ctx.project_id}. Give it one (prices: in the config, or the project's "
                    "custom prices).",
                    param="model",
                    code="model_not_priced",
                )
            nanos = cost
        tokens = 0 if endpoint == "images" else worst.tokens
        now = self.clock()
        items = [item for scope, limit_set in scoped for item in self._items(scope, limit_set, tokens, nanos, now)]
        try:
            levels = await self._reserve(items, now)
        except GatewayError:
            raise
        except Exception as exc:
            logger.warning("limits: the counters cannot be reached", exc_info=True)
            raise ServiceUnavailableError(
                "Rate limits and budgets cannot be checked right now; try again shortly.", code="limits_unavailable"
            ) from exc
        admission = Admission(items, worst, price, headers=_rate_headers(items, levels, charged=True))
        if body.get("stream") is True and any(item.name != "requests_per_minute" for item in items):
            admission.tally = StreamTally()
            ctx.observers.append(admission.tally)
        return admission

    def _price(self, ctx: RequestContext, route: Route) -> ModelPrice | None:
        if self.ledger is None:
            return None
        return self.ledger.prices.price(
            route.provider.kind, route.model, provider_name=route.provider.name, project_id=ctx.project_id
        )

    def _items(self, scope: _Scope, limits: LimitSet, tokens: int, nanos: int, now: float) -> Iterable[_Item]:
        base = f"{self.prefix}:{scope.key}"
        for name, amount in (("requests_per_minute", 1), ("tokens_per_minute", tokens)):
            value = getattr(limits, name)
            if value is not None:
                charge = Charge(f"{base}:{name}", amount, value, rate=value / _MINUTE, ttl=_MINUTE + 1)
                yield _Item(scope, name, value, charge)
        for name in USD_LIMITS:
            usd = getattr(limits, name)
            if usd is not None:
                period = period_of(name, now)
                charge = Charge(
                    f"{base}:{name}:{period.label}",
                    nanos,
                    int(usd * _NANOS),
                    ttl=period.ttl(now),
                    loaded=self.ledger is not None,
                )
                yield _Item(scope, name, usd, charge, period)

    async def _reserve(self, items: Sequence[_Item], now: float) -> tuple[float, ...]:
        charges = [item.charge for item in items]
        for _ in range(_ATTEMPTS):
            outcome = await self.counters.reserve(charges, now)
            if outcome.admitted:
                return outcome.levels
            if outcome.refused:
                raise _refusal(items, outcome.levels, outcome.refused, now)
            async with anyio.create_task_group() as group:
                for index in outcome.missing:
                    group.start_soon(self._load, items[index], now)
        raise ServiceUnavailableError("Budgets could not be loaded from the ledger.", code="limits_unavailable")

    async def _load(self, item: _Item, now: float) -> None:
        """Start a budget's counter at the spend the ledger holds for its period (unless another did)."""
        key = item.charge.key
        loading = self._loading.get(key)
        if loading is not None:
            await loading.wait()
            return
        loading = self._loading[key] = anyio.Event()
        try:
            assert self.ledger is not None and item.period is not None  # only loaded budgets are missing
            spent = await self.ledger.store.spend(item.scope.spend_scope(), item.period.start, item.period.end)
            await self.counters.load(key, spent, item.charge.ttl, now)
        finally:
            del self._loading[key]
            loading.set()

    # --- after the call ---------------------------------------------------------------------------------

    async def settle(self, admission: Admission, ctx: RequestContext) -> None:
        """Move the counters from the reservation to what the call used; never raises."""
        tokens, nanos = self._used(admission, ctx)
        adjustments = []
        for item in admission.items:
            charge = item.charge
            used = tokens if item.name == "tokens_per_minute" else nanos if item.unit == "usd" else charge.amount
            if used != charge.amount:
                adjustments.append(Adjustment(charge.key, used - charge.amount, rate=charge.rate, ttl=charge.ttl))
        if not adjustments:
            return
        try:
            await self.counters.adjust(adjustments, self.clock())
        except Exception:
            logger.warning("limits: a call's reservation could not be settled", exc_info=True)

    def _used(self, admission: Admission, ctx: RequestContext) -> tuple[int, int]:
        """The tokens and nano-dollars the call used, as far as can be told."""
        reserved_tokens = next((i.charge.amount for i in admission.items if i.name == "tokens_per_minute"), 0)
        reserved_nanos = next((i.charge.amount for i in admission.items if i.unit == "usd"), 0)
        worst = admission.estimate
        tally = admission.tally
        streamed = min(tally.output_tokens, worst.output_tokens) if tally is not None and tally.chunks else None
        succeeded = ctx.status == 200 and ctx.error is None
        usage = ctx.usage
        if usage is not None:
            tokens = usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
        elif streamed is not None:
            tokens = worst.prompt_tokens + streamed
        else:
            tokens = reserved_tokens if succeeded else 0
        cost = ctx.cost_usd
        if cost is None and usage is not None and self.ledger is not None:
            cost = self.ledger.price(ctx)  # a ledger that is not running did not price it
        if cost is not None:
            nanos = usd_to_nanos(cost) or 0
        elif streamed is not None and usage is None:
            nanos = token_cost(worst.prompt_tokens, streamed, admission.price) or reserved_nanos
        else:
            # Unknown: a call that went through keeps its reservation; a failed one cost nothing.
            nanos = reserved_nanos if succeeded or usage is not None else 0
        return tokens, nanos


def _applicable(
    limits: ProjectLimits, ctx: RequestContext, body: dict[str, Any], route: Route
) -> list[tuple[_Scope, LimitSet]]:
    project = ctx.project_id or ""
    model_name = f"{route.provider.name}/{route.model}"
    found: list[tuple[_Scope, LimitSet | None]] = [(_Scope(SpendKind.PROJECT, project, project), limits)]
    if ctx.key is not None:
        found.append(
            (_Scope(SpendKind.KEY, ctx.key.id, project), limits.keys.get(ctx.key.id, limits.keys.get(DEFAULT)))
        )
    user = _user_id(body)
    if user is not None:
        found.append((_Scope(SpendKind.USER, user, project), limits.users.get(user, limits.users.get(DEFAULT))))
    model_limits = limits.models.get(model_name, limits.models.get(DEFAULT))
    found.append(
        (_Scope(SpendKind.MODEL, model_name, project, provider=route.provider.name, model=route.model), model_limits)
    )
    return [(scope, limit_set) for scope, limit_set in found if limit_set is not None and not limit_set.empty]


def _user_id(body: dict[str, Any]) -> str | None:
    extra = body.get("extra")
    user = extra.get("user") if isinstance(extra, dict) else None
    user_id = user.get("id") if isinstance(user, dict) else None
    return user_id if isinstance(user_id, str) and user_id else None


def _output_cap(limits: ProjectLimits, route: Route) -> int:
    """Output tokens assumed for a chat request that sets no max_tokens."""
    provider = route.provider
    if provider.kind == "anthropic":
        return provider.settings.default_max_tokens  # what the adapter sends in that case
    model: ModelLimits | None = limits.models.get(f"{provider.name}/{route.model}", limits.models.get(DEFAULT))
    if model is not None and model.max_output_tokens is not None:
        return model.max_output_tokens
    return limits.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS


def _refusal(items: Sequence[_Item], levels: Sequence[float], refused: Sequence[int], now: float) -> GatewayError:
    """The error for the limit that refused the call: a spent budget first, as waiting a minute will not help."""
    headers = _rate_headers(items, levels, charged=False)
    budgets = [i for i in refused if items[i].unit == "usd"]
    if budgets:
        item = items[budgets[0]]
        assert item.period is not None
        return QuotaExceededError(
            f"{item.scope.label}: {item.name} {_usd(Decimal(item.value))} reached.",
            headers=[*headers, *_retry(item.period.left(now), retry=False)],
        )
    waits = {i: _wait(items[i], levels[i]) for i in refused}
    index = max(waits, key=lambda i: waits[i])
    item = items[index]
    unit = item.unit
    if item.charge.amount > item.charge.limit:
        message = (
            f"{item.scope.label}: the request needs {item.charge.amount} {unit}, more than {item.name} {item.value}."
        )
        return RateLimitError(message, type=unit, headers=[*headers, *_retry(_MINUTE, retry=False)])
    return RateLimitError(
        f"{item.scope.label}: {item.name} {item.value} reached; retry in {_duration(waits[index])}.",
        type=unit,
        headers=[*headers, *_retry(waits[index])],
    )


def _wait(item: _Item, level: float) -> float:
    charge = item.charge
    return max((level + charge.amount - charge.limit) / charge.rate, 0.0) if charge.rate else 0.0


def _retry(seconds: float, *, retry: bool = True) -> Headers:
    headers = [(b"retry-after", str(max(1, math.ceil(seconds))).encode())]
    if not retry:
        # The OpenAI SDKs read this and do not retry a spent budget on their own.
        headers.append((b"x-should-retry", b"false"))
    return headers


def _rate_headers(items: Sequence[_Item], levels: Sequence[float], *, charged: bool) -> Headers:
    """OpenAI's x-ratelimit-* headers, from the tightest requests and tokens limits on the call."""
    headers: Headers = []
    for name, unit in (("requests_per_minute", "requests"), ("tokens_per_minute", "tokens")):
        states = []
        for item, level in zip(items, levels, strict=True):
            if item.name == name:
                charge = item.charge
                after = level + charge.amount if charged else level
                states.append((max(0, math.floor(charge.limit - after + 1e-6)), after / charge.rate, charge.limit))
        if states:
            remaining, reset, limit = min(states, key=lambda s: (s[0], -s[1]))
            headers += [
                (f"x-ratelimit-limit-{unit}".encode(), str(limit).encode()),
                (f"x-ratelimit-remaining-{unit}".encode(), str(remaining).encode()),
                (f"x-ratelimit-reset-{unit}".encode(), _duration(reset).encode()),
            ]
    return headers


def _duration(seconds: float) -> str:
    """A duration as OpenAI writes it in x-ratelimit-reset-*: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds > 0 else "0s"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".")
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{text}s"


def _usd(value: Decimal) -> str:
    """5 -> 5.00, 0.005 -> 0.005."""
    return f"{value:.2f}" if value == round(value, 2) else f"{value.normalize():f}"
