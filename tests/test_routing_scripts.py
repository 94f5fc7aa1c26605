"""Script routers and routers beside any model, through the whole stack, against the fake OpenAI server.

Seed 001's example request is sent verbatim: its script router (``return {model: 'test'}``) decides, and the
fake upstream sees ``test``. Scripts that loop, throw, eat memory or name an unknown model get a clear 400
(or the request's model, on ``on_error: fallback``), traced as ``relaygate.router.*``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from relaygate import Gateway
from relaygate.settings import ProjectSettings, ProviderSettings, Settings
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

SEEDS = Path(__file__).parent / "seeds"
KEY = "rg-scripts-key"
KEY_NO_SCRIPTS = "rg-scripts-key-closed"
HI = [{"role": "user", "content": "Hi"}]
LOOP = "const route = () => { while (true) {} };"
HUNGRY = "function route() { const a = []; while (true) a.push(new Array(1000000).fill(1.5)); }"


def seed_001_example() -> dict[str, Any]:
    """The example request of seed 001's CreateChatCompletionRequest, as the document gives it."""
    document = yaml.safe_load((SEEDS / "001_langdb_gateway.yaml").read_text())
    example: dict[str, Any] = document["components"]["schemas"]["CreateChatCompletionRequest"]["example"]
    return example


# The guards seed 001's example names, as a gateway would define them.
SEED_GUARDS = {
    "word_count_validator_bd4bdnun": {"type": "word_count", "stage": "input", "parameters": {"max_words": 500}},
    "toxicity_detection_4yj4cdvu": {"type": "moderation", "stage": "input", "parameters": {"provider": "upstream"}},
}


def settings(upstream_url: str, **overrides: Any) -> Settings:
    return Settings(
        guards=SEED_GUARDS,
        providers={"upstream": ProviderSettings(kind="openai", base_url=upstream_url, api_key="sk-up")},
        default_provider="upstream",
        projects=[
            ProjectSettings(id="open", keys=[KEY], request_scripts=True),
            ProjectSettings(id="closed", keys=[KEY_NO_SCRIPTS]),
        ],
        database=None,
        retry={"max_attempts": 1},
        **overrides,
    )


