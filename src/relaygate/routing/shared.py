"""The ``optimized`` strategy's figures shared between gateway processes through Redis.

With ``counters: redis://...`` in the config, each process still records its attempts in memory
(:class:`~relaygate.routing.metrics.TargetMetrics`); every ``interval`` seconds a background task
pushes what was recorded since (``HINCRBYFLOAT`` into one hash per target and bucket, expiring once
the bucket has left the window) and reads back the window's hashes of every target it knows. Their
totals, every process's attempts together, are then what the process routes by. Routing never waits
for Redis: when Redis cannot be reached, the process routes by its own figures (and says so once in
the log) until Redis answers again. Pushes are best effort: a failed push loses those samples.

Circuit breakers are not shared: each process finds out for itself that a target is failing, which
costs at most ``breaker.failures`` attempts per process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from relaygate.routing.metrics import BUCKET_SECONDS, FIELDS, WINDOW_BUCKETS, TargetMetrics

__all__ = ["RedisMetricsSync"]

logger = logging.getLogger("relaygate.routing")

DEFAULT_PREFIX = "relaygate:routing"


class RedisMetricsSync:
    def __init__(
        self,
        metrics: TargetMetrics,
        url: str,
        *,
        keys: Callable[[], Iterable[str]] = tuple,
        prefix: str = DEFAULT_PREFIX,
        interval: float = 1.0,
    ) -> None:
        """``keys`` gives the targets to read even before this process has called them (configured ones)."""
        self.metrics = metrics
        self.prefix = prefix
        self.interval = interval
        self._keys = keys
        self._redis: Redis = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        metrics.sharing = True

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="relaygate-routing-metrics")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await self._redis.aclose()

    async def sync(self) -> None:
        """Push what this process recorded; pull every process's totals over the window."""
        pending = self.metrics.take_pending()
        known = sorted({*self._keys(), *self.metrics.keys()})
        current = self.metrics.bucket()
        window = range(current - WINDOW_BUCKETS + 1, current + 1)
        async with self._redis.pipeline(transaction=False) as pipe:
            pushes = 0
            for (key, bucket), sums in pending.items():
                name = self._name(key, bucket)
                for field, value in zip(FIELDS, sums, strict=True):
                    if value:
                        pipe.hincrbyfloat(name, field, value)
                        pushes += 1
                # Kept until the bucket has left every process's window, whatever their clocks.
                pipe.expire(name, BUCKET_SECONDS * (WINDOW_BUCKETS + 2))
                pushes += 1
            for key in known:
                for bucket in window:
                    pipe.hgetall(self._name(key, bucket))
            results: list[Any] = await pipe.execute()
        totals: dict[str, list[float]] = {}
        read = iter(results[pushes:])
        for key in known:
            sums = [0.0] * len(FIELDS)
            for _ in window:
                held = next(read) or {}
                for index, field in enumerate(FIELDS):
                    sums[index] += float(held.get(field.encode(), 0))
            if sums[0]:
                totals[key] = sums
        self.metrics.set_shared(totals)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sync()
            except (RedisError, OSError) as exc:
                self.metrics.set_shared(None)
                if not self._failing:
                    logger.warning("routing figures are not shared: Redis failed (%s); using this process's own", exc)
                self._failing = True
            else:
                if self._failing:
                    logger.info("routing figures are shared through Redis again")
                self._failing = False

    def _name(self, key: str, bucket: int) -> str:
        return f"{self.prefix}:{key}:{bucket}"
