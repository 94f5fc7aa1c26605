"""The interface of limit counters: :class:`Counters`, and what is asked of them (:class:`Charge`, :class:`Adjustment`).

A counter is a level under a limit. A *rate* counter drains at a steady ``rate`` per second (a leaky bucket:
``requests_per_minute: 600`` is a bucket of 600 that drains 10 a second), so it counts what was charged over
the last ``limit / rate`` seconds, decaying smoothly rather than resetting at the top of each minute. A *budget*
counter does not drain (``rate`` 0): it lives for its period, whose label is part of its key.

The operations are what limits need to hold under concurrency:

- :meth:`Counters.reserve` charges several counters at once, all or none: if any charge would take its counter
  over its limit, nothing is charged. It is one atomic step (a Lua script in Redis, a run of code without an
  ``await`` in process), so a hundred concurrent requests cannot all see room for one more.
- :meth:`Counters.adjust` moves counters by a signed amount once a call's real figures are known (a refund
  below zero stops at zero).
- :meth:`Counters.load` sets a counter's starting level only when it is absent, so that several gateway
  processes initialising the same budget from the ledger do not add it twice.

Times are passed in (seconds since the epoch) rather than read here, so that every backend agrees on the
clock a caller uses and tests can move it. Amounts are integers (requests, tokens, nano-dollars); levels are
floats because draining is continuous.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

__all__ = ["EPSILON", "Adjustment", "Charge", "Counters", "Reserved", "drained"]

# Drained levels are floats: a level that should sit exactly at its limit may come out a hair above it.
EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class Charge:
    """Add ``amount`` to counter ``key`` unless that takes it over ``limit``.

    ``rate``: units drained per second (0 for a budget). ``ttl``: seconds the counter is kept after this use.
    ``loaded``: the counter's starting level comes from elsewhere (the ledger); when it is absent,
    :meth:`Counters.reserve` charges nothing and names it in :attr:`Reserved.missing`.
    """

    key: str
    amount: int
    limit: int
    rate: float = 0.0
    ttl: float = 60.0
    loaded: bool = False


@dataclass(frozen=True, slots=True)
class Adjustment:
    """Move counter ``key`` by ``delta`` (negative gives back); an absent counter is left absent."""

    key: str
    delta: int
    rate: float = 0.0
    ttl: float = 60.0


@dataclass(frozen=True, slots=True)
class Reserved:
    """The outcome of :meth:`Counters.reserve`.

    ``levels`` are the counters' levels before the charge (after draining), in the order of the charges.
    ``refused`` and ``missing`` hold indices into the charges; either non-empty means nothing was charged.
    """

    admitted: bool
    levels: tuple[float, ...] = ()
    refused: tuple[int, ...] = ()
    missing: tuple[int, ...] = ()


def drained(level: float, rate: float, elapsed: float) -> float:
    """A level after ``elapsed`` seconds of draining at ``rate``."""
    if rate <= 0:
        return level
    return max(0.0, level - rate * max(0.0, elapsed))


class Counters(ABC):
    """Limit counters; see the module docstring. ``async with`` opens and closes them."""

    # In-process counters answer without waiting: they offer :meth:`reserve_now` and :meth:`adjust_now` as well.
    synchronous = False

    def reserve_now(self, charges: Sequence[Charge], now: float) -> Reserved:
        """:meth:`reserve` without an await; only counters that are :attr:`synchronous` have it."""
        raise NotImplementedError

    def adjust_now(self, adjustments: Sequence[Adjustment], now: float) -> None:
        """:meth:`adjust` without an await; only counters that are :attr:`synchronous` have it."""
        raise NotImplementedError

    def move(self, key: str, delta: int, rate: float, ttl: float, now: float) -> None:
        """One :class:`Adjustment` without an await, and without making one; :attr:`synchronous` counters only."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:  # noqa: B027 (a no-op in process)
        """Connect."""

    async def aclose(self) -> None:  # noqa: B027
        """Disconnect."""

    @abstractmethod
    async def reserve(self, charges: Sequence[Charge], now: float) -> Reserved:
        """Charge every counter, or none; see :class:`Reserved`."""

    @abstractmethod
    async def adjust(self, adjustments: Sequence[Adjustment], now: float) -> None: ...

    @abstractmethod
    async def load(self, key: str, level: int, ttl: float, now: float) -> bool:
        """Set counter ``key`` to ``level`` if it is absent; ``True`` when this call set it."""

    @abstractmethod
    async def level(self, key: str, rate: float, now: float) -> float | None:
        """The counter's level now (drained at ``rate``), ``None`` when it is absent."""
