"""The dialect framework, with a toy dialect (tests/dialects/shout.py) on the whole stack in front of the fake
OpenAI server: requests translated in, answers, streams and every error translated out, auth's included,
served routes after auth, native pass-through with the canonical answer still accounted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from relaygate import Gateway, Settings
from relaygate.settings import GuardSettings, ProjectSettings
from tests.conftest import KEY_A, make_settings
from tests.dialects.shout import ShoutDialect
from tests.fakes.openai_server import REPLY, FakeOpenAI

pytestmark = pytest.mark.anyio


def events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], orjson.loads(lines["data"])))
    return out


@pytest.fixture
async def shout(upstream_url: str, fake_upstream: FakeOpenAI) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(upstream_url), dialects=[ShoutDialect()])
    async with gateway.lifespan():
        yield gateway


def guarded(upstream_url: str, guard: GuardSettings) -> Settings:
    """Settings whose project proj-a runs ``guard`` on every call."""
    settings = make_settings(upstream_url, guards={"the_guard": guard})
    return settings.model_copy(update={"projects": [ProjectSettings(id="proj-a", keys=[KEY_A], guards=["the_guard"])]})


def client(gateway: Gateway, **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gateway.app)
    return httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers, timeout=30)


async def recorded(gateway: Gateway, trace_id: str) -> Any:
    assert gateway.ledger is not None
    await gateway.ledger.writer.flush()
    (call,) = await gateway.ledger.store.calls_of_trace("proj-a", trace_id)
    return call


async def test_a_call_is_translated_in_and_out_and_recorded_as_a_chat_call(
    shout: Gateway, fake_upstream: FakeOpenAI
) -> None:
    async with client(shout, authorization=f"Bearer {KEY_A}") as c:
        response = await c.post("/v1/shout", json={"model": "upstream/gpt-4o", "say": "hello"})
    assert response.status_code == 200
    assert response.json() == {"shouted": REPLY.upper(), "tokens": 16}
    assert int(response.headers["content-length"]) == len(response.content)
    assert "x-cost-usd" in response.headers and response.headers["x-trace-id"]
    seen = fake_upstream.last("/chat/completions")
    assert seen.body["messages"] == [{"role": "user", "content": "hello"}]
    call = await recorded(shout, response.headers["x-trace-id"])
    assert (call.endpoint, call.requested_model, call.total_tokens, call.status) == ("chat", "upstream/gpt-4o", 16, 200)


async def test_auth_refusals_leave_in_the_dialect_and_its_own_key_header_works(shout: Gateway) -> None:
    async with client(shout) as c:
        refused = await c.post("/v1/shout", json={"model": "upstream/gpt-4o", "say": 1})
        accepted = await c.post(
            "/v1/shout", json={"model": "upstream/gpt-4o", "say": "x"}, headers={"x-shout-key": KEY_A}
        )
    # Auth speaks before the body is read: a bad body without a key is a 401, mapped to the dialect's 418.
    assert refused.status_code == 418
    assert refused.json()["oops"]["code"] == "invalid_api_key"
    assert accepted.status_code == 200


async def test_bad_input_model_and_upstream_errors_are_mapped(shout: Gateway) -> None:
    async with client(shout, authorization=f"Bearer {KEY_A}") as c:
        bad = await c.post("/v1/shout", json={"model": "upstream/gpt-4o", "say": 1})
        unknown = await c.post("/v1/shout", json={"model": "nowhere/x", "say": "x"})
        upstream = await c.post("/v1/shout", json={"model": "upstream/status-429", "say": "x"})
        not_json = await c.post("/v1/shout", content=b"{", headers={"content-type": "application/json"})
    assert (bad.status_code, bad.json()["oops"]["param"]) == (400, "say")
    assert (unknown.status_code, unknown.json()["oops"]["code"]) == (404, "model_not_found")
    assert upstream.status_code == 429 and upstream.headers["retry-after"] == "7"
    assert "oops" in upstream.json()
    assert (not_json.status_code, not_json.json()["oops"]["code"]) == (400, "invalid_json")


async def test_guard_refusals_are_mapped(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    settings = guarded(upstream_url, GuardSettings(type="regex", stage="input", parameters={"patterns": ["secret"]}))
    gateway = Gateway(settings, dialects=[ShoutDialect()])
    async with gateway.lifespan(), client(gateway, authorization=f"Bearer {KEY_A}") as c:
        response = await c.post("/v1/shout", json={"model": "upstream/gpt-4o", "say": "my secret"})
    assert response.status_code == 400
    assert response.json()["oops"]["code"] == "guard_violation"
    assert not fake_upstream.requests


async def test_a_stream_is_translated_as_it_comes_and_a_failure_ends_it(shout: Gateway) -> None:
    async with client(shout, authorization=f"Bearer {KEY_A}") as c:
        ok = await c.post("/v1/shout", json={"model": "upstream/gpt-4o", "say": "x", "stream": True})
        failed = await c.post("/v1/shout", json={"model": "upstream/error-event", "say": "x", "stream": True})
    assert ok.headers["content-type"].startswith("text/event-stream")
    got = events(ok.text)
    assert "".join(data["text"] for name, data in got if name == "piece") == (REPLY + " ").upper()
    assert got[-1] == ("end", {})
    assert events(failed.text)[-1] == ("oops", {"message": "overloaded mid-stream", "code": "overloaded"})


async def test_served_routes_run_after_auth_and_leave_as_they_are(shout: Gateway) -> None:
    async with client(shout) as c:
        served = await c.get("/v1/shout/abc", headers={"authorization": f"Bearer {KEY_A}"})
        scoped = await c.get("/proj-a/v1/shout/abc", headers={"authorization": f"Bearer {KEY_A}"})
        anonymous = await c.get("/v1/shout/abc")
        wrong_method = await c.delete("/v1/shout/abc", headers={"authorization": f"Bearer {KEY_A}"})
    assert served.json() == scoped.json() == {"id": "abc", "project": "proj-a"}
    assert anonymous.status_code == 418
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"
    assert wrong_method.json()["oops"]["code"] == "method_not_allowed"


async def test_native_pass_through_relays_the_providers_bytes_and_still_accounts(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    gateway = Gateway(make_settings(upstream_url), dialects=[ShoutDialect(native=["upstream"])])
    async with gateway.lifespan(), client(gateway, authorization=f"Bearer {KEY_A}") as c:
        whole = await c.post("/v1/shout", json={"model": "upstream/gpt-4o", "say": "hello"})
        streamed = await c.post("/v1/shout", json={"model": "upstream/gpt-4o", "say": "hi", "stream": True})
        whole_call = await recorded(gateway, whole.headers["x-trace-id"])
        stream_call = await recorded(gateway, streamed.headers["x-trace-id"])
    # The provider's own answer, untranslated, with the native request's headers sent.
    assert whole.json()["object"] == "chat.completion"
    assert fake_upstream.requests[0].headers["x-native"] == "yes"
    assert fake_upstream.requests[0].body == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": False,
    }
    assert fake_upstream.requests[0].raw.startswith(b'{\n  "model": "gpt-4o"'), "the native content, as it was"
    assert whole_call.total_tokens == 16 and whole.headers["x-cost-usd"]
    assert streamed.text.startswith("data: ") and streamed.text.endswith("data: [DONE]\n\n")
    assert stream_call.total_tokens == 16


async def test_output_guards_turn_native_pass_through_off(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    settings = guarded(
        upstream_url, GuardSettings(type="regex", stage="output", parameters={"patterns": ["forbidden"]})
    )
    gateway = Gateway(settings, dialects=[ShoutDialect(native=["upstream"])])
    async with gateway.lifespan(), client(gateway, authorization=f"Bearer {KEY_A}") as c:
        response = await c.post("/v1/shout", json={"model": "upstream/gpt-4o", "say": "hello"})
    assert response.json()["shouted"] == REPLY.upper()
    assert "x-native" not in fake_upstream.requests[0].headers


async def test_mounted_and_chat_calls_untouched(shout: Gateway) -> None:
    host = Starlette(routes=[Mount("/llm", app=shout.app)])
    transport = httpx.ASGITransport(app=host)
    headers = {"authorization": f"Bearer {KEY_A}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://host", headers=headers) as c:
        mounted = await c.post("/llm/v1/shout", json={"model": "upstream/gpt-4o", "say": "x"})
        chat = await c.post(
            "/llm/v1/chat/completions",
            json={"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "x"}]},
        )
    assert mounted.json()["shouted"] == REPLY.upper()
    assert chat.json()["object"] == "chat.completion"
