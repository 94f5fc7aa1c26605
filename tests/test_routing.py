"""Routing, fallbacks and retries through the whole stack, against fake upstreams on 127.0.0.1.

The upstreams are real HTTP servers: the fake OpenAI-compatible server (``tests/fakes/openai_server.py``,
whose model names and scripts choose its answers), the same server behind providers with short
timeouts, the fake Anthropic server (529 overloaded), and a closed port for a refused connection.
Backoffs are made tiny here, so no test waits on them; the one wait asserted is a ``Retry-After``,
measured loosely as a minimum.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from relaygate import ConfigError, Gateway, get_context, load_settings
from relaygate.context import Attempt, RequestContext
from relaygate.settings import ProviderSettings, Settings
from tests.asgi import Exchange, http_scope, run
from tests.fakes.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import free_port, serve_in_thread
from tests.test_telemetry import Recorded

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}
HI = [{"role": "user", "content": "Hi"}]
TINY_RETRY = {"backoff": 0.001, "max_backoff": 0.005}


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[str]:
    with serve_in_thread(FakeAnthropic()) as base_url:
        yield base_url + "/v1"


def routing_settings(upstream_url: str, anthropic_url: str = "http://127.0.0.1:9/v1", **overrides: Any) -> Settings:
    """Providers on the fake server (``upstream``, ``slow`` with a 0.3 s read timeout, ``hasty`` with a
    0.3 s first-chunk timeout), ``dead`` on a closed port, ``claude`` on the fake Anthropic server."""
    openai = {"kind": "openai", "base_url": upstream_url, "api_key": "sk-test"}
    providers = {
        "upstream": ProviderSettings(**openai),
        "slow": ProviderSettings(**openai, timeouts={"read": 0.3}),
        "hasty": ProviderSettings(**openai, timeouts={"first_chunk": 0.3}),
        "dead": ProviderSettings(**{**openai, "base_url": f"http://127.0.0.1:{free_port()}/v1"}),
        "claude": ProviderSettings(kind="anthropic", base_url=anthropic_url, api_key=ANTHROPIC_KEY),
    }
    retry = {**TINY_RETRY, **overrides.pop("retry", {})}
    return Settings(providers=providers, retry=retry, **overrides)


async def serving(settings: Settings, **gateway: Any) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    built = Gateway(settings, **gateway)
    async with built.lifespan():
        transport = httpx.ASGITransport(app=built.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield built, client


async def chat(client: httpx.AsyncClient, model: str, **params: Any) -> httpx.Response:
    return await client.post("/v1/chat/completions", json={"model": model, "messages": HI, **params})


async def exchange(
    gateway: Gateway, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[Exchange, RequestContext]:
    """One request driven by hand, so that its context (attempts, route) can be read afterwards."""
    scope = http_scope("/v1/chat/completions", headers={**JSON, **(headers or {})})
    done = await run(gateway.app, scope, Exchange(orjson.dumps(body)))
    return done, get_context(scope)


def outcomes(ctx: RequestContext) -> list[tuple[str, int | None, str | None, bool]]:
    return [(f"{a.provider}/{a.model}", a.status, a.error, a.retried) for a in ctx.attempts]


# --- fallbacks -----------------------------------------------------------------------------------------


async def test_a_virtual_model_falls_back_on_a_500_and_says_who_answered(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    settings = routing_settings(upstream_url, models={"smart": {"targets": ["upstream/status-500", "upstream/gpt-4o"]}})
    async for gateway, _ in serving(settings):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI})
    assert done.status == 200
    assert orjson.loads(done.text)["choices"][0]["message"]["content"]
    assert done.headers["x-model-name"] == "gpt-4o"
    assert done.headers["x-provider-name"] == "upstream"
    assert done.headers["x-relaygate-attempts"] == "2"
    assert fake_upstream.models_seen() == ["status-500", "gpt-4o"]
    assert outcomes(ctx) == [("upstream/status-500", 500, "fake_500", True), ("upstream/gpt-4o", 200, None, False)]
    assert ctx.route is not None and (ctx.route.model, ctx.route.requested) == ("gpt-4o", "smart")
    assert all(isinstance(a, Attempt) and a.duration >= 0 for a in ctx.attempts)


async def test_a_plain_model_gets_two_retries_on_the_same_target_by_default(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.script("flaky", "500", "503")
    async for _, client in serving(routing_settings(upstream_url)):
        answered = await chat(client, "upstream/flaky")
        fake_upstream.script("broken-thrice", "500", "502", "503", "ok")
        failed = await chat(client, "upstream/broken-thrice")
    assert answered.status_code == 200 and answered.headers["x-relaygate-attempts"] == "3"
    # Three attempts in all, then the last failure is the answer.
    assert failed.status_code == 503 and failed.headers["x-relaygate-attempts"] == "3"
    assert failed.json()["error"]["code"] == "fake_503"
    assert fake_upstream.models_seen() == ["flaky"] * 3 + ["broken-thrice"] * 3


async def test_a_429_is_retried_after_its_retry_after(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    fake_upstream.script("limited", "429:1")
    async for _, client in serving(routing_settings(upstream_url)):
        started = time.monotonic()
        response = await chat(client, "upstream/limited")
        waited = time.monotonic() - started
    assert response.status_code == 200 and response.headers["x-relaygate-attempts"] == "2"
    assert waited >= 0.9, "Retry-After: 1 is a minimum wait, whatever the (tiny) backoff says"


async def test_a_virtual_model_falls_back_on_a_429_to_the_next_target_at_once(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.script("busy", "429:20")
    settings = routing_settings(upstream_url, models={"smart": {"targets": ["upstream/busy", "upstream/gpt-4o"]}})
    async for gateway, _ in serving(settings):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI})
    assert done.status == 200
    # The other target needs no wait: only the busy one asked for 20 s.
    assert outcomes(ctx) == [("upstream/busy", 429, "fake_429", True), ("upstream/gpt-4o", 200, None, False)]


async def test_a_retry_after_beyond_the_cap_is_answered_not_waited(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.script("throttled", "429:120")
    async for _, client in serving(routing_settings(upstream_url, retry={"max_retry_after": 30})):
        response = await chat(client, "upstream/throttled")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "120"
    assert response.headers["x-relaygate-attempts"] == "1"
    assert fake_upstream.models_seen() == ["throttled"]


async def test_fallback_on_a_timeout(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    settings = routing_settings(upstream_url, models={"smart": {"targets": ["slow/sleep-2", "upstream/gpt-4o"]}})
    async for gateway, _ in serving(settings):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI})
    assert done.status == 200 and done.headers["x-provider-name"] == "upstream"
    assert outcomes(ctx)[0] == ("slow/sleep-2", None, "upstream_timeout", True)


async def test_fallback_on_a_refused_connection(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    settings = routing_settings(upstream_url, models={"smart": {"targets": ["dead/gpt-4o", "upstream/gpt-4o"]}})
    async for gateway, _ in serving(settings):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI})
    assert done.status == 200 and done.headers["x-provider-name"] == "upstream"
    assert outcomes(ctx)[0] == ("dead/gpt-4o", None, "upstream_connection_error", True)


async def test_anthropic_overloaded_529_falls_back(
    upstream_url: str, anthropic_server: str, fake_upstream: FakeOpenAI
) -> None:
    settings = routing_settings(
        upstream_url, anthropic_server, models={"smart": {"targets": ["claude/status-529", "upstream/gpt-4o"]}}
    )
    async for gateway, _ in serving(settings):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI})
    assert done.status == 200
    assert outcomes(ctx)[0] == ("claude/status-529", 503, "overloaded", True)


@pytest.mark.parametrize("status", [400, 404, 413, 422])
async def test_a_client_error_is_never_retried_nor_sent_elsewhere(
    upstream_url: str, fake_upstream: FakeOpenAI, status: int
) -> None:
    failing = f"upstream/status-{status}"
    settings = routing_settings(upstream_url, models={"smart": {"targets": [failing, "upstream/gpt-4o"]}})
    async for _, client in serving(settings):
        plain = await chat(client, failing)
        routed = await chat(client, "smart")
    assert plain.status_code == routed.status_code == status
    assert routed.headers["x-relaygate-attempts"] == "1" and routed.headers["x-model-name"] == f"status-{status}"
    assert fake_upstream.models_seen() == [f"status-{status}"] * 2


async def test_refused_provider_credentials_move_on_but_are_not_retried(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    settings = routing_settings(upstream_url, models={"smart": {"targets": ["upstream/status-401", "upstream/gpt-4o"]}})
    async for _, client in serving(settings):
        plain = await chat(client, "upstream/status-401")
        routed = await chat(client, "smart")
    assert plain.status_code == 401 and plain.json()["error"]["code"] == "provider_auth_error"
    assert routed.status_code == 200
    assert fake_upstream.models_seen() == ["status-401", "status-401", "gpt-4o"]


async def test_no_attempt_starts_after_the_deadline(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    fake_upstream.script("late", "500", "500")
    retry = {"backoff": 2.0, "max_backoff": 2.0, "deadline": 0.5}
    async for _, client in serving(routing_settings(upstream_url, retry=retry)):
        response = await chat(client, "upstream/late")
    # The retry would have waited at least 1 s, past the deadline: the first failure is the answer.
    assert response.status_code == 500 and response.headers["x-relaygate-attempts"] == "1"


async def test_target_overrides_set_and_remove_request_parameters(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    target = {"model": "upstream/gpt-4o-mini", "temperature": 0.1, "top_p": None, "max_tokens": 64}
    settings = routing_settings(upstream_url, models={"tuned": {"targets": [target]}})
    async for _, client in serving(settings):
        response = await chat(client, "tuned", temperature=0.9, top_p=0.5)
    assert response.status_code == 200
    sent = fake_upstream.last("/chat/completions").body
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == ("gpt-4o-mini", 0.1, 64)
    assert "top_p" not in sent


# --- strategies ---------------------------------------------------------------------------------------


async def test_percentage_routing_follows_the_weights(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    """500 calls split 80/20: the first target's share must be within 0.80 ± 0.05 (the binomial standard
    deviation is 0.018, so this is 2.8 of them; the seeded RNG makes the run repeatable anyway)."""
    settings = routing_settings(
        upstream_url,
        models={"ab": {"strategy": "percentage", "targets": ["upstream/a", "upstream/b"], "weights": [80, 20]}},
    )
    counts = {"a": 0, "b": 0}
    async for _, client in serving(settings, rng=random.Random(20240601)):
        for _ in range(500):
            response = await chat(client, "ab")
            counts[response.headers["x-model-name"]] += 1
    assert abs(counts["a"] / 500 - 0.80) <= 0.05, counts


async def test_percentage_weights_also_order_the_fallbacks(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    models = {"ab": {"strategy": "percentage", "targets": ["upstream/status-503", "upstream/b"], "weights": [1, 0]}}
    async for _, client in serving(routing_settings(upstream_url, models=models, retry={"max_attempts": 2})):
        response = await chat(client, "ab")
    # Weight 0 is a fallback only: tried after the weighted target failed.
    assert response.status_code == 200 and fake_upstream.models_seen() == ["status-503", "b"]


async def test_random_routing_reaches_every_target(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    models = {"any": {"strategy": "random", "targets": ["upstream/r1", "upstream/r2", "upstream/r3"]}}
    async for _, client in serving(routing_settings(upstream_url, models=models), rng=random.Random(7)):
        seen = {(await chat(client, "any")).headers["x-model-name"] for _ in range(60)}
    assert seen == {"r1", "r2", "r3"}


async def test_optimized_latency_moves_traffic_to_the_faster_target(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    # sleep-0.3 answers after 300 ms; gpt-4o at once. Each is measured once (unmeasured targets go
    # first), then the faster one takes every call (explore: 0 keeps this test deterministic).
    models = {
        "fast": {
            "strategy": "optimized",
            "metric": "latency",
            "explore": 0,
            "targets": ["upstream/sleep-0.3", "upstream/gpt-4o"],
        }
    }
    async for gateway, client in serving(routing_settings(upstream_url, models=models)):
        answered = [(await chat(client, "fast")).headers["x-model-name"] for _ in range(12)]
        slow = gateway.router.metrics.figure("upstream/sleep-0.3", "latency")
        fast = gateway.router.metrics.figure("upstream/gpt-4o", "latency")
    assert answered[:2] == ["sleep-0.3", "gpt-4o"]
    assert answered[2:] == ["gpt-4o"] * 10
    assert slow is not None and fast is not None and slow > fast


async def test_optimized_error_rate_avoids_the_failing_target(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    models = {
        "steady": {
            "strategy": "optimized",
            "metric": "error_rate",
            "explore": 0,
            "targets": ["upstream/status-503", "upstream/gpt-4o"],
        }
    }
    async for _, client in serving(routing_settings(upstream_url, models=models)):
        statuses = [(await chat(client, "steady")).status_code for _ in range(8)]
    assert statuses == [200] * 8
    assert fake_upstream.models_seen().count("status-503") == 1, "measured once, then avoided"


@pytest.mark.parametrize(
    ("metric", "failing", "stream", "breaker"),
    [
        ("latency", "slow/sleep-2", False, {}),  # times out (timeouts.read 0.3 s)
        ("ttft", "upstream/status-503", False, {"enabled": False}),
        ("ttft", "hasty/sleep-2", True, {"enabled": False}),  # first chunk later than 0.3 s
    ],
    ids=["latency-timeout", "ttft-503-breaker-off", "ttft-stream-first-chunk-timeout"],
)
async def test_optimized_by_time_leaves_a_target_that_only_fails(
    upstream_url: str, fake_upstream: FakeOpenAI, metric: str, failing: str, stream: bool, breaker: dict[str, Any]
) -> None:
    # A failure used to record no time, so a failing target stayed "unmeasured" and was ranked first on
    # every request (with the breaker off), or after every cooldown.
    models = {
        "fast": {"strategy": "optimized", "metric": metric, "explore": 0, "targets": [failing, "upstream/gpt-4o"]}
    }
    async for gateway, client in serving(routing_settings(upstream_url, models=models, breaker=breaker)):
        statuses = [(await chat(client, "fast", stream=stream)).status_code for _ in range(6)]
        figure = gateway.router.metrics.figure(failing, metric)  # type: ignore[arg-type]
    assert statuses == [200] * 6
    # Tried once, unmeasured; then, having only failed, ranked last.
    assert fake_upstream.models_seen() == [failing.partition("/")[2]] + ["gpt-4o"] * 6
    assert figure == math.inf


async def test_optimized_cost_prefers_the_cheaper_model(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    models = {
        "cheap": {"strategy": "optimized", "metric": "cost", "targets": ["upstream/gpt-4o", "upstream/gpt-4o-mini"]}
    }
    async for _, client in serving(routing_settings(upstream_url, models=models), rng=random.Random(3)):
        # explore (5 % by default) may send a call to gpt-4o now and then; most go to the cheaper model.
        names = [(await chat(client, "cheap")).headers["x-model-name"] for _ in range(40)]
    assert names.count("gpt-4o-mini") >= 30


async def test_conditional_routes_by_user_header_and_parameter(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    models = {
        "tiered": {
            "strategy": "conditional",
            "routes": [
                {"when": {"user.tier": "gold"}, "targets": ["upstream/gold"]},
                {"when": {"header.x-region": ["eu", "uk"]}, "targets": ["upstream/eu"]},
                {"when": {"param.max_tokens": {"gt": 1000}, "user.tags": "long"}, "targets": ["upstream/long"]},
            ],
            "targets": ["upstream/default"],
        }
    }
    async for _, client in serving(routing_settings(upstream_url, models=models)):

        async def routed(
            headers: dict[str, str] | None = None, *, on: httpx.AsyncClient = client, **params: Any
        ) -> str:
            body = {"model": "tiered", "messages": HI, **params}
            return str((await on.post("/v1/chat/completions", json=body, headers=headers)).headers["x-model-name"])

        gold = await routed(extra={"user": {"id": "1", "tier": "gold"}})
        eu = await routed({"x-region": "uk"})
        long = await routed(max_tokens=4000, extra={"user": {"tags": ["long", "beta"]}})
        short = await routed(max_tokens=100, extra={"user": {"tags": ["long"]}})
        other = await routed()
    assert (gold, eu, long, short, other) == ("gold", "eu", "long", "default", "default")


# --- the circuit breaker ------------------------------------------------------------------------------


async def test_the_breaker_opens_after_consecutive_failures_and_recovers_through_one_trial(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.script("fragile", "500", "500", "500")
    settings = routing_settings(upstream_url, retry={"max_attempts": 1}, breaker={"failures": 2, "cooldown": 0.3})
    async for gateway, client in serving(settings):
        breaker = gateway.router.breaker
        first, second = await chat(client, "upstream/fragile"), await chat(client, "upstream/fragile")
        assert (first.status_code, second.status_code) == (500, 500)
        assert breaker.state("upstream/fragile") == "open"
        # Open: refused without calling the provider, with the OpenAI error shape and a Retry-After.
        refused = await chat(client, "upstream/fragile")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "service_unavailable"
        assert fake_upstream.models_seen() == ["fragile", "fragile"]

        time.sleep(0.35)  # past the cooldown: half-open
        assert breaker.state("upstream/fragile") == "half_open"
        trial = await chat(client, "upstream/fragile")  # the script's third 500: the trial fails
        assert trial.status_code == 500 and breaker.state("upstream/fragile") == "open"

        time.sleep(0.35)
        recovered = await chat(client, "upstream/fragile")  # script used up: the trial succeeds
        assert recovered.status_code == 200 and breaker.state("upstream/fragile") == "closed"
        assert (await chat(client, "upstream/fragile")).status_code == 200


async def test_an_open_target_is_skipped_and_all_open_is_a_503(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    models = {
        "smart": {"targets": ["upstream/status-500", "upstream/gpt-4o"]},
        "doomed": {"targets": ["upstream/status-500", "upstream/status-502"], "retry": {"max_attempts": 2}},
    }
    settings = routing_settings(upstream_url, models=models, breaker={"failures": 1, "cooldown": 60})
    async for _, client in serving(settings):
        assert (await chat(client, "smart")).status_code == 200
        assert (await chat(client, "smart")).status_code == 200
        assert fake_upstream.models_seen() == ["status-500", "gpt-4o", "gpt-4o"], "the open target is skipped"
        assert (await chat(client, "doomed")).status_code == 502
        refused = await chat(client, "doomed")
    assert refused.status_code == 503
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["type"] == "server_error"
    # No attempt was made; the headers name the target back soonest, which the Retry-After is about.
    assert refused.headers["x-relaygate-attempts"] == "0"
    assert refused.headers["x-model-name"] in {"status-500", "status-502"}
    assert refused.headers["x-provider-name"] == "upstream"


# --- streams ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "step"),
    [("upstream/status-500", None), ("hasty/sleep-2", None), ("upstream/first-error", "error-first")],
    ids=["500", "first-chunk-timeout", "error-event-first"],
)
async def test_a_stream_falls_back_before_its_first_byte(
    upstream_url: str, fake_upstream: FakeOpenAI, failing: str, step: str | None
) -> None:
    if step is not None:
        fake_upstream.script(failing.partition("/")[2], step)
    settings = routing_settings(upstream_url, models={"smart": {"targets": [failing, "upstream/gpt-4o"]}})
    async for gateway, _ in serving(settings):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI, "stream": True})
    starts = [m for m in done.messages if m["type"] == "http.response.start"]
    assert len(starts) == 1 and done.status == 200
    assert done.headers["x-model-name"] == "gpt-4o" and done.headers["x-relaygate-attempts"] == "2"
    assert done.text.endswith("data: [DONE]\n\n") and '"error"' not in done.text
    assert [a.retried for a in ctx.attempts] == [True, False]
    assert ctx.error is None and ctx.finish_reasons == ["stop"]


async def test_a_stream_that_fails_after_its_first_byte_ends_cleanly_without_fallback(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    settings = routing_settings(upstream_url, models={"smart": {"targets": ["upstream/broken", "upstream/gpt-4o"]}})
    async for gateway, _ in serving(settings):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI, "stream": True})
    assert done.status == 200 and done.headers["x-model-name"] == "broken"
    assert [m["type"] for m in done.messages].count("http.response.start") == 1
    frames = done.text.strip().split("\n\n")
    assert frames[0].startswith("data: {") and "partial" in done.text
    assert orjson.loads(frames[-1].removeprefix("data: "))["error"]["code"] == "upstream_connection_error"
    assert "[DONE]" not in done.text
    assert done.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert fake_upstream.models_seen() == ["broken"], "no fallback once the client has bytes"
    assert len(ctx.attempts) == 1


# --- the deadline -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_the_deadline_cuts_off_an_attempt_still_running(
    upstream_url: str, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    settings = routing_settings(upstream_url, retry={"deadline": 0.5}, breaker={"failures": 1})
    async for gateway, _ in serving(settings):
        started = time.monotonic()
        done, ctx = await exchange(gateway, {"model": "upstream/sleep-2", "messages": HI, "stream": stream})
        took = time.monotonic() - started
        state = gateway.router.breaker.state("upstream/sleep-2")
    assert done.status == 504 and took < 1.5, (done.status, took)
    error = orjson.loads(done.text)["error"]
    assert (error["type"], error["code"]) == ("timeout_error", "deadline_exceeded")
    assert "0.5 s (retry.deadline)" in error["message"] and "upstream/sleep-2" in error["message"]
    assert done.headers["x-model-name"] == "sleep-2" and done.headers["x-relaygate-attempts"] == "1"
    assert outcomes(ctx) == [("upstream/sleep-2", None, "deadline_exceeded", False)]
    # The deadline may be a client's own: a cut attempt opens no breaker.
    assert state == "closed"


async def test_the_deadline_cuts_off_the_attempt_after_a_fallback(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    settings = routing_settings(
        upstream_url,
        retry={"deadline": 0.5},
        models={"smart": {"targets": ["upstream/status-500", "upstream/sleep-2"]}},
    )
    async for gateway, _ in serving(settings):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI})
    assert done.status == 504 and orjson.loads(done.text)["error"]["code"] == "deadline_exceeded"
    assert done.headers["x-model-name"] == "sleep-2" and done.headers["x-relaygate-attempts"] == "2"
    assert outcomes(ctx) == [
        ("upstream/status-500", 500, "fake_500", True),
        ("upstream/sleep-2", None, "deadline_exceeded", False),
    ]


async def test_a_stream_whose_first_byte_went_out_is_the_clients_past_the_deadline(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    # drip-1 sends its first chunk at once and the rest a second later, after the deadline.
    async for gateway, _ in serving(routing_settings(upstream_url, retry={"deadline": 0.5})):
        done, ctx = await exchange(gateway, {"model": "upstream/drip-1", "messages": HI, "stream": True})
    assert done.status == 200 and done.text.endswith("data: [DONE]\n\n") and '"error"' not in done.text
    assert ctx.error is None and ctx.finish_reasons == ["stop"]


async def test_a_deadline_too_short_for_any_attempt_says_so(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    router = {"type": "fallback", "targets": ["upstream/gpt-4o"], "retry": {"deadline": 1e-9}}
    async for _, client in serving(routing_settings(upstream_url)):
        response = await client.post(
            "/v1/chat/completions", json={"model": "router/dynamic", "messages": HI, "router": router}
        )
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["code"] == "deadline_exceeded" and "left no time" in error["message"]
    # Nothing is cooling down: no Retry-After, and no claim that anything is.
    assert "retry-after" not in response.headers and "cooling" not in error["message"]
    assert response.headers["x-relaygate-attempts"] == "0" and response.headers["x-model-name"] == "gpt-4o"
    assert not fake_upstream.requests


# --- the request's own router (the seeds' shape) ------------------------------------------------------


async def test_the_seed_router_object_routes_the_request(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    router = {
        "name": "kg_fallback_router",
        "type": "fallback",
        "targets": ["upstream/status-502", {"model": "upstream/gpt-4o", "temperature": 0.2}],
    }
    async for gateway, _ in serving(routing_settings(upstream_url)):
        done, ctx = await exchange(gateway, {"model": "router/dynamic", "messages": HI, "router": router})
        split, unnamed = await exchange(
            gateway,
            {
                "model": "router/dynamic",
                "messages": HI,
                "router": {
                    # LangDB's other name for percentage.
                    "type": "a_b_testing",
                    "targets": ["upstream/x", "upstream/y"],
                    "targets_percentages": [0, 100],
                },
            },
        )
    assert done.status == 200 and done.headers["x-model-name"] == "gpt-4o"
    assert fake_upstream.models_seen()[:2] == ["status-502", "gpt-4o"]
    sent = fake_upstream.requests[1].body
    assert sent["temperature"] == 0.2 and "router" not in sent
    # The router's name is kept for the record: the route (and so the ledger and spans) says router/<name>.
    assert ctx.route is not None and ctx.route.requested == "router/kg_fallback_router"
    assert split.status == 200 and split.headers["x-model-name"] == "y"
    assert unnamed.route is not None and unnamed.route.requested == "router/dynamic"


@pytest.mark.parametrize(
    ("router", "param"),
    [
        (None, "router"),
        ("fallback", "router"),
        ({"targets": ["upstream/a"]}, "router.type"),
        # The project does not allow scripts carried by requests (request_scripts: false, the default).
        ({"type": "script", "script": "const route = () => ({model: 'test'});"}, "router.script"),
        ({"type": "fallback"}, "router.targets"),
        ({"type": "fallback", "targets": []}, "router.targets"),
        ({"type": "fallback", "targets": ["upstream/a", "nowhere/b"]}, "router.targets[1]"),
        ({"type": "fallback", "targets": ["upstream/a", 7]}, "router.targets[1]"),
        ({"type": "fallback", "targets": [{"model": "upstream/a", "stream": False}]}, "router.targets[0]"),
        (
            {"type": "percentage", "targets": ["upstream/a", "upstream/b"], "targets_percentages": [100]},
            "router.targets_percentages",
        ),
        ({"type": "optimized", "metric": "vibes", "targets": ["upstream/a"]}, "router.metric"),
        (
            {"type": "conditional", "targets": ["upstream/a"], "routes": [{"when": {"user.tier": {"near": 1}}}]},
            "router.routes[0].when",
        ),
        ({"type": "fallback", "targets": ["upstream/a"], "retry": {"max_attempts": 99}}, "router.retry.max_attempts"),
        ({"type": "fallback", "targets": ["upstream/a"], "fallbacks": ["upstream/b"]}, "router.fallbacks"),
        ({"type": "percentage", "targets": ["upstream/a", "upstream/b"], "weights": ["inf", 1]}, "router.weights[0]"),
        ({"type": "fallback", "targets": ["upstream/a"], "retry": "x"}, "router.retry"),
        ({"type": "fallback", "targets": ["upstream/a"], "name": "x" * 129}, "router.name"),
        ({"type": "fallback", "targets": ["upstream/a"], "name": "a\nb"}, "router.name"),
    ],
)  # fmt: skip
async def test_a_bad_router_object_is_a_400_naming_the_problem(
    upstream_url: str, fake_upstream: FakeOpenAI, router: Any, param: str
) -> None:
    body: dict[str, Any] = {"model": "router/dynamic", "messages": HI}
    if router is not None:
        body["router"] = router
    async for _, client in serving(routing_settings(upstream_url)):
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and param in error["message"]
    assert error["type"] == "invalid_request_error"
    assert not fake_upstream.requests


async def test_huge_weights_still_split_the_traffic(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    # [1e308, 1e308] used to add up to infinity, and every draw landed on the last target.
    router = {"type": "percentage", "targets": ["upstream/a", "upstream/b"], "weights": [1e308, 1e308]}
    async for _, client in serving(routing_settings(upstream_url), rng=random.Random(5)):
        body = {"model": "router/dynamic", "messages": HI, "router": router}
        names = [(await client.post("/v1/chat/completions", json=body)).headers["x-model-name"] for _ in range(40)]
    assert 10 <= names.count("a") <= 30, names


async def test_a_bad_router_retry_is_named_as_an_object_not_a_target(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    router = {"type": "fallback", "targets": ["upstream/a"], "retry": "x"}
    async for _, client in serving(routing_settings(upstream_url)):
        response = await client.post(
            "/v1/chat/completions", json={"model": "router/dynamic", "messages": HI, "router": router}
        )
    assert response.json()["error"]["message"] == "Invalid value for 'router.retry': expected an object."


async def test_a_named_router_is_recorded_on_the_attempt_spans(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    recorded = Recorded()
    router = {"name": "cheap-first", "type": "fallback", "targets": ["upstream/gpt-4o-mini"]}
    gateway_options = {"tracer_provider": recorded.tracer_provider, "meter_provider": recorded.meter_provider}
    async for _, client in serving(routing_settings(upstream_url), **gateway_options):
        response = await client.post(
            "/v1/chat/completions", json={"model": "router/dynamic", "messages": HI, "router": router}
        )
    assert response.status_code == 200
    attributes = dict(recorded.one(SpanKind.CLIENT).attributes or {})
    assert attributes["relaygate.request.model"] == "router/cheap-first"


# --- names, listing, config ---------------------------------------------------------------------------


async def test_virtual_models_are_named_bare_or_under_router_and_win_over_the_default_provider(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    models = {"gpt-4o": {"targets": ["upstream/gpt-4o-mini"]}}
    async for _, client in serving(routing_settings(upstream_url, models=models, default_provider="upstream")):
        bare = await chat(client, "gpt-4o")
        prefixed = await chat(client, "router/gpt-4o")
        default = await chat(client, "gpt-4.1")
        unknown = await chat(client, "router/nothing")
    assert bare.headers["x-model-name"] == prefixed.headers["x-model-name"] == "gpt-4o-mini"
    assert default.headers["x-model-name"] == "gpt-4.1"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert "router/dynamic" in unknown.json()["error"]["message"]


async def test_embeddings_use_virtual_models_too(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    models = {"vectors": {"targets": ["dead/text-embedding-3-small", "upstream/text-embedding-3-small"]}}
    async for _, client in serving(routing_settings(upstream_url, models=models)):
        response = await client.post("/v1/embeddings", json={"model": "vectors", "input": "a"})
    assert response.status_code == 200 and response.headers["x-provider-name"] == "upstream"
    assert len(response.json()["data"]) == 1


async def test_models_lists_the_virtual_models(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    models = {
        "smart": {"targets": ["upstream/gpt-4o", "claude/claude-sonnet-4"], "description": "answers"},
        "tiered": {
            "strategy": "conditional",
            "routes": [{"when": {"user.tier": "gold"}, "targets": ["upstream/gold", "upstream/gpt-4o"]}],
            "targets": ["upstream/gpt-4o"],
        },
    }
    async for _, client in serving(routing_settings(upstream_url, models=models)):
        listed = (await client.get("/v1/models")).json()["data"]
        one = await client.get("/v1/models/smart")
    entry = next(item for item in listed if item["id"] == "smart")
    assert entry["owned_by"] == "relaygate" and entry["object"] == "model"
    assert entry["strategy"] == "fallback" and entry["targets"] == ["upstream/gpt-4o", "claude/claude-sonnet-4"]
    assert one.status_code == 200 and one.json() == entry
    # A conditional model lists every target it may call, its routes' ones too.
    tiered = next(item for item in listed if item["id"] == "tiered")
    assert tiered["targets"] == ["upstream/gpt-4o", "upstream/gold"]


def test_a_target_on_an_unknown_provider_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "relaygate.yaml"
    config.write_text(
        "providers:\n  up: {kind: openai, base_url: 'http://127.0.0.1:1/v1'}\n"
        "models:\n  smart:\n    targets: [up/gpt-4o, nowhere/gpt-4o]\n"
        "  ab: {strategy: percentage, targets: [up/a, up/b], weights: [1]}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert "models.ab: weights: 1 weights for 2 targets" in str(raised.value)
    config.write_text(
        "providers:\n  up: {kind: openai, base_url: 'http://127.0.0.1:1/v1'}\n"
        "models:\n  smart:\n    targets: [up/gpt-4o, nowhere/gpt-4o]\n"
    )
    with pytest.raises(ConfigError, match=r"models\.smart\.targets\[1\]: unknown provider 'nowhere'"):
        load_settings(config, environ={})


# --- one CLIENT span per attempt ----------------------------------------------------------------------


async def test_each_attempt_is_its_own_client_span(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    recorded = Recorded()
    models = {"smart": {"targets": ["upstream/status-500", "dead/gpt-4o", "upstream/gpt-4o"]}}
    gateway_options = {"tracer_provider": recorded.tracer_provider, "meter_provider": recorded.meter_provider}
    async for _, client in serving(routing_settings(upstream_url, models=models), **gateway_options):
        response = await chat(client, "smart")
    assert response.status_code == 200
    server = recorded.one(SpanKind.SERVER)
    calls = sorted((s for s in recorded.finished() if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert [span.name for span in calls] == ["chat status-500", "chat gpt-4o", "chat gpt-4o"]
    assert all(span.parent is not None and span.parent.span_id == server.context.span_id for span in calls)
    failed, refused, answered = (dict(span.attributes or {}) for span in calls)
    assert failed["error.type"] == "fake_500" and refused["error.type"] == "upstream_connection_error"
    assert [span.status.status_code for span in calls] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert "error.type" not in answered and answered["gen_ai.usage.input_tokens"] == 11
    assert (refused["relaygate.route.provider"], answered["relaygate.attempt"]) == ("dead", 3)
    assert answered["relaygate.request.model"] == "smart"
    # A failed attempt's span ended when it failed, before the next attempt began.
    for before, after in zip(calls, calls[1:], strict=False):
        assert before.end_time is not None and after.start_time is not None and before.end_time <= after.start_time
    # Each attempt sent its own span as the upstream's parent.
    parents = [r.headers["traceparent"].split("-")[2] for r in fake_upstream.requests]
    assert parents == [format(calls[0].context.span_id, "016x"), format(calls[2].context.span_id, "016x")]


async def test_a_request_router_may_lower_the_retries_but_not_raise_them(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async for _, client in serving(routing_settings(upstream_url, retry={"max_attempts": 3})):

        async def attempts(max_attempts: int, *, on: httpx.AsyncClient = client) -> str:
            router = {"type": "fallback", "targets": ["upstream/status-500"], "retry": {"max_attempts": max_attempts}}
            body = {"model": "router/dynamic", "messages": HI, "router": router}
            return str((await on.post("/v1/chat/completions", json=body)).headers["x-relaygate-attempts"])

        assert (await attempts(1), await attempts(10)) == ("1", "3")


# --- guards and routing -------------------------------------------------------------------------------

GUARDS = {
    # Blocks the fake upstream's answer as it streams (or whole).
    "no_fake": {"type": "regex", "stage": "output", "action": "block", "parameters": {"patterns": ["fake upstream"]}},
    # A required pattern the answer lacks: judged on the whole answer, so a stream is held until then.
    "needs_zebra": {
        "type": "regex",
        "stage": "output",
        "action": "block",
        "parameters": {"patterns": ["zebra"], "match": "any"},
    },
    "no_secret": {"type": "regex", "stage": "input", "action": "block", "parameters": {"patterns": ["secret"]}},
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("guard", ["no_fake", "needs_zebra"])
async def test_an_output_guard_refusal_is_never_retried_and_names_the_target(
    upstream_url: str, fake_upstream: FakeOpenAI, stream: bool, guard: str
) -> None:
    models = {"smart": {"targets": ["upstream/gpt-4o", "upstream/gpt-4o-mini"]}}
    settings = routing_settings(upstream_url, models=models, retry={"max_attempts": 3}, guards=GUARDS)
    body = {"model": "smart", "messages": HI, "stream": stream, "extra": {"guards": [guard]}}
    async for _, client in serving(settings):
        response = await client.post("/v1/chat/completions", json=body)
    assert fake_upstream.models_seen() == ["gpt-4o"], "a guard's verdict is the answer: no retry, no fallback"
    assert response.headers["x-model-name"] == "gpt-4o" and response.headers["x-provider-name"] == "upstream"
    assert response.headers["x-relaygate-attempts"] == "1"
    if stream and guard == "no_fake":
        # The stream flowed: the violation ends it with a final error event.
        assert response.status_code == 200
        last = response.text.strip().split("\n\n")[-1]
        assert orjson.loads(last.removeprefix("data: "))["error"]["code"] == "guard_violation"
    else:
        # A whole answer, or a stream held for a guard judging it whole: a real HTTP refusal.
        assert response.status_code == 400 and response.json()["error"]["code"] == "guard_violation"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_an_input_guard_refusal_calls_no_target(
    upstream_url: str, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    models = {"smart": {"targets": ["upstream/gpt-4o", "upstream/gpt-4o-mini"]}}
    settings = routing_settings(upstream_url, models=models, retry={"max_attempts": 3}, guards=GUARDS)
    messages = [{"role": "user", "content": "a secret"}]
    body = {"model": "smart", "messages": messages, "stream": stream, "extra": {"guards": ["no_secret"]}}
    async for _, client in serving(settings):
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "guard_violation"
    assert not fake_upstream.requests
    # Refused before routing chose a target: there is none to name.
    assert "x-model-name" not in response.headers and "x-relaygate-attempts" not in response.headers