async def serving(gateway_settings: Settings, **gateway_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(gateway_settings, **gateway_options)
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        headers = {"authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            yield client


@pytest.fixture
async def client(upstream_url: str, fake_upstream: FakeOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    routers = {
        "pick_mini": {"script": "function route({request}) { return {model: 'upstream/gpt-4o-mini'}; }"},
        "looping": {"script": LOOP, "timeout_ms": 30},
        "looping_soft": {"script": LOOP, "timeout_ms": 30, "on_error": "fallback"},
        # V8 checks its heap limit less often than its time limit: a long time limit shows the memory one.
        "hungry": {"script": HUNGRY, "timeout_ms": 5000, "max_memory_mb": 16},
    }
    async for client in serving(settings(upstream_url, routers=routers)):
        yield client


async def test_seed_001_example_routes_where_its_script_says(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    body = seed_001_example()
    assert body["model"] == "gpt-4o" and body["router"]["type"] == "script"
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert fake_upstream.models_seen() == ["test"]
    assert "router" not in fake_upstream.last().body


async def test_a_looping_script_is_stopped_at_its_time_limit(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    carried = {"type": "script", "script": LOOP}
    for router in ({"name": "looping"}, carried):
        response = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": router})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "router_script_timeout"
        assert error["param"] == "router.script"
        assert "time limit" in error["message"]
    assert fake_upstream.requests == []


async def test_a_script_that_eats_memory_is_stopped_at_its_limit(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": {"name": "hungry"}}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "router_script_memory"
    assert "memory limit" in response.json()["error"]["message"]


async def test_on_error_fallback_sends_the_request_to_its_model(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": {"name": "looping_soft"}}
    )
    assert response.status_code == 200, response.text
    assert fake_upstream.models_seen() == ["gpt-4o"]


@pytest.mark.parametrize(
    ("script", "code", "words"),
    [
        ("function route() { throw new Error('no route today'); }", "router_script_error", "Error: no route today"),
        ("function route() { return {model: 'nowhere/else'}; }", "router_script_invalid", "nowhere/else"),
        ("function route() { return {targets: 'upstream/x'}; }", "router_script_invalid", "targets"),
        ("function route() { return 42; }", "router_script_invalid", "not {model} or {targets}"),
        ("const x = 1;", "router_script_error", "route"),
        ("function route( {", "router_script_error", "not valid JavaScript"),
    ],
)
async def test_a_failing_script_gets_a_clear_400(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI, script: str, code: str, words: str
) -> None:
    router = {"name": "mine", "type": "script", "script": script}
    response = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": router})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, "router.script")
    assert words in error["message"] and "'mine'" in error["message"]
    assert fake_upstream.requests == []


async def test_a_named_router_picks_and_sees_the_request(client: httpx.AsyncClient, fake_upstream: FakeOpenAI) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": {"name": "pick_mini"}}
    )
    assert response.status_code == 200, response.text
    assert fake_upstream.models_seen() == ["gpt-4o-mini"]
    assert response.headers["x-model-name"] == "gpt-4o-mini" if "x-model-name" in response.headers else True


async def test_the_script_gets_request_headers_models_and_metrics_without_credentials(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    # The script routes to a model named after what it saw: the fake upstream records the name.
    script = """
    function route({request, headers, models, metrics}) {
      const seen = [request.messages[0].content, headers['x-tier'], 'authorization' in headers,
                    Array.isArray(models), typeof metrics, typeof require, typeof fetch, 'router' in request];
      return {model: 'upstream/' + seen.join('.')};
    }"""
    router = {"type": "script", "script": script}
    response = await client.post(
        "/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": router}, headers={"x-tier": "gold"}
    )
    assert response.status_code == 200, response.text
    assert fake_upstream.models_seen() == ["Hi.gold.false.true.object.undefined.undefined.false"]


async def test_a_script_may_give_targets_or_leave_the_model(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.script("first", "500")
    targets = "function route() { return {targets: ['upstream/first', 'upstream/second']}; }"
    none = "function route() { return {model: null}; }"
    for script in (targets, none):
        router = {"type": "script", "script": script}
        response = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": router})
        assert response.status_code == 200, response.text
    assert fake_upstream.models_seen() == ["first", "second", "gpt-4o"]


async def test_request_scripts_are_off_unless_the_project_allows_them(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    closed = {"authorization": f"Bearer {KEY_NO_SCRIPTS}"}
    body = seed_001_example()
    response = await client.post("/v1/chat/completions", json=body, headers=closed)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "router_script_not_allowed"
    assert response.json()["error"]["param"] == "router.script"
    # A named router is the operator's, and serves every project.
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": HI, "router": {"name": "pick_mini"}},
        headers=closed,
    )
    assert response.status_code == 200
    unknown = {"model": "gpt-4o", "messages": HI, "router": {"name": "nope", "type": "script"}}
    response = await client.post("/v1/chat/completions", json=unknown, headers=closed)
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("router_not_found", "router.name")
    assert "pick_mini" in response.json()["error"]["message"]


async def test_a_strategy_router_beside_a_model_has_it_as_its_last_fallback(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.script("first", "500")
    router = {"type": "fallback", "targets": ["upstream/first"]}
    response = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": router})
    assert response.status_code == 200, response.text
    assert fake_upstream.models_seen() == ["first", "gpt-4o"]
    bad = {"type": "fallback", "targets": ["nowhere/x"]}
    response = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": bad})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "router.targets[0]"
    bad_type = {"name": "x", "type": "latency"}
    response = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": bad_type})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "router.type"


async def test_every_run_is_traced_as_relaygate_router(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    routers = {
        "pick_mini": {"script": "function route() { return {model: 'upstream/gpt-4o-mini'}; }"},
        "soft": {"script": LOOP, "timeout_ms": 20, "on_error": "fallback"},
        "hard": {"script": "function route() { throw new Error('x'); }"},
    }
    async for client in serving(settings(upstream_url, routers=routers), tracer_provider=provider):
        for name in routers:
            body = {"model": "gpt-4o", "messages": HI, "router": {"name": name}}
            await client.post("/v1/chat/completions", json=body)
    seen = {}
    for span in exporter.get_finished_spans():
        attributes = dict(span.attributes or {})
        if span.kind == SpanKind.SERVER and "relaygate.router.name" in attributes:
            seen[attributes["relaygate.router.name"]] = attributes
    assert seen["pick_mini"]["relaygate.router.outcome"] == "chosen"
    assert seen["pick_mini"]["relaygate.router.targets"] == ("upstream/gpt-4o-mini",)
    assert seen["pick_mini"]["relaygate.router.type"] == "script"
    assert seen["soft"]["relaygate.router.outcome"] == "fallback"
    assert seen["soft"]["relaygate.router.error"] == "timeout"
    assert seen["soft"]["relaygate.router.targets"] == ("gpt-4o",)
    assert seen["hard"]["relaygate.router.outcome"] == "error"
    assert seen["hard"]["relaygate.router.error"] == "error"
    durations = [a["relaygate.router.duration_ms"] for a in seen.values()]
    assert all(isinstance(d, float) and d >= 0 for d in durations)


# --- the JavaScript engine is an extra (`scripts`): where it is not installed ---------------------------------


async def test_without_the_engine_a_request_s_script_is_a_clear_400(
    upstream_url: str, fake_upstream: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if `relaygate[scripts]` were not installed: the import of V8's binding fails.
    monkeypatch.setitem(sys.modules, "py_mini_racer", None)
    async for client in serving(settings(upstream_url)):
        router = {"type": "script", "script": "function route() { return {model: 'test'}; }"}
        response = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HI, "router": router})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "router_script_unavailable" and error["param"] == "router.script"
        assert "relaygate[scripts]" in error["message"]
        assert fake_upstream.requests == []


def test_without_the_engine_a_named_router_is_a_failed_start(
    upstream_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "py_mini_racer", None)
    with pytest.raises(ValueError, match=r"relaygate\[scripts\]"):
        settings(upstream_url, routers={"pick": {"script": "function route() { return {model: 'test'}; }"}})
