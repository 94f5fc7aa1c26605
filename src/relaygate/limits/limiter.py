"""The :class:`Limiter`: which limits a call falls under, its reservation against the counters, its settlement.

Per call, :meth:`Limiter.admit` finds the models the call may be served by (a registered name resolved as
the proxy resolves it; every target of a virtual model), the limits that apply (the project's, its key's,
its user's, and each of those models'), estimates the call's worst case on each model
(:mod:`relaygate.limits.worst`) and reserves it on every counter at once: one request on each
``requests_per_minute``, the estimated tokens on each ``tokens_per_minute``, the worst-case cost in
nano-dollars on each budget; a model's own limits are charged what the call costs on that model, the
others what it costs on the dearest. If any limit would be passed, nothing is reserved and the call is
refused. :meth:`Limiter.settle` then moves the counters from the reservation to what the call really used:
the ledger's cost and the usage, and what its guards' model calls cost. A call whose usage never came
settles to what the provider may have billed, never to zero once a provider took it: a stream to its
prompt and what it streamed, a whole answer that did not come to its whole reservation; a call the
provider refused with an error status, or that never reached one, to nothing. The limits of models the call
could have gone to and did not are released: a model's limits count the calls it served, as the ledger's
spend by model does.

A budget's counter is keyed by its period (``usd_per_day:2025-06-01``). When it is absent (the gateway
started, a new period began, or it expired) the spend of that period is read from the ledger and set
only if still absent, so several gateways loading the same budget count it once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import anyio

from relaygate.context import RequestContext
from relaygate.counters import Adjustment, Charge, Counters
from relaygate.errors import GatewayError, ServiceUnavailableError
from relaygate.limits import settlement
from relaygate.limits.config import DEFAULT, TOOL_LIMIT, LimitSet, ProjectLimits
from relaygate.limits.estimate import StreamTally
from relaygate.limits.plan import Plans
from relaygate.limits.refusals import Headers, charged_headers, refusal
from relaygate.limits.scopes import MINUTE, Item, Scope
from relaygate.limits.worst import TargetWorst, WorstCase, worst_case
from relaygate.pricing import PriceBook
from relaygate.routing import ModelRouter
from relaygate.store import SpendKind
from relaygate.telemetry import names

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Meter

    from relaygate.guards.base import GuardModelCall
    from relaygate.ledger import Ledger

__all__ = ["Admission", "Limiter"]

logger = logging.getLogger("relaygate.limits")

GuardCalls = Callable[[str | None, Any, str], Sequence[tuple[str, "GuardModelCall"]]]
# A budget counter absent again right after it was loaded (it expired between two steps): give up then.
_ATTEMPTS = 3


@dataclass(slots=True)
class Admission:
    """A call let through: what it reserved, to be settled when it ends; the rate headers for its answer."""

    items: list[Item]
    worst: WorstCase
    stream: bool = False
    tally: StreamTally | None = None
    headers: Headers = field(default_factory=list)


class Limiter:
    """Reserves and settles calls against the limits of ``projects``; see the module docstring.

    ``ledger`` prices the calls and holds the spend that budgets load; without it there can be no budgets
    (the settings refuse them), only rates. ``prices`` gives the models' output caps (the ledger's price book
    when not given). ``guard_calls(project_id, extra_guards, endpoint)`` lists the priced model calls a
    request's guards may make (:meth:`~relaygate.guards.Guards.model_calls`), which budgets hold too.
    ``clock`` gives seconds since the epoch (tests move it).
    """

    def __init__(
        self,
        *,
        projects: Mapping[str, ProjectLimits],
        counters: Counters,
        router: ModelRouter,
        ledger: Ledger | None = None,
        prices: PriceBook | None = None,
        guard_calls: GuardCalls | None = None,
        prefix: str = "relaygate",
        clock: Callable[[], float] = time.time,
        meter: Meter | None = None,
    ) -> None:
        self._plans = Plans(prefix)
        self.projects = dict(projects)
        self.counters = counters
        self.router = router
        self.ledger = ledger
        self.prices = prices if prices is not None else ledger.prices if ledger is not None else None
        self.guard_calls: GuardCalls = guard_calls if guard_calls is not None else _no_guard_calls
        self.clock = clock
        # Budget counters being loaded from the ledger by this process: concurrent calls wait for one load.
        self._loading: dict[str, anyio.Event] = {}
        self._overbilled: Counter | None = (
            meter.create_counter(
                names.METRIC_OVERBILLED,
                unit="{call}",
                description="Calls a provider billed beyond their reservation (usage above max_tokens)",
            )
            if meter is not None
            else None
        )

    @property
    def projects(self) -> dict[str, ProjectLimits]:
        return self._projects

    @projects.setter
    def projects(self, projects: dict[str, ProjectLimits]) -> None:
        # The plans of calls are made from these limits (a plan also checks that its project's are the same).
        self._projects = projects
        self._plans.clear()

    @property
    def prefix(self) -> str:
        return self._plans.prefix

    @prefix.setter
    def prefix(self, prefix: str) -> None:
        self._plans.prefix = prefix
        self._plans.clear()

    async def start(self) -> None:
        await self.counters.start()

    async def aclose(self) -> None:
        await self.counters.aclose()

    # --- before the call --------------------------------------------------------------------------------

    async def admit(
        self, ctx: RequestContext, endpoint: str, body: dict[str, Any], *, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Admission | None:
        """Reserve the call's worst case, or raise the refusal; ``None`` when no limit applies to it. A script
        router runs here (``headers`` are the request's), so that the reservation is for what it chose."""
        limits = self.projects.get(ctx.project_id or "")
        model = body.get("model")
        if limits is None or not isinstance(model, str):
            return None
        if self.ledger is not None:
            # A registered name is limited as the model it is served as, as the proxy routes it.
            model = self.ledger.resolve(ctx.project_id, model) or model
        try:
            await self.router.prepare(model, body, ctx=ctx, headers=headers)
            targets = self.router.reachable(model, body, ctx=ctx)
        except GatewayError:
            return None  # the proxy answers with the error; an unroutable call costs nothing
        plan = self._plans.plan(limits, ctx, body, [target.route for target in targets])
        if plan is None:
            return None
        budgeted = plan.budgeted
        guard_calls = self.guard_calls(ctx.project_id, _requested_guards(body), endpoint) if budgeted else []
        worst = worst_case(
            ctx, limits, endpoint, body, targets, self.prices, budgeted=budgeted, guard_calls=guard_calls
        )
        now = self.clock()
        # Budgets count the call in the periods of its start, as the ledger records it: the request's start
        # on this clock becomes the context's wall-clock start, so that both name the same instant even when
        # the call is admitted after midnight.
        ctx.started_wall = now - (time.perf_counter() - ctx.started_at)
        items = plan.items(worst, now, ctx.started_wall, loaded=self.ledger is not None)
        try:
            levels = await self._reserve(items, now)
        except GatewayError:
            raise
        except Exception as exc:
            logger.warning("limits: the counters cannot be reached", exc_info=True)
            raise ServiceUnavailableError(
                "Rate limits and budgets cannot be checked right now; try again shortly.", code="limits_unavailable"
            ) from exc
        stream = body.get("stream") is True
        admission = Admission(items, worst, stream, headers=charged_headers(items, levels))
        if stream and plan.rated:
            admission.tally = StreamTally()
            ctx.observers.append(admission.tally)
        return admission

    async def admit_tool_call(self, ctx: RequestContext) -> None:
        """Count one MCP tool call on the ``tool_calls_per_minute`` of its project and key, or raise the 429
        (:class:`~relaygate.errors.RateLimitError`, with ``Retry-After``) of the one it would pass."""
        limits = self.projects.get(ctx.project_id or "")
        if limits is None:
            return
        project = ctx.project_id or ""
        scoped: list[tuple[Scope, LimitSet | None]] = [(Scope(SpendKind.PROJECT, project, project), limits)]
        if ctx.key is not None:
            key_limits = limits.keys.get(ctx.key.id, limits.keys.get(DEFAULT))
            scoped.append((Scope(SpendKind.KEY, ctx.key.id, project), key_limits))
        items = []
        for scope, limit_set in scoped:
            value = limit_set.tool_calls_per_minute if limit_set is not None else None
            if value is not None:
                key = f"{self.prefix}:{scope.key}:{TOOL_LIMIT}"
                items.append(Item(scope, TOOL_LIMIT, value, Charge(key, 1, value, rate=value / MINUTE, ttl=MINUTE + 1)))
        if not items:
            return
        try:
            await self._reserve(items, self.clock())
        except GatewayError:
            raise
        except Exception as exc:
            logger.warning("limits: the counters cannot be reached", exc_info=True)
            raise ServiceUnavailableError(
                "Rate limits cannot be checked right now; try again shortly.", code="limits_unavailable"
            ) from exc

    async def _reserve(self, items: Sequence[Item], now: float) -> tuple[float, ...]:
        charges = [item.charge for item in items]
        counters = self.counters
        for _ in range(_ATTEMPTS):
            if counters.synchronous:
                outcome = counters.reserve_now(charges, now)
            else:
                outcome = await counters.reserve(charges, now)
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
            scope = item.scope.spend_scope()
            limits = self.projects.get(item.scope.project_id)
            if limits is not None and limits.byok_calls == "ignore":
                scope = replace(scope, caller_keys=False)
            spent = await self.ledger.store.spend(scope, item.period.start, item.period.end)
            await self.counters.load(key, spent, item.charge.ttl, now)
        finally:
            del self._loading[key]
            loading.set()

    # --- after the call ---------------------------------------------------------------------------------

    async def settle(self, admission: Admission, ctx: RequestContext, *, model_only: bool = False) -> None:
        """Move the counters from the reservation to what the call used; never raises. ``model_only``: a tool
        loop's model call that another follows, settled to its own usage (the guards' calls are settled with
        the last)."""
        adjustments = [
            Adjustment(charge.key, delta, rate=charge.rate, ttl=charge.ttl)
            for charge, delta in self._moves(admission, ctx, model_only=model_only)
        ]
        if not adjustments:
            return
        try:
            await self.counters.adjust(adjustments, self.clock())
        except Exception:
            logger.warning("limits: a call's reservation could not be settled", exc_info=True)

    def settle_now(self, admission: Admission, ctx: RequestContext, *, model_only: bool = False) -> bool:
        """:meth:`settle` in one synchronous step, when the counters are in process (no await, no shielded
        cancel scope around it); ``False`` when they are not and :meth:`settle` is needed."""
        counters = self.counters
        if not counters.synchronous:
            return False
        now = -1.0
        for charge, delta in self._moves(admission, ctx, model_only=model_only):
            if now < 0:
                now = self.clock()
            counters.move(charge.key, delta, charge.rate, charge.ttl, now)
        return True

    def _moves(self, admission: Admission, ctx: RequestContext, *, model_only: bool) -> list[tuple[Charge, int]]:
        """Each counter the call's reservation is to move, and by how much (what it used less what it reserved)."""
        served = admission.worst.served_by(ctx.route)
        tokens, nanos = settlement.used(
            ctx, served, self.ledger, stream=admission.stream, tally=admission.tally, guards=not model_only
        )
        if served is not None and settlement.overbilled(ctx, served, self.ledger):
            self._flag_overbilled(ctx, served)
        served_key = served.key if served is not None else None
        moves: list[tuple[Charge, int]] = []
        for item in admission.items:
            charge = item.charge
            name = item.name
            if item.scope.kind == SpendKind.MODEL and item.scope.id != served_key:
                used = 0  # a model the call could have gone to and did not
            elif name == "tokens_per_minute":
                used = tokens
            elif name == "requests_per_minute" or name == TOOL_LIMIT:
                used = charge.amount
            else:
                used = nanos
            if used != charge.amount:
                moves.append((charge, used - charge.amount))
        return moves

    def _flag_overbilled(self, ctx: RequestContext, served: TargetWorst) -> None:
        """A provider billed beyond the reservation: counted at what it billed (settle moves the counters
        there, however far over the limit), flagged on the call's record and in a metric, and logged."""
        ctx.overbilled = True
        usage = ctx.usage
        logger.warning(
            "limits: %s billed beyond the reservation of a call of project %s: %s output tokens for %s reserved, "
            "cost $%s for $%s reserved",
            served.key,
            ctx.project_id,
            usage.completion_tokens if usage is not None else "?",
            served.estimate.output_tokens,
            ctx.cost_usd,
            served.nanos / 1e9,
        )
        if self._overbilled is not None:
            attributes = {
                names.PROJECT_ID: ctx.project_id or "",
                names.ROUTE_PROVIDER: served.route.provider.name,
                names.REQUEST_MODEL: served.route.model,
            }
            self._overbilled.add(1, attributes)


def _no_guard_calls(project_id: str | None, requested: Any, endpoint: str) -> Sequence[tuple[str, GuardModelCall]]:
    return ()


def _requested_guards(body: dict[str, Any]) -> Any:
    extra = body.get("extra")
    return extra.get("guards") if isinstance(extra, dict) else None
