"""What a call used, for :meth:`~relaygate.limits.limiter.Limiter.settle` to move its reservation to.

The model's part is the ledger's cost from the call's usage (or its images). Without usage it is an estimate
of what the provider may have billed (:func:`without_usage`), which the ledger then records as the call's
cost, so that the spend it reloads after a restart is the spend the counters held. The guards' model calls
(judges) are added at the ledger's cost, as the ledger adds them to the call's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaygate.context import RequestContext
from relaygate.limits.estimate import StreamTally, token_cost
from relaygate.limits.worst import TargetWorst
from relaygate.store import nanos_to_usd, usd_to_nanos

if TYPE_CHECKING:
    from relaygate.ledger import Ledger

__all__ = ["overbilled", "used", "without_usage"]


def used(
    ctx: RequestContext,
    served: TargetWorst | None,
    ledger: Ledger | None,
    *,
    stream: bool,
    tally: StreamTally | None,
    guards: bool = True,
) -> tuple[int, int]:
    """The tokens the call's model used and the nano-dollars of the whole call (without its guards' model calls
    when not ``guards``), as far as they can be told; ``served`` is the worst case of the model that served it
    (``None``: no model was called)."""
    judged = [cost for cost in ledger.guard_costs(ctx) if cost is not None] if ledger is not None and guards else []
    return _used(ctx, served, ledger, stream=stream, tally=tally, guards=judged)


def _used(
    ctx: RequestContext,
    served: TargetWorst | None,
    ledger: Ledger | None,
    *,
    stream: bool,
    tally: StreamTally | None,
    guards: list[float],
) -> tuple[int, int]:
    if served is None:
        return 0, usd_to_nanos(round(sum(guards), 9)) or 0  # a guard refused the call, say
    usage = ctx.usage
    model = _priced(ctx, ledger)
    tokens = usage.total_tokens or usage.prompt_tokens + usage.completion_tokens if usage is not None else 0
    if model is None:
        estimated_tokens, nanos = without_usage(ctx, served, stream=stream, tally=tally)
        tokens = tokens if usage is not None else estimated_tokens
        model = nanos_to_usd(nanos)
        if nanos and ledger is not None:
            ledger.estimated(ctx, model)
        elif nanos:
            ctx.cost_usd = model
    return tokens, usd_to_nanos(round(model + sum(guards), 9)) or 0


def without_usage(
    ctx: RequestContext, served: TargetWorst, *, stream: bool, tally: StreamTally | None
) -> tuple[int, int]:
    """Tokens and nano-dollars of a model call whose usage never came: what the provider may have billed.

    - Nothing reached a provider, or the last one refused with an error status: nothing.
    - A stream (cut short by the client or a failure, or from a provider that reports no usage): the prompt
      estimate and the output it streamed (:class:`~relaygate.limits.estimate.StreamTally`), the prompt alone
      when nothing was streamed (a reasoning model thinking, say): the provider has read the prompt, and stops
      writing when the stream is closed.
    - A whole answer (none came: a timeout, a lost connection, the client leaving; or one without usage): its
      whole reservation, since a provider may finish and bill an answer nobody reads.

    Earlier attempts of a call that fell back to another target are not counted: the ledger records the
    attempt that answered.
    """
    last = ctx.attempts[-1] if ctx.attempts else None
    if last is None or (last.status is not None and last.status != 200):
        return 0, 0
    worst = served.estimate
    if stream:
        streamed = min(tally.output_tokens, worst.output_tokens) if tally is not None else 0
        return worst.prompt_tokens + streamed, token_cost(worst.prompt_tokens, streamed, served.price) or 0
    return served.tokens, served.nanos


def overbilled(ctx: RequestContext, served: TargetWorst, ledger: Ledger | None) -> bool:
    """Whether the provider billed the call beyond its reservation on the model that served it: more output
    tokens than it reserved (max_tokens, or the model's cap), or a cost above the reserved one."""
    usage = ctx.usage
    if usage is None:
        return False
    reserved = served.estimate.output_tokens
    if reserved and usage.completion_tokens > reserved:
        return True
    if not served.nanos:
        return False  # no budget: no cost was reserved
    cost = _priced(ctx, ledger)
    return cost is not None and (usd_to_nanos(cost) or 0) > served.nanos


def _priced(ctx: RequestContext, ledger: Ledger | None) -> float | None:
    """The ledger's cost of the call's own model call, from its usage (or its images)."""
    if ledger is None:
        return ctx.cost_usd
    cost = ledger.model_cost(ctx)
    if cost is None and ctx.usage is not None:
        cost = ledger.price(ctx)  # a ledger that is not running did not price it
    return cost
