"""The worst case of one call over every model it may reach: what the limiter reserves.

A request names one model, but may be served by several: a virtual model (``models:`` in the config,
``router/<name>``, or ``router/dynamic`` with the request's own ``router``) tries its targets in an order
chosen per request and falls back to the others, and a registered name stands for the model it is served
as. So the worst case is taken per target the call may reach (:meth:`ModelRouter.reachable`), each with
the request as that target gets it (its overrides), its provider's estimate and output cap and its price;
the call's worst is the dearest of them. A target without a price cannot be held against a budget, so a
budget refuses the call (403 ``model_not_priced``), as it refuses an unpriced model asked for by name.

Guards that call a model (``llm_judge``) cost too, and the ledger counts that cost in the call's: under a
budget, each such guard of the request adds its call's worst case (its prompt with the most text it judges,
and its ``max_tokens``, at its model's price), and a guard model without a price is refused like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from relaygate.context import RequestContext, Route
from relaygate.errors import PermissionDeniedError
from relaygate.limits.config import ProjectLimits
from relaygate.limits.estimate import Estimate, estimate, images_cost, token_cost
from relaygate.limits.scopes import output_cap
from relaygate.pricing import ModelPrice, PriceBook
from relaygate.routing import Target

if TYPE_CHECKING:
    from relaygate.guards.base import GuardModelCall

__all__ = ["TargetWorst", "WorstCase", "worst_case"]


@dataclass(frozen=True, slots=True)
class TargetWorst:
    """The most a call costs if it is served by ``route``: its estimate, tokens and nano-dollars there."""

    route: Route
    estimate: Estimate
    price: ModelPrice | None
    tokens: int
    nanos: int

    @property
    def key(self) -> str:
        return route_key(self.route)


@dataclass(frozen=True, slots=True)
class WorstCase:
    """The worst case of a call by target (``provider/model``), and what its guards' model calls may cost."""

    targets: dict[str, TargetWorst]
    guard_nanos: int = 0

    @property
    def tokens(self) -> int:
        return max(target.tokens for target in self.targets.values())

    @property
    def nanos(self) -> int:
        """The most the call costs, served by its dearest target, guards included."""
        return max(target.nanos for target in self.targets.values()) + self.guard_nanos

    def nanos_on(self, target: TargetWorst) -> int:
        """The most the call costs when ``target`` serves it, guards included."""
        return target.nanos + self.guard_nanos

    def served_by(self, route: Route | None) -> TargetWorst | None:
        return self.targets.get(route_key(route)) if route is not None else None


def route_key(route: Route) -> str:
    return f"{route.provider.name}/{route.model}"


def worst_case(
    ctx: RequestContext,
    limits: ProjectLimits,
    endpoint: str,
    body: dict[str, Any],
    targets: tuple[Target, ...],
    prices: PriceBook | None,
    *,
    budgeted: bool,
    guard_calls: Sequence[tuple[str, GuardModelCall]] = (),
) -> WorstCase:
    """The worst case of a call to ``targets`` whose guards make ``guard_calls``; raises the 403 of what a
    budget (``budgeted``) cannot hold."""
    found: dict[str, TargetWorst] = {}
    for target in targets:
        case = _target_worst(ctx, limits, endpoint, target, body, prices, budgeted=budgeted)
        held = found.get(case.key)
        # One model named twice (with other overrides): the dearer way to call it.
        if held is None or (case.nanos, case.tokens) > (held.nanos, held.tokens):
            found[case.key] = case
    guards = sum(_guard_nanos(ctx, guard_id, call, prices) for guard_id, call in guard_calls) if budgeted else 0
    return WorstCase(found, guards)


def _guard_nanos(ctx: RequestContext, guard_id: str, call: GuardModelCall, prices: PriceBook | None) -> int:
    route, provider = call.route, call.route.provider
    worst = estimate("chat", call.body, 1, provider_kind=provider.kind)
    price = prices.price(provider.kind, route.model, provider.name, ctx.project_id) if prices is not None else None
    nanos = token_cost(worst.prompt_tokens + call.text_bytes, worst.output_tokens, price)
    if nanos is None:
        raise PermissionDeniedError(
            f"Guard '{guard_id}' calls {route_key(route)}, which has no price, so its cost cannot be held against "
            f"the budgets of project {ctx.project_id}. Give it one (prices: in the config, or the project's "
            "custom prices).",
            param="extra.guards",
            code="model_not_priced",
        )
    return nanos * call.calls


def _target_worst(
    ctx: RequestContext,
    limits: ProjectLimits,
    endpoint: str,
    target: Target,
    body: dict[str, Any],
    prices: PriceBook | None,
    *,
    budgeted: bool,
) -> TargetWorst:
    route, sent = target.route, target.body(body)
    provider = route.provider
    listed = None
    price = None
    if prices is not None:
        listed = prices.output_cap(provider.kind, route.model, provider_name=provider.name, project_id=ctx.project_id)
        price = prices.price(provider.kind, route.model, provider_name=provider.name, project_id=ctx.project_id)
    worst = estimate(endpoint, sent, output_cap(limits, route, listed), provider_kind=provider.kind)
    worst = _with_unsized(worst, limits, ctx, budgeted=budgeted)
    tokens = 0 if endpoint == "images" else worst.tokens
    if not budgeted:
        return TargetWorst(route, worst, price, tokens, 0)
    if endpoint == "images":
        nanos = images_cost(sent, worst.images, price)
    else:
        nanos = token_cost(worst.prompt_tokens, worst.output_tokens, price)
    if nanos is None:
        name = route_key(route)
        via = f" (a target of '{route.requested}')" if route.requested != name else ""
        raise PermissionDeniedError(
            f"{name}{via} has no price, so its cost cannot be held against the budgets of project "
            f"{ctx.project_id}. Give it one (prices: in the config, or the project's custom prices).",
            param="model",
            code="model_not_priced",
        )
    return TargetWorst(route, worst, price, tokens, nanos)


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
