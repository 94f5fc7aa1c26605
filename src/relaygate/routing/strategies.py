"""The order in which a virtual model's strategy tries its targets for one request.

Every strategy gives all the targets, best first: the ones after the first are the fallbacks, tried
when the first fails (targets whose circuit breaker is open are skipped when attempts are made).

- ``fallback``: as written.
- ``percentage``: drawn by weight, one after another without putting back, so the first target is
  each one's weight share of the time and the fallbacks follow the same odds (weight 0: fallback only).
- ``random``: shuffled.
- ``optimized``: by the chosen figure, lowest first (latency, ttft, error_rate from
  :class:`~relaygate.routing.metrics.TargetMetrics`; cost from the price book, input plus output
  price per 1M tokens). A target with no attempt in the figures' window comes first so that it gets
  measured; one that has only failed has an infinite latency and ttft, so it comes last, like one
  without a price. ``explore`` is the share of requests that start with another target than the
  best, so that the others' figures stay current.
- ``conditional``: the targets of the first route whose conditions hold, else the model's targets.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from relaygate.routing.conditions import Facts, matches
from relaygate.routing.metrics import TargetMetrics
from relaygate.routing.plan import Target, VirtualModel

__all__ = ["order"]

PriceOf = Callable[[Target], float | None]


def order(
    model: VirtualModel,
    *,
    rng: random.Random,
    metrics: TargetMetrics,
    price_of: PriceOf,
    facts: Callable[[], Facts],
) -> tuple[Target, ...]:
    strategy = model.strategy
    if strategy == "percentage":
        return _by_weight(model.targets, model.weights, rng)
    if strategy == "random":
        return tuple(rng.sample(model.targets, len(model.targets)))
    if strategy == "optimized":
        return _optimized(model, rng, metrics, price_of)
    if strategy == "conditional":
        seen = facts()
        for conditions, targets in model.routes:
            if matches(conditions, seen):
                return targets
    return model.targets


def _by_weight(targets: Sequence[Target], weights: Sequence[float], rng: random.Random) -> tuple[Target, ...]:
    pool = list(zip(targets, weights, strict=True))
    out: list[Target] = []
    while pool:
        total = sum(weight for _, weight in pool)
        if total <= 0:
            out.extend(target for target, _ in pool)
            break
        pick = rng.random() * total
        chosen = len(pool) - 1  # should rounding leave pick at the very top
        for index, (_, weight) in enumerate(pool):
            pick -= weight
            if pick < 0:
                chosen = index
                break
        out.append(pool.pop(chosen)[0])
    return tuple(out)


def _optimized(
    model: VirtualModel, rng: random.Random, metrics: TargetMetrics, price_of: PriceOf
) -> tuple[Target, ...]:
    def score(target: Target) -> float:
        if model.metric == "cost":
            price = price_of(target)
            return math.inf if price is None else price
        figure = metrics.figure(target.key, model.metric)
        # Never tried (in the window): first, once, to be measured. A target that only failed is not
        # "unmeasured": its figure is infinite and it goes last.
        return -math.inf if figure is None else figure

    scores = [score(target) for target in model.targets]
    ranked = [target for _, _, target in sorted(zip(scores, range(len(scores)), model.targets, strict=True))]
    if len(ranked) > 1 and model.explore and rng.random() < model.explore:
        ranked.insert(0, ranked.pop(rng.randrange(1, len(ranked))))
    return tuple(ranked)
