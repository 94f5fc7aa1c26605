"""Counters in Redis, shared by every gateway process and machine that names the same server and prefix.

Each counter is a hash ``{l: level, t: last update}`` with an expiry. Reserving, adjusting and loading are Lua
scripts, which Redis runs atomically: nothing else touches the counters between a script's check and its
writes, so concurrent requests on any number of gateways see one consistent count. The callers' clock is
passed in (``now``), so gateways on several machines need their clocks in step (NTP), as with any shared
rate limit. Levels are written with 17 significant digits, the precision of the Lua number they are read
into (the default conversion keeps 14, which would round nano-dollar budgets above $100,000).

The scripts touch several keys at once; on a Redis Cluster they would have to share a hash slot, which the
keys do not arrange, so use a single server (or a primary with replicas).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from relaygate.counters.base import EPSILON, Adjustment, Charge, Counters, Reserved, drained

__all__ = ["RedisCounters"]

# ARGV: now, then per key: amount, limit, rate, ttl in ms, loaded (1 or 0).
# Returns {admitted (1 or 0), missing indices, refused indices, levels before the charge as strings}.
RESERVE = """
local now = tonumber(ARGV[1])
local levels, missing, refused, stamps = {}, {}, {}, {}
for i, key in ipairs(KEYS) do
  local a = 1 + (i - 1) * 5
  local rate = tonumber(ARGV[a + 3])
  local state = redis.call('HMGET', key, 'l', 't')
  local level, stamp = 0, now
  if state[1] then
    level = tonumber(state[1])
    local t = tonumber(state[2])
    if rate > 0 then level = math.max(0, level - rate * math.max(0, now - t)) end
    stamp = math.max(t, now)
  elseif ARGV[a + 5] == '1' then
    missing[#missing + 1] = i
  end
  levels[i], stamps[i] = level, stamp
end
local out = {}
for i = 1, #KEYS do out[i] = string.format('%.17g', levels[i]) end
if #missing > 0 then return {0, missing, {}, out} end
for i = 1, #KEYS do
  local a = 1 + (i - 1) * 5
  local amount = tonumber(ARGV[a + 1])
  if amount > 0 and levels[i] + amount > tonumber(ARGV[a + 2]) + tonumber(ARGV[#ARGV]) then
    refused[#refused + 1] = i
  end
end
if #refused > 0 then return {0, {}, refused, out} end
for i, key in ipairs(KEYS) do
  local a = 1 + (i - 1) * 5
  local level = levels[i] + tonumber(ARGV[a + 1])
  redis.call('HSET', key, 'l', string.format('%.17g', level), 't', string.format('%.17g', stamps[i]))
  redis.call('PEXPIRE', key, ARGV[a + 4])
end
return {1, {}, {}, out}
"""

# ARGV: now, then per key: delta, rate, ttl in ms. Absent counters stay absent.
ADJUST = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local a = 1 + (i - 1) * 3
  local state = redis.call('HMGET', key, 'l', 't')
  if state[1] then
    local level, t = tonumber(state[1]), tonumber(state[2])
    local rate = tonumber(ARGV[a + 2])
    if rate > 0 then level = math.max(0, level - rate * math.max(0, now - t)) end
    level = math.max(0, level + tonumber(ARGV[a + 1]))
    redis.call('HSET', key, 'l', string.format('%.17g', level), 't', string.format('%.17g', math.max(t, now)))
    redis.call('PEXPIRE', key, ARGV[a + 3])
  end
end
return 0
"""

# ARGV: level, now, ttl in ms. Sets the counter only when it is absent.
LOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'l', ARGV[1], 't', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _num(value: float) -> str:
    return repr(float(value))


class RedisCounters(Counters):
    """Counters on the Redis server at ``url`` (``redis://host:6379/0``, ``rediss://`` for TLS)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: Redis | None = None

    async def start(self) -> None:
        if self._redis is None:
            redis = Redis.from_url(self.url)
            self._scripts = {name: redis.register_script(text) for name, text in _SCRIPTS.items()}
            self._redis = redis

    async def aclose(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    def _client(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("the Redis counters are not started")
        return self._redis

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        self._client()
        return await self._scripts[script](keys=list(keys), args=list(args))

    async def reserve(self, charges: Sequence[Charge], now: float) -> Reserved:
        if not charges:
            return Reserved(admitted=True)
        args: list[Any] = [_num(now)]
        for charge in charges:
            args += [charge.amount, charge.limit, _num(charge.rate), _ms(charge.ttl), 1 if charge.loaded else 0]
        args.append(_num(EPSILON))
        admitted, missing, refused, levels = await self._run("reserve", [c.key for c in charges], args)
        return Reserved(
            admitted=bool(admitted),
            levels=tuple(float(level) for level in levels),
            # Lua counts from 1.
            refused=tuple(int(i) - 1 for i in refused),
            missing=tuple(int(i) - 1 for i in missing),
        )

    async def adjust(self, adjustments: Sequence[Adjustment], now: float) -> None:
        if not adjustments:
            return
        args: list[Any] = [_num(now)]
        for adjustment in adjustments:
            args += [adjustment.delta, _num(adjustment.rate), _ms(adjustment.ttl)]
        await self._run("adjust", [a.key for a in adjustments], args)

    async def load(self, key: str, level: int, ttl: float, now: float) -> bool:
        return bool(await self._run("load", [key], [level, _num(now), _ms(ttl)]))

    async def level(self, key: str, rate: float, now: float) -> float | None:
        level, updated = await self._client().hmget(key, ["l", "t"])
        if level is None or updated is None:
            return None
        return drained(float(level), rate, now - float(updated))


_SCRIPTS = {"reserve": RESERVE, "adjust": ADJUST, "load": LOAD}
