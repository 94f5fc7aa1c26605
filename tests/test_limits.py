"""Limits through the whole stack, on both counter backends (in process and the real Redis) and on the ledger's
SQLite and PostgreSQL stores: budgets under a hundred concurrent calls, across a restart, rates admitting exactly
their count, settlement of failed and cut-short calls, refusals and headers.

Model ``upstream/priced`` costs nothing for input and $100 per 1M output tokens. The fake upstream always
reports 5 completion tokens, so with ``max_tokens: 5`` a call's worst case is exactly its real cost: $0.0005,
500,000 nano-dollars; a budget of $0.005 affords exactly ten calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest

from relaygate import Gateway, Settings
from relaygate.keys import key_digest, key_id
from relaygate.limits.config import ProjectLimits
from relaygate.limits.estimate import MESSAGE_OVERHEAD, REQUEST_OVERHEAD
from relaygate.limits.limiter import Limiter
from relaygate.pricing import ModelPrice
from relaygate.settings import BreakerSettings, ProjectSettings, ProviderSettings, RetrySettings
from relaygate.store import SpendKind, SpendScope
from tests.conftest import KEY_A, KEY_AB, KEY_B, UPSTREAM_KEY
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

CALL_NANOS = 500_000  # 5 output tokens at $100 per 1M
PRICED = ModelPrice(input=0, output=100)
PRICES = {f"upstream/{m}": PRICED for m in ("priced", "status-500", "broken", "endless", "other")}
EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))
T = 1_750_000_000.0  # a frozen clock for the rate tests: nothing drains while a burst is under way
# The prompt estimate of one user message "Hi": the request and message overheads, the role as JSON, the text.
HI_PROMPT = REQUEST_OVERHEAD + MESSAGE_OVERHEAD + len(b'"user"') + len(b"Hi")


def settings(upstream_url: str, database: str | None, counters: str | None, limits: dict[str, Any]) -> Settings:
    return Settings(
        providers={"upstream": ProviderSettings(kind="openai", base_url=upstream_url, api_key=UPSTREAM_KEY)},
        projects=[
            ProjectSettings(id="proj-a", keys=[KEY_A, KEY_AB], limits=ProjectLimits.model_validate(limits)),
            ProjectSettings(id="proj-b", keys=[KEY_B, KEY_AB]),
        ],
        database=database,
        counters=counters,
        prices=PRICES,
        # Upstream failures reach the limits as they come: no retries, and no breaker turning them into 503s.
        retry=RetrySettings(max_attempts=1),
        breaker=BreakerSettings(enabled=False),
    )


def chat(model: str = "priced", content: str = "Hi", **extra: Any) -> dict[str, Any]:
    return {"model": f"upstream/{model}", "messages": [{"role": "user", "content": content}], "max_tokens": 5, **extra}


def client(gateway: Gateway, key: str = KEY_A) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url="http://gateway",
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


async def burst(http: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    responses: list[httpx.Response | None] = [None] * len(bodies)

    async def one(i: int) -> None:
        responses[i] = await http.post("/v1/chat/completions", json=bodies[i])

    async with anyio.create_task_group() as group:
        for i in range(len(bodies)):
            group.start_soon(one, i)
    return [r for r in responses if r is not None]


async def spent(gateway: Gateway, scope: SpendScope | None = None) -> int:
    assert gateway.ledger is not None
    await gateway.ledger.writer.flush()
    return await gateway.ledger.store.spend(scope or SpendScope(SpendKind.PROJECT, "proj-a"), *EVER)


def limiter(gateway: Gateway) -> Limiter:
    assert gateway.limiter is not None
    return gateway.limiter


async def level(gateway: Gateway, suffix: str, rate: float = 0) -> float | None:
    lim = limiter(gateway)
    return await lim.counters.level(f"{lim.prefix}:proj-a:{suffix}", rate, lim.clock())


@pytest.fixture
async def budget_gateway(
    upstream_url: str, fake_upstream: FakeOpenAI, database_url: str, counters_url: str | None
) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings(upstream_url, database_url, counters_url, {"usd_total": "0.005"}))
    async with gateway.lifespan():
        yield gateway


async def test_a_budget_that_affords_ten_calls_admits_ten_of_a_hundred_concurrent(budget_gateway: Gateway) -> None:
    async with client(budget_gateway) as http:
        responses = await burst(http, [chat() for _ in range(100)])
    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(admitted) == 10 and len(refused) == 90
    for response in refused:
        assert response.json()["error"] == {
            "message": "project proj-a: usd_total 0.005 reached.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["x-should-retry"] == "false"
    assert await spent(budget_gateway) == 10 * CALL_NANOS
    assert await level(budget_gateway, "project:usd_total:total") == 10 * CALL_NANOS


async def test_a_call_that_fails_upstream_releases_its_reservation(budget_gateway: Gateway) -> None:
    async with client(budget_gateway) as http:
        for _ in range(3):  # each burst takes the whole budget while it is under way
            failed = await burst(http, [chat("status-500") for _ in range(10)])
            assert {r.status_code for r in failed} == {500}
            assert await level(budget_gateway, "project:usd_total:total") == 0
        # Thirty failures later the whole budget is still there.
        responses = await burst(http, [chat() for _ in range(11)])
    assert sorted(r.status_code for r in responses) == [200] * 10 + [429]
    assert await spent(budget_gateway) == 10 * CALL_NANOS


async def test_a_stream_that_breaks_settles_to_what_it_streamed(budget_gateway: Gateway) -> None:
    async with client(budget_gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("broken", stream=True, max_tokens=10))
    assert response.status_code == 200 and '"error"' in response.text
    # It streamed "partial" (7 bytes, one chunk): two tokens by the estimate, never zero, never the 10 reserved.
    assert await level(budget_gateway, "project:usd_total:total") == 2 * CALL_NANOS // 5
    # The ledger records the same estimate, so a restart reloads what the counters held.
    assert await spent(budget_gateway) == 2 * CALL_NANOS // 5


async def test_a_refused_call_is_recorded_by_the_ledger(budget_gateway: Gateway) -> None:
    async with client(budget_gateway) as http:
        await burst(http, [chat() for _ in range(12)])
    assert budget_gateway.ledger is not None
    await budget_gateway.ledger.writer.flush()
    figures = await budget_gateway.ledger.store.usage_total("proj-a", *EVER)
    assert figures.calls == 12 and figures.errors == 2 and figures.cost_nanos == 10 * CALL_NANOS


async def test_spend_is_loaded_from_the_ledger_after_a_restart(
    upstream_url: str, fake_upstream: FakeOpenAI, database_url: str, counters_url: str | None
) -> None:
    limits = {"usd_per_day": "0.005", "usd_per_month": "0.01", "usd_total": 1}
    first = Gateway(settings(upstream_url, database_url, counters_url, limits))
    async with first.lifespan(), client(first) as http:
        for _ in range(6):
            assert (await http.post("/v1/chat/completions", json=chat())).status_code == 200
    # The counters are gone (a new process; for Redis, keys of their own as if the server had been emptied).
    restarted_counters = counters_url.replace("?prefix=", "?prefix=restarted:") if counters_url else None
    second = Gateway(settings(upstream_url, database_url, restarted_counters, limits))
    async with second.lifespan(), client(second) as http:
        responses = await burst(http, [chat() for _ in range(100)])
        assert sum(r.status_code == 200 for r in responses) == 4
        refusal = next(r for r in responses if r.status_code == 429).json()["error"]["message"]
        assert refusal == "project proj-a: usd_per_day 0.005 reached."
        assert await spent(second) == 10 * CALL_NANOS


async def test_a_requests_per_minute_limit_admits_exactly_its_count(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", counters_url, {"requests_per_minute": 10}))
    limiter(gateway).clock = lambda: T
    async with gateway.lifespan(), client(gateway) as http:
        responses = await burst(http, [chat() for _ in range(100)])
    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(admitted) == 10 and len(refused) == 90
    error = refused[0].json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert error["message"] == "project proj-a: requests_per_minute 10 reached; retry in 6s."
    assert refused[0].headers["retry-after"] == "6"  # one request drains every 6 s
    assert "x-should-retry" not in refused[0].headers
    assert refused[0].headers["x-ratelimit-remaining-requests"] == "0"
    assert sorted(r.headers["x-ratelimit-remaining-requests"] for r in admitted) == [str(i) for i in range(10)]


async def test_answers_carry_the_rate_limit_headers_and_tokens_settle_to_usage(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    limits = {"requests_per_minute": 10, "tokens_per_minute": 1000}
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", counters_url, limits))
    limiter(gateway).clock = lambda: T
    reserved = HI_PROMPT + 5
    async with gateway.lifespan(), client(gateway) as http:
        first = await http.post("/v1/chat/completions", json=chat())
        assert first.status_code == 200
        assert {k: v for k, v in first.headers.items() if k.startswith("x-ratelimit")} == {
            "x-ratelimit-limit-requests": "10",
            "x-ratelimit-remaining-requests": "9",
            "x-ratelimit-reset-requests": "6s",
            "x-ratelimit-limit-tokens": "1000",
            "x-ratelimit-remaining-tokens": str(1000 - reserved),
            "x-ratelimit-reset-tokens": f"{reserved * 60 / 1000:g}s",
        }
        # The call used 16 tokens (the fake's usage): the reservation was settled down to that.
        assert await level(gateway, "project:tokens_per_minute") == 16
        second = await http.post("/v1/chat/completions", json=chat())
        assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - 16 - reserved)
        streamed = await http.post("/v1/chat/completions", json=chat(stream=True))
        assert streamed.headers["x-ratelimit-remaining-requests"] == "7"
        too_big = await http.post("/v1/chat/completions", json=chat(max_tokens=5000))
    assert too_big.status_code == 429
    assert too_big.json()["error"]["message"] == (
        f"project proj-a: the request needs {HI_PROMPT + 5000} tokens, more than tokens_per_minute 1000."
    )
    assert too_big.json()["error"]["type"] == "tokens" and too_big.headers["x-should-retry"] == "false"


async def test_user_key_and_model_limits_count_apart(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    limits = {
        "keys": {key_id(key_digest(KEY_AB)): {"requests_per_minute": 1}},
        "users": {"default": {"requests_per_minute": 2}, "vip": {"requests_per_minute": 5}},
        "models": {"upstream/other": {"requests_per_minute": 1}},
    }
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", counters_url, limits))
    limiter(gateway).clock = lambda: T

    def as_user(user: str) -> dict[str, Any]:
        return chat(extra={"user": {"id": user}})

    async with gateway.lifespan(), client(gateway) as http, client(gateway, KEY_AB) as shared:
        users = await burst(http, [as_user("ann")] * 4 + [as_user("bob")] * 4 + [as_user("vip")] * 7)
        statuses = [r.status_code for r in users]
        assert statuses[:4].count(200) == 2 and statuses[4:8].count(200) == 2 and statuses[8:].count(200) == 5
        refusal = next(r for r in users[:4] if r.status_code == 429).json()["error"]["message"]
        assert refusal == "user ann of project proj-a: requests_per_minute 2 reached; retry in 30s."
        assert [r.status_code for r in await burst(http, [chat()] * 5)] == [200] * 5  # no user: no user limit
        models = await burst(http, [chat("other")] * 3)
        assert sorted(r.status_code for r in models) == [200, 429, 429]
        assert "model upstream/other of project proj-a" in next(r for r in models if r.status_code == 429).text
        # The key of two projects: limited in proj-a, not in proj-b.
        in_a = [await shared.post("/proj-a/v1/chat/completions", json=chat()) for _ in range(2)]
        in_b = [await shared.post("/proj-b/v1/chat/completions", json=chat()) for _ in range(2)]
    assert [r.status_code for r in in_a] == [200, 429] and [r.status_code for r in in_b] == [200, 200]


async def test_a_user_budget_is_loaded_from_the_ledger_for_that_user(
    upstream_url: str, fake_upstream: FakeOpenAI, database_url: str
) -> None:
    limits = {"users": {"default": {"usd_per_day": "0.001"}}}
    first = Gateway(settings(upstream_url, database_url, None, limits))
    async with first.lifespan(), client(first) as http:
        for user in ("ann", "ann", "bob"):
            await http.post("/v1/chat/completions", json=chat(extra={"user": {"id": user}}))
    second = Gateway(settings(upstream_url, database_url, None, limits))
    async with second.lifespan(), client(second) as http:
        ann = await http.post("/v1/chat/completions", json=chat(extra={"user": {"id": "ann"}}))
        bob = await http.post("/v1/chat/completions", json=chat(extra={"user": {"id": "bob"}}))
    assert ann.status_code == 429 and bob.status_code == 200
    assert ann.json()["error"]["message"] == "user ann of project proj-a: usd_per_day 0.001 reached."


async def test_a_model_without_a_price_is_refused_under_a_budget_only(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", None, {"usd_per_day": 1}))
    rates = Gateway(settings(upstream_url, "sqlite:///:memory:", None, {"requests_per_minute": 5}))
    async with gateway.lifespan(), rates.lifespan(), client(gateway) as http, client(rates) as http_rates:
        refused = await http.post("/v1/chat/completions", json=chat("no-price-known"))
        allowed = await http_rates.post("/v1/chat/completions", json=chat("no-price-known"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_priced"
    assert "upstream/no-price-known has no price" in refused.json()["error"]["message"]
    assert allowed.status_code == 200 and allowed.headers["x-ratelimit-remaining-requests"] == "4"


async def test_calls_of_unlimited_projects_and_bad_requests_pass_to_the_proxy(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", None, {"requests_per_minute": 1}))
    async with gateway.lifespan(), client(gateway) as http, client(gateway, KEY_B) as other:
        assert [(await other.post("/v1/chat/completions", json=chat())).status_code for _ in range(3)] == [200] * 3
        unknown = await http.post("/v1/chat/completions", json=chat() | {"model": "nowhere/x"})
        broken = await http.post("/v1/chat/completions", content=b"{not json")
        models = await http.get("/v1/models")
        ok = await http.post("/v1/chat/completions", json=chat())
    assert unknown.status_code == 404 and broken.status_code == 400 and models.status_code == 200
    assert ok.status_code == 200 and "x-ratelimit-limit-requests" not in models.headers


async def test_embeddings_and_images_are_reserved_and_settled(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    limits = {"tokens_per_minute": 100, "usd_total": 1}
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", None, limits))
    limiter(gateway).clock = lambda: T
    async with gateway.lifespan(), client(gateway) as http:
        embedded = await http.post(
            "/v1/embeddings", json={"model": "upstream/text-embedding-3-small", "input": ["abcd", "ef"]}
        )
        assert embedded.headers["x-ratelimit-remaining-tokens"] == str(100 - 6)  # 6 bytes reserved
        assert await level(gateway, "project:tokens_per_minute") == 4  # the fake's usage
        image = await http.post("/v1/images/generations", json={"model": "upstream/gpt-image-1", "prompt": "a cat"})
        assert image.status_code == 200
        # Settled to what the ledger priced: the embeddings' 4 tokens at $0.02 per 1M, and the image.
        image_nanos = round(float(image.headers["x-cost-usd"]) * 1e9)
        assert image_nanos > 0
        assert await level(gateway, "project:usd_total:total") == 80 + image_nanos


async def test_a_new_day_brings_a_new_daily_budget(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", None, {"usd_per_day": "0.005"}))
    evening = datetime(2030, 5, 1, 23, 59, 59, tzinfo=UTC).timestamp()
    limiter(gateway).clock = lambda: evening
    async with gateway.lifespan(), client(gateway) as http:
        first = await burst(http, [chat() for _ in range(11)])
        late = await http.post("/v1/chat/completions", json=chat())
        limiter(gateway).clock = lambda: evening + 2
        morning = await burst(http, [chat() for _ in range(11)])
    assert sorted(r.status_code for r in first) == [200] * 10 + [429]
    assert late.status_code == 429 and late.headers["retry-after"] == "1"  # a second to midnight (UTC)
    assert sorted(r.status_code for r in morning) == [200] * 10 + [429]


async def test_counters_out_of_reach_refuse_calls_rather_than_let_them_through(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    nowhere = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", nowhere, {"requests_per_minute": 5}))
    async with gateway.lifespan(), client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "limits_unavailable"
    assert fake_upstream.requests == []
