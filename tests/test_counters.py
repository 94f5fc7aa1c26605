"""Both counter backends against one suite: in process, and the real Redis server on 127.0.0.1:6379.

Time is passed to every operation, so the tests move a clock by hand instead of sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import pytest

from relaygate.counters import (
    DEFAULT_PREFIX,
    Adjustment,
    Charge,
    Counters,
    InProcessCounters,
    RedisCounters,
    open_counters,
    split_counters_url,
)
from relaygate.counters.memory import SWEEP_EVERY

pytestmark = pytest.mark.anyio

T0 = 1_750_000_000.0


@dataclass
class Under:
    counters: Counters
    key: Callable[[str], str]


@pytest.fixture(params=["memory", "redis"])
async def under(request: pytest.FixtureRequest) -> AsyncIterator[Under]:
    if request.param == "memory":
        counters: Counters = InProcessCounters()
        prefix = "t"
    else:
        prefix = request.getfixturevalue("redis_prefix")
        counters = RedisCounters(request.getfixturevalue("redis_url"))
    async with counters:
        yield Under(counters, lambda name: f"{prefix}:{name}")


def rate(key: str, amount: int, per_minute: int, **kw: object) -> Charge:
    return Charge(key, amount, per_minute, rate=per_minute / 60, ttl=61, **kw)  # type: ignore[arg-type]


def budget(key: str, amount: int, limit: int, *, loaded: bool = True) -> Charge:
    return Charge(key, amount, limit, ttl=3600, loaded=loaded)


async def test_a_charge_is_admitted_up_to_its_limit_and_not_beyond(under: Under) -> None:
    c, k = under.counters, under.key("b")
    assert (await c.reserve([budget(k, 4, 10, loaded=False)], T0)).admitted
    second = await c.reserve([budget(k, 6, 10, loaded=False)], T0)
    assert second.admitted and second.levels == (4.0,)
    refused = await c.reserve([budget(k, 1, 10, loaded=False)], T0)
    assert not refused.admitted and refused.refused == (0,) and refused.levels == (10.0,)
    assert await c.level(k, 0, T0) == 10


async def test_several_charges_are_all_taken_or_none(under: Under) -> None:
    c, a, b = under.counters, under.key("a"), under.key("b")
    assert (await c.reserve([budget(a, 5, 10, loaded=False), budget(b, 9, 10, loaded=False)], T0)).admitted
    refused = await c.reserve([budget(a, 5, 10, loaded=False), budget(b, 2, 10, loaded=False)], T0)
    assert not refused.admitted and refused.refused == (1,) and refused.levels == (5.0, 9.0)
    assert await c.level(a, 0, T0) == 5 and await c.level(b, 0, T0) == 9


async def test_a_zero_charge_passes_a_full_counter(under: Under) -> None:
    c, k = under.counters, under.key("z")
    assert (await c.reserve([budget(k, 10, 10, loaded=False)], T0)).admitted
    assert (await c.reserve([budget(k, 0, 10, loaded=False)], T0)).admitted


async def test_a_rate_counter_drains_at_its_rate(under: Under) -> None:
    c, k = under.counters, under.key("rpm")
    for _ in range(60):
        assert (await c.reserve([rate(k, 1, 60)], T0)).admitted
    assert not (await c.reserve([rate(k, 1, 60)], T0)).admitted
    # One request a second drains back: after 1.5 s there is room for one, not two.
    assert await c.level(k, 1.0, T0 + 1.5) == pytest.approx(58.5)
    assert (await c.reserve([rate(k, 1, 60)], T0 + 1.5)).admitted
    assert not (await c.reserve([rate(k, 1, 60)], T0 + 1.5)).admitted
    assert await c.level(k, 1.0, T0 + 62) == 0


async def test_a_clock_behind_the_last_update_drains_nothing(under: Under) -> None:
    c, k = under.counters, under.key("skew")
    assert (await c.reserve([rate(k, 30, 60)], T0)).admitted
    late = await c.reserve([rate(k, 30, 60)], T0 - 5)  # another machine's clock, 5 s behind
    assert late.levels == (30.0,)
    assert await c.level(k, 1.0, T0) == pytest.approx(60)


async def test_adjust_moves_a_counter_both_ways_and_stops_at_zero(under: Under) -> None:
    c, k = under.counters, under.key("adj")
    await c.reserve([budget(k, 7, 10, loaded=False)], T0)
    await c.adjust([Adjustment(k, -3, ttl=3600)], T0)
    assert await c.level(k, 0, T0) == 4
    await c.adjust([Adjustment(k, 2, ttl=3600)], T0)
    assert await c.level(k, 0, T0) == 6
    await c.adjust([Adjustment(k, -100, ttl=3600)], T0)
    assert await c.level(k, 0, T0) == 0


async def test_adjusting_a_rate_counter_drains_it_first(under: Under) -> None:
    c, k = under.counters, under.key("tpm")
    await c.reserve([rate(k, 600, 600)], T0)
    await c.adjust([Adjustment(k, -100, rate=10, ttl=61)], T0 + 30)  # drained to 300, then 100 back
    assert await c.level(k, 10, T0 + 30) == pytest.approx(200)


async def test_adjusting_an_absent_counter_leaves_it_absent(under: Under) -> None:
    c, k = under.counters, under.key("gone")
    await c.adjust([Adjustment(k, 5, ttl=60)], T0)
    assert await c.level(k, 0, T0) is None


async def test_a_loaded_counter_is_missing_until_loaded_once(under: Under) -> None:
    c, k, other = under.counters, under.key("day"), under.key("rpm")
    first = await c.reserve([rate(other, 1, 10), budget(k, 3, 10)], T0)
    assert not first.admitted and first.missing == (1,) and first.refused == ()
    assert await c.level(other, 0, T0) is None  # nothing was charged
    assert await c.load(k, 6, 3600, T0) is True
    assert await c.load(k, 1, 3600, T0) is False  # a second loader (another gateway) changes nothing
    assert (await c.reserve([budget(k, 3, 10)], T0)).admitted
    assert not (await c.reserve([budget(k, 2, 10)], T0)).admitted


async def test_counters_expire_after_their_ttl(under: Under) -> None:
    c, k = under.counters, under.key("short")
    await c.reserve([Charge(k, 1, 10, ttl=0.2)], T0)
    assert await c.level(k, 0, T0) == 1
    if isinstance(c, InProcessCounters):
        assert await c.level(k, 0, T0 + 0.3) is None
    else:
        await anyio.sleep(0.4)  # Redis expires keys on its own clock
        assert await c.level(k, 0, T0) is None


async def test_large_budgets_keep_every_nano_dollar(under: Under) -> None:
    c, k = under.counters, under.key("big")
    limit = 10**15  # one million dollars in nano-dollars
    await c.load(k, limit - 3, 3600, T0)
    assert (await c.reserve([budget(k, 1, limit)], T0)).admitted
    assert await c.level(k, 0, T0) == limit - 2
    assert (await c.reserve([budget(k, 2, limit)], T0)).admitted
    assert not (await c.reserve([budget(k, 1, limit)], T0)).admitted


async def test_concurrent_reservations_admit_exactly_the_limit(under: Under) -> None:
    c, k, day = under.counters, under.key("burst"), under.key("burst-day")
    admitted = 0

    async def one() -> None:
        nonlocal admitted
        if (await c.reserve([rate(k, 1, 10), budget(day, 3, 30, loaded=False)], T0)).admitted:
            admitted += 1

    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(one)
    assert admitted == 10
    assert await c.level(k, 0, T0) == 10 and await c.level(day, 0, T0) == 30


async def test_in_process_counters_sweep_expired_ones() -> None:
    counters = InProcessCounters()
    for i in range(SWEEP_EVERY - 1):
        await counters.reserve([Charge(f"k{i}", 1, 10, ttl=1)], T0)
    await counters.reserve([Charge("last", 1, 10, ttl=1)], T0 + 5)
    assert len(counters._counters) == 1


def test_the_counters_url_chooses_the_backend_and_the_prefix() -> None:
    counters, prefix = open_counters(None)
    assert isinstance(counters, InProcessCounters) and prefix == DEFAULT_PREFIX
    counters, prefix = open_counters("redis://127.0.0.1:6379/2?prefix=team-a&socket_timeout=5")
    assert isinstance(counters, RedisCounters) and prefix == "team-a"
    assert counters.url == "redis://127.0.0.1:6379/2?socket_timeout=5"
    assert open_counters("rediss://cache:6380/0")[1] == DEFAULT_PREFIX
    assert split_counters_url("redis://h:6379/0?prefix=a") == ("redis://h:6379/0", "a")
    with pytest.raises(ValueError, match="redis://"):
        open_counters("memcached://x")
