"""In-process counters: one gateway process (the default when ``counters:`` is absent).

Each operation runs without an ``await``, so on one event loop it is atomic just as the Redis scripts are.
Counters of several processes (``relaygate serve --workers 2``, or several machines) are not shared: use
:class:`~relaygate.counters.redis.RedisCounters` there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from relaygate.counters.base import EPSILON, Adjustment, Charge, Counters, Reserved, drained

__all__ = ["InProcessCounters"]

# Expired counters are dropped every so many operations, so that per-user counters cannot pile up.
SWEEP_EVERY = 1024


@dataclass(slots=True)
class _Counter:
    level: float
    updated: float
    expires: float


class InProcessCounters(Counters):
    def __init__(self) -> None:
        self._counters: dict[str, _Counter] = {}
        self._operations = 0

    def _get(self, key: str, now: float) -> _Counter | None:
        counter = self._counters.get(key)
        if counter is not None and counter.expires <= now:
            del self._counters[key]
            return None
        return counter

    def _sweep(self, now: float) -> None:
        self._operations += 1
        if self._operations % SWEEP_EVERY == 0:
            self._counters = {k: c for k, c in self._counters.items() if c.expires > now}

    async def reserve(self, charges: Sequence[Charge], now: float) -> Reserved:
        self._sweep(now)
        found = [self._get(charge.key, now) for charge in charges]
        missing = tuple(i for i, (c, f) in enumerate(zip(charges, found, strict=True)) if c.loaded and f is None)
        levels = tuple(
            0.0 if f is None else drained(f.level, c.rate, now - f.updated) for c, f in zip(charges, found, strict=True)
        )
        if missing:
            return Reserved(admitted=False, levels=levels, missing=missing)
        refused = tuple(i for i, c in enumerate(charges) if c.amount > 0 and levels[i] + c.amount > c.limit + EPSILON)
        if refused:
            return Reserved(admitted=False, levels=levels, refused=refused)
        for charge, counter, level in zip(charges, found, levels, strict=True):
            updated = max(counter.updated, now) if counter is not None else now
            self._counters[charge.key] = _Counter(level + charge.amount, updated, now + charge.ttl)
        return Reserved(admitted=True, levels=levels)

    synchronous = True

    async def adjust(self, adjustments: Sequence[Adjustment], now: float) -> None:
        self.adjust_now(adjustments, now)

    def adjust_now(self, adjustments: Sequence[Adjustment], now: float) -> None:
        for adjustment in adjustments:
            counter = self._get(adjustment.key, now)
            if counter is None:
                continue
            level = drained(counter.level, adjustment.rate, now - counter.updated)
            counter.level = max(0.0, level + adjustment.delta)
            counter.updated = max(counter.updated, now)
            counter.expires = now + adjustment.ttl

    async def load(self, key: str, level: int, ttl: float, now: float) -> bool:
        if self._get(key, now) is not None:
            return False
        self._counters[key] = _Counter(float(level), now, now + ttl)
        return True

    async def level(self, key: str, rate: float, now: float) -> float | None:
        counter = self._get(key, now)
        return None if counter is None else drained(counter.level, rate, now - counter.updated)
