"""Where a request goes: plain ``provider/model`` names, virtual models and the request's own router.

- :mod:`.router`: :class:`ModelRouter` turns the requested model into a :class:`Plan`, the targets to
  try in order with the retry settings that bound the trying;
- :mod:`.strategies`: the order a virtual model's strategy gives its targets (fallback, percentage,
  random, optimized, conditional), with :mod:`.conditions` for the conditional one;
- :mod:`.request`: the request's ``router`` object (``model: "router/dynamic"``), checked into 400s;
- :mod:`.retry`: which failures are tried again, backoff and ``Retry-After``;
- :mod:`.breaker` and :mod:`.metrics`: per-target health (circuit breakers, live figures), and
  :mod:`.shared`, which shares the figures between gateway processes through Redis.

The attempts themselves are made by :class:`relaygate.fallback.Fallback`.
"""

from __future__ import annotations

from relaygate.routing.breaker import CircuitBreaker
from relaygate.routing.metrics import TargetMetrics
from relaygate.routing.plan import Plan, Target, VirtualModel
from relaygate.routing.router import ModelRouter

__all__ = ["CircuitBreaker", "ModelRouter", "Plan", "Target", "TargetMetrics", "VirtualModel"]
