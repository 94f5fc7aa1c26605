"""A circuit breaker per target (``provider/model``), shared by every request of the process.

Closed, a target takes every request. After ``failures`` consecutive failed attempts (failures of the
kinds that are retried: 5xx, timeouts, refused connections; not a 429, which says "later", not
"failing": its client is better served by its Retry-After than by a 503) it opens and is skipped by
every strategy for ``cooldown`` seconds. Then it is half-open: the first request to reach it is its trial,
and the others keep skipping it while the trial runs. A trial that succeeds closes the breaker; one
that fails opens it for another cooldown; one that is abandoned (the client left) frees the trial for
the next request. The state lives in this process only (see docs/guides/scaling.md: not shared through Redis).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from relaygate.settings import BreakerSettings

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]
# Targets with failures on record beyond which closed ones are forgotten (clients may invent model names).
MAX_TRACKED = 10_000


@dataclass(slots=True)
class _Target:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False


class CircuitBreaker:
    def __init__(self, settings: BreakerSettings | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings if settings is not None else BreakerSettings()
        self._clock = clock
        self._targets: dict[str, _Target] = {}

    def state(self, key: str) -> BreakerState:
        target = self._targets.get(key)
        if target is None or target.opened_at is None:
            return "closed"
        return "half_open" if self._clock() - target.opened_at >= self.settings.cooldown else "open"

    def available(self, key: str) -> bool:
        """Whether an attempt may go to the target now (without claiming a half-open trial)."""
        if not self.settings.enabled:
            return True
        target = self._targets.get(key)
        if target is None or target.opened_at is None:
            return True
        return not target.trial and self._clock() - target.opened_at >= self.settings.cooldown

    def acquire(self, key: str) -> bool:
        """Claim the target for an attempt; a half-open target's claim is its one trial."""
        if not self.available(key):
            return False
        target = self._targets.get(key)
        if target is not None and target.opened_at is not None:
            target.trial = True
        return True

    def succeeded(self, key: str) -> None:
        self._targets.pop(key, None)

    def failed(self, key: str) -> None:
        if not self.settings.enabled:
            return
        if key not in self._targets and len(self._targets) >= MAX_TRACKED:
            self._targets = {k: t for k, t in self._targets.items() if t.opened_at is not None}
        target = self._targets.setdefault(key, _Target())
        target.failures += 1
        if target.trial or target.failures >= self.settings.failures:
            target.opened_at = self._clock()
        target.trial = False

    def released(self, key: str) -> None:
        """The claimed attempt was abandoned before it said anything about the target."""
        target = self._targets.get(key)
        if target is not None:
            target.trial = False

    def failing(self) -> dict[str, int]:
        """Targets with failures on record now (an open breaker's included), and how many in a row."""
        return {key: target.failures for key, target in self._targets.items() if target.failures}

    def retry_after(self, key: str) -> int:
        """Whole seconds until the target may take a request again (at least 1 while it is skipped)."""
        target = self._targets.get(key)
        if target is None or target.opened_at is None:
            return 0
        remaining = target.opened_at + self.settings.cooldown - self._clock()
        return max(1, math.ceil(remaining))
