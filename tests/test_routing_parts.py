"""The parts routing is made of, one by one: retry verdicts and Retry-After, conditions, the breaker's
states, the figures' window, and the figures shared between processes through a real Redis."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from relaygate import Gateway
from relaygate.errors import InvalidRequestError, UpstreamConnectionError, UpstreamError, UpstreamTimeoutError
from relaygate.providers import build_providers
from relaygate.routing import CircuitBreaker, ModelRouter, TargetMetrics
from relaygate.routing.conditions import Facts, matches, parse_when
from relaygate.routing.metrics import BUCKET_SECONDS, WINDOW_BUCKETS
from relaygate.routing.retry import Verdict, backoff, retry_after, verdict
from relaygate.routing.shared import RedisMetricsSync
from relaygate.settings import BreakerSettings, RetrySettings, Settings
from tests.servers import free_port


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- what is retried ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (UpstreamError("x", status=500), Verdict.RETRY),
        (UpstreamError("x", status=503, code="overloaded"), Verdict.RETRY),
        (UpstreamError("x", status=429, code="rate_limit_exceeded"), Verdict.RETRY),
        (UpstreamError("x", status=408), Verdict.RETRY),
        (UpstreamTimeoutError("x"), Verdict.RETRY),
        (UpstreamConnectionError("x"), Verdict.RETRY),
        (UpstreamError("x", status=401, code="provider_auth_error"), Verdict.NEXT),
        (UpstreamError("x", status=429, code="insufficient_quota"), Verdict.NEXT),
        (UpstreamError("x", status=500, headers=[(b"x-should-retry", b"false")]), Verdict.NEXT),
        (UpstreamError("x", status=400), Verdict.STOP),
        (UpstreamError("x", status=404, code="model_not_found"), Verdict.STOP),
        (UpstreamError("x", status=413), Verdict.STOP),
        (UpstreamError("x", status=422), Verdict.STOP),
        (InvalidRequestError("the gateway's own refusal"), Verdict.STOP),
    ],
)
def test_what_is_retried(error: UpstreamError, expected: Verdict) -> None:
    assert verdict(error) is expected


def test_retry_after_in_seconds_milliseconds_or_as_an_http_date() -> None:
    def asked(*headers: tuple[bytes, bytes]) -> float | None:
        return retry_after(UpstreamError("x", status=429, headers=headers), now=1_700_000_000.0)

    assert asked((b"retry-after", b"7")) == 7.0
    assert asked((b"retry-after-ms", b"250"), (b"retry-after", b"7")) == 0.25
    when = datetime.fromtimestamp(1_700_000_000.0, UTC) + timedelta(seconds=90)
    assert asked((b"retry-after", format_datetime(when, usegmt=True).encode())) == pytest.approx(90)
    assert asked((b"retry-after", b"Thu, 01 Jan 1970 00:00:00 GMT")) == 0.0
    assert asked((b"retry-after", b"soon")) is None
    assert asked() is None


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    settings = RetrySettings(backoff=1.0, max_backoff=4.0)
    rng = random.Random(1)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        waits = [backoff(settings, failures, rng) for _ in range(200)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert max(waits) - min(waits) > ceiling / 4, "jittered"


# --- conditions ---------------------------------------------------------------------------------------


FACTS = Facts(
    user={"id": "7", "tier": "gold", "tags": ["coding", "beta"], "age": 30},
    headers={"x-region": "eu", "x-priority": "1"},
    params={"max_tokens": 2000, "stream": True, "temperature": 0.2},
    project="proj-a",
)


@pytest.mark.parametrize(
    ("when", "holds"),
    [
        ({"user.tier": "gold"}, True),
        ({"user.tier": ["silver", "gold"]}, True),
        ({"user.tags": "beta"}, True),
        ({"user.tags": {"contains": "coding"}}, True),
        ({"user.tags": {"in": ["x", "beta"]}}, True),
        ({"user.age": {"gte": 30}, "user.id": "7"}, True),
        ({"user.age": {"gt": 30}}, False),
        ({"header.x-region": "eu", "header.X-Priority": 1}, True),
        ({"param.max_tokens": {"gt": 1000}, "param.stream": True}, True),
        ({"param.stream": 1}, False),
        ({"param.temperature": {"lt": 0.5}}, True),
        ({"param.tools": {"exists": False}}, True),
        ({"param.tools": {"ne": "x"}}, True),
        ({"param.tools": "x"}, False),
        ({"project": "proj-a"}, True),
        ({"user.tier": {"not_in": ["gold"]}}, False),
        ({"user.name": {"contains": "a"}}, False),
    ],
)
def test_conditions(when: dict[str, Any], holds: bool) -> None:
    assert matches(parse_when(when), FACTS) is holds


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ({}, "at least one condition"),
        ({"tier": "gold"}, "unknown fact 'tier'"),
        ({"user.": "gold"}, "unknown fact"),
        ({"user.tier": {"like": "g%"}}, "unknown operator 'like'"),
        ({"user.tier": {"eq": 1, "ne": 2}}, "one operator"),
        ({"user.age": {"gt": "30"}}, "gt needs a number"),
        ({"user.tier": {"in": "gold"}}, "in needs a list"),
        ({"user.tier": {"exists": "yes"}}, "exists needs true or false"),
    ],
)
def test_bad_conditions_are_named(when: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_when(when)


# --- the breaker --------------------------------------------------------------------------------------


def test_the_breaker_opens_cools_down_and_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerSettings(failures=3, cooldown=10), clock=clock)
    for _ in range(2):
        breaker.failed("p/m")
    breaker.succeeded("p/m")  # consecutive failures only
    for _ in range(3):
        assert breaker.acquire("p/m")
        breaker.failed("p/m")
    assert breaker.state("p/m") == "open" and not breaker.available("p/m")
    assert breaker.retry_after("p/m") == 10
    clock.now += 10
    assert breaker.state("p/m") == "half_open"
    assert breaker.acquire("p/m"), "the trial"
    assert not breaker.acquire("p/m"), "one trial at a time"
    breaker.released("p/m")  # the trial's client left: the next request may try
    assert breaker.acquire("p/m")
    breaker.failed("p/m")
    assert breaker.state("p/m") == "open" and breaker.retry_after("p/m") == 10
    clock.now += 10
    assert breaker.acquire("p/m")
    breaker.succeeded("p/m")
    assert breaker.state("p/m") == "closed" and breaker.acquire("p/m") and breaker.acquire("p/m")
    assert breaker.available("other/model")


def test_a_disabled_breaker_never_opens() -> None:
    breaker = CircuitBreaker(BreakerSettings(enabled=False, failures=1))
    for _ in range(5):
        breaker.failed("p/m")
    assert breaker.available("p/m") and breaker.state("p/m") == "closed"


# --- figures ------------------------------------------------------------------------------------------


def test_figures_are_means_over_the_last_minute() -> None:
    clock = Clock()
    metrics = TargetMetrics(clock=clock)
    assert metrics.figure("p/m", "latency") is None
    metrics.record("p/m", failed=False, latency=1.0, ttft=0.2)
    metrics.record("p/m", failed=False, latency=3.0, ttft=0.4)
    metrics.record("p/m", failed=True)
    assert metrics.figure("p/m", "latency") == 2.0
    assert metrics.figure("p/m", "ttft") == pytest.approx(0.3)
    assert metrics.figure("p/m", "error_rate") == pytest.approx(1 / 3)
    clock.now += BUCKET_SECONDS * WINDOW_BUCKETS
    assert metrics.figure("p/m", "latency") is None, "forgotten: measured afresh"


def test_a_failure_counts_its_time_against_the_figures_it_did_not_measure() -> None:
    metrics = TargetMetrics(clock=Clock())
    metrics.record("p/m", failed=True, elapsed=0.3)  # timed out: no answer, no first chunk
    # Only failures: not unmeasured (None, tried first) but infinitely slow (tried last).
    assert metrics.figure("p/m", "latency") == metrics.figure("p/m", "ttft") == math.inf
    assert metrics.figure("p/m", "error_rate") == 1.0
    metrics.record("p/m", failed=False, latency=0.1, ttft=0.1)
    # Time spent per answer: the timeout's 0.3 s and the answer's 0.1 s for one answer.
    assert metrics.figure("p/m", "latency") == pytest.approx(0.4)
    metrics.record("p/m", failed=True, ttft=0.05, elapsed=0.2)  # a stream that broke after its first chunk
    assert metrics.figure("p/m", "latency") == pytest.approx(0.6)
    assert metrics.figure("p/m", "ttft") == pytest.approx((0.3 + 0.1 + 0.05) / 2)


def test_optimized_ranks_an_unmeasured_target_first_and_one_that_only_failed_last() -> None:
    settings = Settings(
        providers={"up": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"}},
        models={"fast": {"strategy": "optimized", "explore": 0, "targets": ["up/failing", "up/steady", "up/new"]}},
    )
    metrics = TargetMetrics(clock=Clock())
    router = ModelRouter(build_providers(settings), models=settings.models, metrics=metrics)
    metrics.record("up/failing", failed=True, elapsed=0.001)
    metrics.record("up/steady", failed=False, latency=0.5, ttft=0.5)
    keys = [target.key for target in router.plan("fast", {}).targets]
    assert keys == ["up/new", "up/steady", "up/failing"]


# --- shared through Redis -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_processes_share_their_figures_through_redis(redis_url: str) -> None:
    prefix = f"relaygate-test:{uuid.uuid4().hex}"
    clock = Clock(float(int(datetime.now(UTC).timestamp())))
    one, two = TargetMetrics(clock=clock), TargetMetrics(clock=clock)
    keys = ["mock/slow", "mock/fast"]
    syncs = [RedisMetricsSync(m, redis_url, keys=lambda: keys, prefix=prefix) for m in (one, two)]
    try:
        # Only process one has called the targets; process two learns their figures from Redis.
        one.record("mock/slow", failed=False, latency=2.0)
        one.record("mock/fast", failed=False, latency=0.1)
        two.record("mock/fast", failed=True)
        for sync in syncs:
            await sync.sync()
        await syncs[0].sync()
        for metrics in (one, two):
            assert metrics.figure("mock/slow", "latency") == 2.0
            assert metrics.figure("mock/fast", "latency") == pytest.approx(0.1)
            assert metrics.figure("mock/fast", "error_rate") == 0.5
        # Process two's router orders by the shared figures, though it never called the slow target.
        settings = Settings(
            models={"quick": {"strategy": "optimized", "explore": 0, "targets": ["mock/slow", "mock/fast"]}}
        )
        router = ModelRouter(build_providers(settings), models=settings.models, metrics=two)
        assert [t.key for t in router.plan("quick", {}).targets] == ["mock/fast", "mock/slow"]
        lonely = ModelRouter(build_providers(settings), models=settings.models, metrics=TargetMetrics(clock=clock))
        assert [t.key for t in lonely.plan("quick", {}).targets] == ["mock/slow", "mock/fast"], "unmeasured"
    finally:
        for sync in syncs:
            await sync.stop()
        client: Redis = Redis.from_url(redis_url)
        stale = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if stale:
            await client.delete(*stale)
        await client.aclose()


@pytest.mark.anyio
async def test_an_unreachable_redis_leaves_each_process_its_own_figures() -> None:
    metrics = TargetMetrics()
    sync = RedisMetricsSync(metrics, f"redis://127.0.0.1:{free_port()}/0", interval=0.01)
    metrics.record("up/m", failed=False, latency=0.5)
    with pytest.raises((RedisError, OSError)):
        await sync.sync()
    await sync.start()
    await anyio.sleep(0.1)  # the background task fails, logs once and keeps going
    await sync.stop()
    assert metrics.figure("up/m", "latency") == 0.5


@pytest.mark.anyio
async def test_a_gateway_with_redis_counters_shares_its_figures_while_it_runs(redis_url: str) -> None:
    gateway = Gateway(Settings(counters=redis_url, database=None, models={"m": {"targets": ["mock/echo"]}}))
    assert gateway.metrics_sync is not None and gateway.router.metrics.sharing
    async with gateway.lifespan():
        await gateway.metrics_sync.sync()
    assert Gateway(Settings()).metrics_sync is None
