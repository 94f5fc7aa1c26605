"""Bad input through the whole stack (issue 14): odd message shapes with content capture on, request values
out of their documented ranges, captured content over its size cap and ``response_format`` string forms.

The gateway runs with content capture on and spans going to the SDK's in-memory exporter; the upstream is the
fake OpenAI server, which records what it was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from relaygate import Gateway
from relaygate.settings import TelemetrySettings
from tests.conftest import KEY_A, make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import relaygate_serve

pytestmark = pytest.mark.anyio

HEADERS = {"authorization": f"Bearer {KEY_A}"}


class Stack:
    def __init__(self, client: httpx.AsyncClient, spans: InMemorySpanExporter) -> None:
        self.client = client
        self.spans = spans

    def calls(self) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if span.kind == SpanKind.CLIENT]

    async def chat(self, **body: Any) -> httpx.Response:
        body = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **body}
        return await self.client.post("/v1/chat/completions", json=body)


async def stack(upstream_url: str, **telemetry: Any) -> AsyncIterator[Stack]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    settings = make_settings(upstream_url, telemetry=TelemetrySettings(capture_content=True, **telemetry))
    gateway = Gateway(settings, tracer_provider=provider)
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=HEADERS) as client:
            yield Stack(client, spans)


@pytest.fixture
async def gateway(upstream_url: str, fake_upstream: FakeOpenAI) -> AsyncIterator[Stack]:
    async for each in stack(upstream_url):
        yield each


# --- item 3: odd message shapes with content capture on ------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": [{"type": "image_url", "image_url": "https://example.com/cat.png"}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": 12}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": None}}]},
        {"role": "user", "content": [{"type": "text", "text": {"nested": True}}]},
        {"role": "assistant", "content": None, "tool_calls": ["not an object", 3, None]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": 1, "function": "f"}]},
        {"role": {"odd": 1}, "content": "Hi"},
    ],
)
async def test_odd_message_shapes_with_content_capture_are_never_a_500(gateway: Stack, message: dict[str, Any]) -> None:
    response = await gateway.chat(messages=[message, {"role": "user", "content": "Hi"}])
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        (call,) = gateway.calls()
        assert isinstance(orjson.loads(str((call.attributes or {})["gen_ai.input.messages"])), list)


async def test_a_bare_string_image_url_is_captured_as_its_uri(gateway: Stack) -> None:
    content = [{"type": "image_url", "image_url": "https://example.com/cat.png"}]
    response = await gateway.chat(messages=[{"role": "user", "content": content}])
    assert response.status_code == 200, response.text
    (call,) = gateway.calls()
    (message,) = orjson.loads(str((call.attributes or {})["gen_ai.input.messages"]))
    assert message["parts"] == [{"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"}]


# --- item 6: captured content is capped ----------------------------------------------------------------------


async def test_captured_content_is_capped_at_64_kib_by_default_and_the_cut_is_marked(gateway: Stack) -> None:
    prompt = "é" * 200_000  # 400 KB of UTF-8
    system = {"role": "system", "content": "s" * 100_000}
    response = await gateway.chat(messages=[system, {"role": "user", "content": prompt}])
    assert response.status_code == 200, response.text
    (call,) = gateway.calls()
    attributes = dict(call.attributes or {})
    for name in ("gen_ai.input.messages", "gen_ai.system_instructions"):
        value = str(attributes[name])
        assert len(value.encode()) <= 64 * 1024
        assert value.endswith(" bytes]") and "…[truncated " in value
    assert attributes["relaygate.content.truncated"] == ("gen_ai.input.messages", "gen_ai.system_instructions")


async def test_the_cap_is_configurable_and_small_content_is_left_whole(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async for each in stack(upstream_url, capture_content_max_bytes=300):
        response = await each.chat(messages=[{"role": "user", "content": "x" * 1000}])
        assert response.status_code == 200, response.text
        response = await each.chat(messages=[{"role": "user", "content": "short"}])
        assert response.status_code == 200, response.text
        long, short = (dict(call.attributes or {}) for call in each.calls())
        assert len(str(long["gen_ai.input.messages"]).encode()) <= 300
        assert "…[truncated" in str(long["gen_ai.input.messages"])
        assert "gen_ai.output.messages" in short and "relaygate.content.truncated" not in short
        assert orjson.loads(str(short["gen_ai.input.messages"]))[0]["parts"][0]["content"] == "short"


# --- item 5: request values out of their documented ranges ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", -1e308),
        ("max_tokens", 0),
        ("max_completion_tokens", -5),
        ("seed", 2**63),
        ("seed", -(2**63) - 1),
        ("n", 0),
        ("temperature", 3),
        ("temperature", -0.1),
        ("top_p", 1.5),
        ("presence_penalty", 2.5),
        ("frequency_penalty", -3),
        ("top_logprobs", 50),
        ("top_logprobs", -1),
    ],
)
async def test_a_value_beyond_its_documented_range_is_a_400_naming_the_field(
    gateway: Stack, fake_upstream: FakeOpenAI, field: str, value: Any
) -> None:
    response = await gateway.chat(**{field: value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and field in error["message"]
    assert error["type"] == "invalid_request_error"
    assert not fake_upstream.requests  # nothing was forwarded
    assert not gateway.calls()


async def test_values_at_the_edges_of_their_ranges_are_forwarded_and_on_the_span(
    gateway: Stack, fake_upstream: FakeOpenAI
) -> None:
    edges = {"temperature": 2, "top_p": 0, "presence_penalty": -2, "frequency_penalty": 2, "seed": 2**63 - 1}
    response = await gateway.chat(**edges, top_logprobs=20, logprobs=True, n=1, max_tokens=1)
    assert response.status_code == 200, response.text
    sent = fake_upstream.last("/chat/completions").body
    assert {key: sent[key] for key in edges} == edges
    (call,) = gateway.calls()
    assert (call.attributes or {})["gen_ai.request.seed"] == 2**63 - 1


async def test_an_embeddings_body_with_a_seed_beyond_int64_keeps_it_off_the_span(
    gateway: Stack, fake_upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    # These endpoints do not take sampling values; whatever a caller sends under those names is the
    # provider's to judge, and never an attribute that the exporter cannot encode.
    body = b'{"model": "upstream/text-embedding-3-small", "input": "Hi", "seed": 9223372036854775808, "top_p": 1e308}'
    response = await gateway.client.post("/v1/embeddings", content=body)
    assert response.status_code == 200, response.text
    assert fake_upstream.last("/embeddings").body["seed"] == 2**63
    (call,) = gateway.calls()
    attributes = dict(call.attributes or {})
    assert "gen_ai.request.seed" not in attributes
    assert attributes["gen_ai.request.top_p"] == 1e308  # a finite float: encodable
    assert "Traceback" not in caplog.text


# --- item 12: response_format string forms --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json_object", "text"])
async def test_a_bare_string_response_format_is_sent_as_its_object(
    gateway: Stack, fake_upstream: FakeOpenAI, kind: str
) -> None:
    response = await gateway.chat(response_format=kind)
    assert response.status_code == 200, response.text
    sent = fake_upstream.last("/chat/completions").body
    assert sent["response_format"] == {"type": kind}
    (call,) = gateway.calls()
    assert (call.attributes or {})["gen_ai.output.type"] == ("json" if kind == "json_object" else "text")


async def test_an_unknown_response_format_string_is_a_400(gateway: Stack, fake_upstream: FakeOpenAI) -> None:
    response = await gateway.chat(response_format="yaml")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "response_format"
    assert not fake_upstream.requests


# --- item 15: authenticate before header checks; truncate what is echoed --------------------------------------


def test_header_checks_come_after_authentication_and_echoes_are_cut(tmp_path: Path) -> None:
    config = tmp_path / "relaygate.yaml"
    config.write_text(SERVE_CONFIG)
    long = "x" * 10_000
    chat = {"model": "mock/echo", "messages": [{"role": "user", "content": "Hi"}]}
    with relaygate_serve(["--config", str(config)], cwd=tmp_path) as base:
        with httpx.Client(base_url=base, timeout=10) as client:
            # Without a key: 401, whatever else is wrong.
            for headers, path in [
                ({"X-Label": long}, "/v1/chat/completions"),
                ({"X-Thread-Id": ""}, "/v1/chat/completions"),
                ({"X-Project-Id": "proj-b"}, "/proj-a/v1/chat/completions"),
            ]:
                response = client.post(path, json=chat, headers=headers)
                assert response.status_code == 401, response.text
                assert response.json()["error"]["code"] == "invalid_api_key"
            # With one: the header's own refusal.
            keyed = {"authorization": f"Bearer {SERVE_KEY}"}
            response = client.post("/v1/chat/completions", json=chat, headers={**keyed, "X-Label": long})
            assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_header"
            response = client.post(
                "/proj-a/v1/chat/completions", json=chat, headers={**keyed, "X-Project-Id": "proj-b"}
            )
            assert response.status_code == 400 and response.json()["error"]["code"] == "project_mismatch"
            # What an error echoes of the caller is cut.
            for path, body in [
                (f"/threads/{long}/cost", None),
                (f"/v1/{long}", chat),
                ("/v1/chat/completions", {**chat, "model": f"mock-{long}/x"}),
                (f"/{long}/v1/chat/completions", chat),
            ]:
                response = client.post(path, json=body, headers=keyed) if body else client.get(path, headers=keyed)
                assert 400 <= response.status_code < 500, response.text
                assert len(response.text) < 1000 and "x" * 201 not in response.text, (path, response.text[:300])
                assert "…" in response.json()["error"]["message"] or "x" * 50 not in response.text


SERVE_KEY = "rg-bad-input-key"
SERVE_CONFIG = f"""\
providers:
  mock: {{kind: mock}}
projects:
  - id: proj-a
    keys: ["{SERVE_KEY}"]
  - id: proj-b
    keys: ["rg-bad-input-key-b"]
"""
