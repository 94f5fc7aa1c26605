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
        return self.reserve_now(charges, now)

    def reserve_now(self, charges: Sequence[Charge], now: float) -> Reserved:
        # One pass finds each counter and its drained level, and whether it is missing or would go over;
        # a second charges them only when all fit.
        self._sweep(now)
        counters = self._counters
        found: list[_Counter | None] = []
        levels: list[float] = []
        missing: list[int] = []
        refused: list[int] = []
        for index, charge in enumerate(charges):
            counter = counters.get(charge.key)
            if counter is not None and counter.expires <= now:
                del counters[charge.key]
                counter = None
            if counter is None:
                level = 0.0
                if charge.loaded:
                    missing.append(index)
            else:
                level = drained(counter.level, charge.rate, now - counter.updated)
            if charge.amount > 0 and level + charge.amount > charge.limit + EPSILON:
                refused.append(index)
            found.append(counter)
            levels.append(level)
        if missing:
            return Reserved(admitted=False, levels=tuple(levels), missing=tuple(missing))
        if refused:
            return Reserved(admitted=False, levels=tuple(levels), refused=tuple(refused))
        for charge, counter, level in zip(charges, found, levels, strict=True):
            if counter is None:
                counters[charge.key] = _Counter(level + charge.amount, now, now + charge.ttl)
            else:
                # The counter in the dict is this one: moved in place.
                counter.level = level + charge.amount
                counter.updated = max(counter.updated, now)
                counter.expires = now + charge.ttl
        return Reserved(admitted=True, levels=tuple(levels))

    synchronous = True

    async def adjust(self, adjustments: Sequence[Adjustment], now: float) -> None:
        self.adjust_now(adjustments, now)

    def adjust_now(self, adjustments: Sequence[Adjustment], now: float) -> None:
        for adjustment in adjustments:
            self.move(adjustment.key, adjustment.delta, adjustment.rate, adjustment.ttl, now)

    def move(self, key: str, delta: int, rate: float, ttl: float, now: float) -> None:
        """One :class:`Adjustment` without making one: counter ``key`` moved by ``delta``."""
        counter = self._get(key, now)
        if counter is None:
            return
        level = drained(counter.level, rate, now - counter.updated)
        counter.level = max(0.0, level + delta)
        counter.updated = max(counter.updated, now)
        counter.expires = now + ttl

    async def load(self, key: str, level: int, ttl: float, now: float) -> bool:
        if self._get(key, now) is not None:
            return False
        self._counters[key] = _Counter(float(level), now, now + ttl)
        return True

    async def level(self, key: str, rate: float, now: float) -> float | None:
        counter = self._get(key, now)
        return None if counter is None else drained(counter.level, rate, now - counter.updated)
