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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio

from relaygate.context import RequestContext, Route
from relaygate.counters import Adjustment, Charge, Counters
from relaygate.errors import GatewayError, PermissionDeniedError, ServiceUnavailableError
from relaygate.limits.config import USD_LIMITS, LimitSet, ProjectLimits
from relaygate.limits.estimate import Estimate, StreamTally, estimate, images_cost, token_cost
from relaygate.limits.periods import period_of
from relaygate.limits.refusals import Headers, rate_headers, refusal
from relaygate.limits.scopes import MINUTE, Item, Scope, applicable, output_cap
from relaygate.pricing import ModelPrice, PriceBook
from relaygate.routing import ModelRouter
from relaygate.store import nanos_to_usd, usd_to_nanos

if TYPE_CHECKING:
    from relaygate.ledger import Ledger

__all__ = ["Admission", "Limiter"]

logger = logging.getLogger("relaygate.limits")

_NANOS = Decimal(1_000_000_000)
# A budget counter absent again right after it was loaded (it expired between two steps): give up then.
_ATTEMPTS = 3


@dataclass(slots=True)
class Admission:
    """A call let through: what it reserved, to be settled when it ends; the rate headers for its answer."""

    items: list[Item]
    estimate: Estimate
    price: ModelPrice | None
    tally: StreamTally | None = None
    headers: Headers = field(default_factory=list)


class Limiter:
    """Reserves and settles calls against the limits of ``projects``; see the module docstring.

    ``ledger`` prices the calls and holds the spend that budgets load; without it there can be no budgets
    (the settings refuse them), only rates. ``prices`` gives the models' output caps (the ledger's price book
    when not given). ``clock`` gives seconds since the epoch (tests move it).
    """

    def __init__(
        self,
        *,
        projects: Mapping[str, ProjectLimits],
        counters: Counters,
        router: ModelRouter,
        ledger: Ledger | None = None,
        prices: PriceBook | None = None,
        prefix: str = "relaygate",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.projects = dict(projects)
        self.counters = counters
        self.router = router
        self.ledger = ledger
        self.prices = prices if prices is not None else ledger.prices if ledger is not None else None
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
        scoped = applicable(limits, ctx, body, route)
        if not scoped:
            return None
        cap = output_cap(limits, route, self._listed_cap(ctx, route))
        worst = estimate(endpoint, body, cap, provider_kind=route.provider.kind)
        budgeted = any(limit_set.has_usd for _, limit_set in scoped)
        worst = _with_unsized(worst, limits, ctx, budgeted=budgeted)
        price = None
        nanos = 0
        if budgeted:
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
        admission = Admission(items, worst, price, headers=rate_headers(items, levels, charged=True))
        if body.get("stream") is True and any(item.name != "requests_per_minute" for item in items):
            admission.tally = StreamTally()
            ctx.observers.append(admission.tally)
        return admission

    def _listed_cap(self, ctx: RequestContext, route: Route) -> int | None:
        if self.prices is None:
            return None
        provider = route.provider
        return self.prices.output_cap(
            provider.kind, route.model, provider_name=provider.name, project_id=ctx.project_id
        )

    def _price(self, ctx: RequestContext, route: Route) -> ModelPrice | None:
        if self.ledger is None:
            return None
        return self.ledger.prices.price(
            route.provider.kind, route.model, provider_name=route.provider.name, project_id=ctx.project_id
        )

    def _items(self, scope: Scope, limits: LimitSet, tokens: int, nanos: int, now: float) -> Iterable[Item]:
        base = f"{self.prefix}:{scope.key}"
        for name, amount in (("requests_per_minute", 1), ("tokens_per_minute", tokens)):
            value = getattr(limits, name)
            if value is not None:
                charge = Charge(f"{base}:{name}", amount, value, rate=value / MINUTE, ttl=MINUTE + 1)
                yield Item(scope, name, value, charge)
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
                yield Item(scope, name, usd, charge, period)

    async def _reserve(self, items: Sequence[Item], now: float) -> tuple[float, ...]:
        charges = [item.charge for item in items]
        for _ in range(_ATTEMPTS):
            outcome = await self.counters.reserve(charges, now)
            if outcome.admitted:
                return outcome.levels
            if outcome.refused:
                raise refusal(items, outcome.levels, outcome.refused, now)
            async with anyio.create_task_group() as group:
                for index in outcome.missing:
                    group.start_soon(self._load, items[index], now)
        raise ServiceUnavailableError("Budgets could not be loaded from the ledger.", code="limits_unavailable")

    async def _load(self, item: Item, now: float) -> None:
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
        tokens, nanos, estimated = self._used(admission, ctx)
        if estimated:
            # A stream cut short before its usage came: the ledger records this estimate rather than nothing,
            # so that the spend it reloads after a restart is the spend the counters held.
            ctx.cost_usd = nanos_to_usd(nanos)
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

    def _used(self, admission: Admission, ctx: RequestContext) -> tuple[int, int, bool]:
        """The tokens and nano-dollars the call used, as far as can be told, and whether the cost is an
        estimate from what was streamed."""
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
            return tokens, usd_to_nanos(cost) or 0, False
        if streamed is not None and usage is None:
            return tokens, token_cost(worst.prompt_tokens, streamed, admission.price) or reserved_nanos, True
        # Unknown: a call that went through keeps its reservation; a failed one cost nothing.
        return tokens, reserved_nanos if succeeded or usage is not None else 0, False


def _with_unsized(worst: Estimate, limits: ProjectLimits, ctx: RequestContext, *, budgeted: bool) -> Estimate:
    """The estimate with its unsized attachments at the project's ``unsized_attachment_tokens`` each; without
    that figure, a budget cannot hold them and refuses the call."""
    if not worst.unsized:
        return worst
    bound = limits.unsized_attachment_tokens
    if bound is None and budgeted:
        where = worst.unsized[0]
        raise PermissionDeniedError(
            f"The attachment at {where} cannot be sized by the gateway (a file id, a remote document, audio or "
            f"video), so its cost cannot be held against the budgets of project {ctx.project_id}. Send it inline "
            "as a data: URL (images, PDFs, text, WAV or MP3), or have the project's limits reserve "
            "unsized_attachment_tokens for such attachments.",
            param=where,
            code="unsized_attachment",
        )
    return replace(worst, prompt_tokens=worst.prompt_tokens + (bound or 0) * len(worst.unsized))
