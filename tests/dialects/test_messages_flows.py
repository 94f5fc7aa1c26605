"""A Messages call on the whole stack, in process: what the ledger records, the span, the refusals that
happen before a provider is asked, and when a call to an Anthropic model is translated rather than native."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.trace import SpanKind

from relaygate import Gateway, Settings
from relaygate.settings import GuardSettings, ProjectSettings, ProviderSettings
from tests.conftest import KEY_A, make_settings
from tests.fakes import anthropic_server
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import serve_in_thread
from tests.test_telemetry import Recorded

pytestmark = pytest.mark.anyio

HEADERS = {"x-api-key": KEY_A, "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def anthropic_fake() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve_in_thread(fake) as base_url:
        yield fake, base_url + "/v1"


@pytest.fixture
def fake(anthropic_fake: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    anthropic_fake[0].reset()
    return anthropic_fake[0]


def settings(upstream_url: str, anthropic_url: str, **overrides: Any) -> Settings:
    """The usual test settings with an Anthropic provider ``claude`` besides ``upstream``."""
    base = make_settings(upstream_url)
    claude = ProviderSettings(kind="anthropic", base_url=anthropic_url, api_key=anthropic_server.API_KEY)
    return Settings.model_validate({**dict(base), "providers": {**base.providers, "claude": claude}, **overrides})


def client(gateway: Gateway) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gateway.app)
    return httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=HEADERS, timeout=30)


async def recorded(gateway: Gateway, response: httpx.Response) -> Any:
    assert gateway.ledger is not None
    await gateway.ledger.writer.flush()
    (call,) = await gateway.ledger.store.calls_of_trace("proj-a", response.headers["x-trace-id"])
    return call


def ask(model: str, text: str = "Hi", **fields: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **fields}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "upstream/gpt-4o"], ids=["native", "translated"])
async def test_the_ledger_records_a_chat_call_with_the_callers_user_and_model(
    upstream_url: str,
    anthropic_fake: tuple[FakeAnthropic, str],
    fake: FakeAnthropic,
    fake_upstream: FakeOpenAI,
    model: str,
    stream: bool,
) -> None:
    gateway = Gateway(
        settings(upstream_url, anthropic_fake[1], model_aliases={"claude-sonnet-4-5": "claude/claude-sonnet-4"})
    )
    async with gateway.lifespan(), client(gateway) as c:
        response = await c.post("/v1/messages", json=ask(model, metadata={"user_id": "user-7"}, stream=stream))
        assert response.status_code == 200, response.text
        call = await recorded(gateway, response)
    assert response.headers["request-id"] == response.headers["x-trace-id"]
    assert (call.endpoint, call.requested_model, call.user_id, call.status) == ("chat", model, "user-7", 200)
    assert call.stream is stream
    if model.startswith("claude"):
        assert (call.provider, call.model) == ("claude", "claude-sonnet-4")
        # Anthropic's usage as the adapter reads it: prompt tokens count the cache reads and writes.
        assert (call.prompt_tokens, call.cached_tokens, call.cache_write_tokens) == (47, 30, 5)
        assert fake.last().body["metadata"] == {"user_id": "user-7"}
    else:
        assert call.total_tokens == 16


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_the_span_is_a_chat_span_with_the_message_id(
    upstream_url: str, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    recorded = Recorded()
    gateway = Gateway(make_settings(upstream_url), tracer_provider=recorded.tracer_provider)
    async with gateway.lifespan(), client(gateway) as c:
        response = await c.post("/v1/messages", json=ask("upstream/gpt-4o", stream=stream))
    assert response.status_code == 200
    message_id = response.text[response.text.index('"msg_') + 1 :].split('"', 1)[0]
    (server,) = [span for span in recorded.finished() if span.kind == SpanKind.SERVER]
    assert server.name == "POST /v1/messages"
    attributes = dict(recorded.one(SpanKind.CLIENT).attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.response.id"] == message_id


async def test_a_body_over_the_limit_is_a_413_request_too_large(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    gateway = Gateway(make_settings(upstream_url, max_body_bytes=2048))
    async with gateway.lifespan(), client(gateway) as c:
        response = await c.post("/v1/messages", json=ask("upstream/gpt-4o", "x" * 4096))
        counted = await c.post("/v1/messages/count_tokens", json=ask("upstream/gpt-4o", "x" * 4096))
    for refused in (response, counted):
        assert refused.status_code == 413
        assert refused.json()["error"]["type"] == "request_too_large"
    assert not fake_upstream.requests


async def test_a_default_provider_makes_bare_names_native(
    upstream_url: str, anthropic_fake: tuple[FakeAnthropic, str], fake: FakeAnthropic
) -> None:
    gateway = Gateway(settings(upstream_url, anthropic_fake[1], default_provider="claude"))
    async with gateway.lifespan(), client(gateway) as c:
        response = await c.post("/v1/messages", json=ask("claude-haiku-4-5"))
    assert response.status_code == 200
    assert response.json()["id"] == "msg_fake01"
    assert fake.last().body["model"] == "claude-haiku-4-5"


async def test_an_output_guard_translates_a_call_to_anthropic_keeping_cache_control(
    upstream_url: str, anthropic_fake: tuple[FakeAnthropic, str], fake: FakeAnthropic
) -> None:
    # Output guards must read the answer as chat chunks: the call is translated even to Anthropic, and what
    # only Anthropic's adapter reads (cache_control, top_k) is kept, since the model can only reach Anthropic.
    guard = GuardSettings(type="regex", stage="output", parameters={"patterns": ["forbidden"]})
    base = settings(upstream_url, anthropic_fake[1], guards={"g": guard})
    gateway = Gateway(base.model_copy(update={"projects": [ProjectSettings(id="proj-a", keys=[KEY_A], guards=["g"])]}))
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    async with gateway.lifespan(), client(gateway) as c:
        response = await c.post("/v1/messages", json=ask("claude/claude-sonnet-4", system=system, top_k=3))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "msg_fake01" and body["content"] == [{"type": "text", "text": anthropic_server.REPLY}]
    assert body["usage"]["cache_read_input_tokens"] == 30
    sent = fake.last().body
    assert sent["system"] == system and sent["top_k"] == 3


async def test_x_api_key_and_bearer_are_both_accepted(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    gateway = Gateway(make_settings(upstream_url))
    transport = httpx.ASGITransport(app=gateway.app)
    async with gateway.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        by_key = await c.post("/v1/messages", json=ask("upstream/gpt-4o"), headers={"x-api-key": KEY_A})
        by_bearer = await c.post(
            "/v1/messages", json=ask("upstream/gpt-4o"), headers={"authorization": f"Bearer {KEY_A}"}
        )
        none = await c.post("/v1/messages", json=ask("upstream/gpt-4o"))
        # Other routes keep their own auth: x-api-key is the Messages API's.
        chat = await c.post(
            "/v1/chat/completions",
            json={"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": KEY_A},
        )
    assert by_key.status_code == by_bearer.status_code == 200
    assert none.status_code == 401 and none.json()["error"]["type"] == "authentication_error"
    assert chat.status_code == 401 and "error" in chat.json() and "type" not in chat.json()


async def test_gateway_fields_are_read_and_never_reach_anthropic(
    upstream_url: str, anthropic_fake: tuple[FakeAnthropic, str], fake: FakeAnthropic
) -> None:
    gateway = Gateway(settings(upstream_url, anthropic_fake[1]))
    body = ask("claude/claude-sonnet-4", extra={"user": {"id": "from-extra", "name": "Ada"}})
    async with gateway.lifespan(), client(gateway) as c:
        response = await c.post("/v1/messages", content=orjson.dumps(body))
        assert response.status_code == 200
        call = await recorded(gateway, response)
    assert "extra" not in fake.last().body
    assert (call.user_id, call.user_name) == ("from-extra", "Ada")


async def test_refusals_of_the_outer_layers_are_anthropic_shaped_on_its_routes(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    gateway = Gateway(make_settings(upstream_url))
    async with gateway.lifespan(), client(gateway) as c:
        long_thread = await c.post("/v1/messages", json=ask("upstream/gpt-4o"), headers={"x-thread-id": "t" * 300})
        mismatch = await c.post(
            "/proj-a/v1/messages/count_tokens", json=ask("upstream/gpt-4o"), headers={"x-project-id": "proj-b"}
        )
        # Chat Completions takes its key as a bearer token; its header checks come once the key is checked.
        bearer = {"authorization": f"Bearer {KEY_A}", "x-thread-id": "t" * 300}
        chat = await c.post("/v1/chat/completions", json={}, headers=bearer)
        no_project = [
            await c.post(path, json=ask("upstream/gpt-4o")) for path in ("/v1/v1/messages", "/%C3%86/v1/messages")
        ]
    for refused in (long_thread, mismatch):
        assert refused.status_code == 400
        body = refused.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        assert refused.headers["request-id"]
    for missing in no_project:
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert long_thread.headers["x-trace-id"] == long_thread.headers["request-id"]
    assert chat.status_code == 400 and chat.json()["error"]["code"] == "invalid_header"
    assert not fake_upstream.requests


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'"x"', b"", b'{"model": "upstream/gpt-4o", "max_tokens": 5, "messages": [1]}']
)
async def test_a_body_that_is_no_request_is_a_400(upstream_url: str, fake_upstream: FakeOpenAI, body: bytes) -> None:
    gateway = Gateway(make_settings(upstream_url))
    async with gateway.lifespan(), client(gateway) as c:
        created = await c.post("/v1/messages", content=body, headers={"content-type": "application/json"})
        counted = await c.post("/v1/messages/count_tokens", content=body, headers={"content-type": "application/json"})
    for refused in (created, counted):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["type"] == "invalid_request_error"
    assert not fake_upstream.requests


async def test_an_anthropic_answer_that_is_no_json_is_a_502(
    upstream_url: str, anthropic_fake: tuple[FakeAnthropic, str], fake: FakeAnthropic
) -> None:
    gateway = Gateway(settings(upstream_url, anthropic_fake[1]))
    async with gateway.lifespan(), client(gateway) as c:
        whole = await c.post("/v1/messages", json=ask("claude/not-json"))
        streamed = await c.post("/v1/messages", json=ask("claude/not-json", stream=True))
    for failed in (whole, streamed):
        assert failed.status_code == 502, failed.text
        assert failed.json()["error"]["type"] == "api_error"
