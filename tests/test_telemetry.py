"""OpenTelemetry spans and metrics through the whole stack, read from the SDK's in-memory exporter.

(The OTLP export itself, protobuf over HTTP to a real receiver, is in test_telemetry_export.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from relaygate import Gateway
from relaygate.settings import GuardSettings, RetrySettings, TelemetrySettings
from tests.conftest import ADMIN_KEY, KEY_A, UPSTREAM_KEY, make_settings
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
HEADERS = {
    "authorization": f"Bearer {KEY_A}",
    "x-thread-id": "thread-42",
    "x-run-id": "run-7",
    "x-label": "summariser",
    "x-tags": "team=search&env=test",
    "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
    "baggage": "user.email=someone%40example.com",
}
CHAT = {
    "model": "upstream/gpt-4o",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "temperature": 0.3,
    "max_tokens": 50,
    "extra": {"user": {"id": "u-1", "name": "Ada", "tags": ["beta"]}},
}


class Recorded:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def one(self, kind: SpanKind) -> ReadableSpan:
        spans = [span for span in self.finished() if span.kind == kind]
        assert len(spans) == 1, [span.name for span in self.finished()]
        return spans[0]

    def metric_points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


async def _client(
    upstream_url: str, recorded: Recorded, **telemetry: Any
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    # Retries as a gateway has them by default: each attempt is a span of its own.
    settings = make_settings(upstream_url, telemetry=TelemetrySettings(**telemetry), retry=RetrySettings(backoff=0.01))
    gateway = Gateway(settings, tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider)
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=HEADERS) as client:
            yield gateway, client


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
async def client(upstream_url: str, recorded: Recorded) -> AsyncIterator[httpx.AsyncClient]:
    async for _, client in _client(upstream_url, recorded):
        yield client


async def test_a_chat_call_makes_a_server_span_and_a_genai_client_span_in_the_callers_trace(
    client: httpx.AsyncClient, recorded: Recorded, fake_upstream: FakeOpenAI
) -> None:
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    server, call = recorded.one(SpanKind.SERVER), recorded.one(SpanKind.CLIENT)
    assert server.name == "POST /v1/chat/completions"
    assert call.name == "chat gpt-4o"
    # One trace, the caller's: the server span continues the traceparent, the call is its child.
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
    assert call.parent is not None and call.parent.span_id == server.context.span_id
    assert call.context.trace_id == server.context.trace_id
    assert response.headers["x-trace-id"] == TRACE_ID
    # The upstream got our CLIENT span as its parent, and none of the caller's baggage.
    seen = fake_upstream.last("/chat/completions").headers
    assert seen["traceparent"] == f"00-{TRACE_ID}-{format(call.context.span_id, '016x')}-01"
    assert "baggage" not in seen

    attributes: dict[str, Any] = dict(call.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.response.model"] == "gpt-4o"
    assert attributes["gen_ai.response.id"] == response.json()["id"]
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == response.json()["usage"]["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == response.json()["usage"]["completion_tokens"]
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 3  # the fake's cached_tokens
    assert "gen_ai.usage.reasoning.output_tokens" not in attributes  # it reports none
    assert attributes["gen_ai.request.temperature"] == 0.3
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.output.type"] == "text"
    assert attributes["gen_ai.conversation.id"] == "thread-42"
    assert attributes["server.address"] == "127.0.0.1"
    assert isinstance(attributes["server.port"], int)
    assert "gen_ai.request.stream" not in attributes
    assert attributes["relaygate.run.id"] == "run-7"
    assert attributes["relaygate.label"] == "summariser"
    assert attributes["relaygate.tags.team"] == "search"
    assert attributes["relaygate.project.id"] == "proj-a"
    assert attributes["relaygate.key.id"].startswith("key_")
    assert attributes["relaygate.user.id"] == "u-1"
    assert attributes["relaygate.user.name"] == "Ada"
    assert attributes["relaygate.user.tags"] == ("beta",)
    assert attributes["relaygate.request.model"] == "upstream/gpt-4o"
    assert attributes["relaygate.route.provider"] == "upstream"
    assert attributes["relaygate.cost.usd"] == response.json()["usage"]["cost"] > 0  # priced by the ledger
    assert call.status.status_code == StatusCode.UNSET
    # No content unless asked for, and no LangDB names unless asked for.
    assert not any(
        key.startswith(("gen_ai.input", "gen_ai.output.messages", "gen_ai.system", "langdb.")) for key in attributes
    )

    server_attributes = dict(server.attributes or {})
    assert server_attributes["http.response.status_code"] == 200
    assert server_attributes["gen_ai.conversation.id"] == "thread-42"
    assert server_attributes["relaygate.project.id"] == "proj-a"


async def test_a_streamed_call_span_covers_the_stream_and_records_the_first_chunk(
    client: httpx.AsyncClient, recorded: Recorded
) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        chunks = [line async for line in response.aiter_lines() if line.startswith("data: {")]
    call = recorded.one(SpanKind.CLIENT)
    attributes: dict[str, Any] = dict(call.attributes or {})
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    usage = orjson.loads(chunks[-1].removeprefix("data: "))["usage"]
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert attributes["relaygate.cost.usd"] == usage["cost"] > 0
    # The span covers the stream, not only the wait for its first chunk.
    assert call.end_time is not None and call.start_time is not None
    assert (call.end_time - call.start_time) / 1e9 >= attributes["gen_ai.response.time_to_first_chunk"]
    assert recorded.metric_points("gen_ai.client.operation.time_to_first_chunk")


async def test_a_streamed_call_span_ends_with_the_last_event_not_the_first(
    client: httpx.AsyncClient, recorded: Recorded
) -> None:
    # "paced": 10 ms between events, so the stream lasts well past its first chunk.
    body = {**CHAT, "model": "upstream/paced", "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        events = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    call = recorded.one(SpanKind.CLIENT)
    assert call.end_time is not None and call.start_time is not None
    attributes: dict[str, Any] = dict(call.attributes or {})
    first_chunk = attributes["gen_ai.response.time_to_first_chunk"]
    assert len(events) >= 6
    # At least half the paced gaps after the first chunk: a span ending at the first chunk would have none.
    assert (call.end_time - call.start_time) / 1e9 >= first_chunk + 0.005 * (len(events) - 2)


async def test_a_failed_call_has_error_status_and_type(client: httpx.AsyncClient, recorded: Recorded) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "model": "upstream/status-503"})
    assert response.status_code == 503
    server = recorded.one(SpanKind.SERVER)
    # A 503 is retried (three attempts by default), each attempt its own failed CLIENT span.
    calls = [span for span in recorded.finished() if span.kind == SpanKind.CLIENT]
    assert len(calls) == 3 == int(response.headers["x-relaygate-attempts"])
    for call in calls:
        assert call.status.status_code == StatusCode.ERROR
        assert (call.attributes or {})["error.type"] == response.json()["error"]["code"]
    assert server.status.status_code == StatusCode.ERROR
    assert (server.attributes or {})["http.response.status_code"] == 503


async def test_a_refused_request_has_a_server_span_but_no_call(upstream_url: str, recorded: Recorded) -> None:
    async for _, client in _client(upstream_url, recorded):
        response = await client.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer wrong"})
        assert response.status_code == 401
    assert not [span for span in recorded.finished() if span.kind == SpanKind.CLIENT]
    server = recorded.one(SpanKind.SERVER)
    assert (server.attributes or {})["http.response.status_code"] == 401
    assert server.status.status_code == StatusCode.UNSET  # a client's mistake is not the server's error


async def test_no_secret_reaches_any_span(client: httpx.AsyncClient, recorded: Recorded) -> None:
    await client.post("/v1/chat/completions", json=CHAT, headers={"x-admin-key": ADMIN_KEY, "lb-llm-key": "sk-lb"})
    await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    await client.post("/v1/chat/completions", json={**CHAT, "model": "upstream/status-401"})
    exported = repr([(span.name, dict(span.attributes or {}), span.events) for span in recorded.finished()])
    for secret in (KEY_A, UPSTREAM_KEY, ADMIN_KEY, "sk-lb"):
        assert secret not in exported


async def test_content_is_captured_only_when_asked_for(upstream_url: str, recorded: Recorded) -> None:
    async for _, client in _client(upstream_url, recorded, capture_content=True):
        await client.post("/v1/chat/completions", json=CHAT)
        await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    whole, streamed = [span for span in recorded.finished() if span.kind == SpanKind.CLIENT]
    for span in (whole, streamed):
        attributes: dict[str, Any] = dict(span.attributes or {})
        assert orjson.loads(attributes["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
        ]
        assert orjson.loads(attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
        output = orjson.loads(attributes["gen_ai.output.messages"])
        assert output[0]["role"] == "assistant" and output[0]["finish_reason"] == "stop"
        assert output[0]["parts"][0]["content"].startswith("Hello from the fake upstream")


async def test_langdb_names_are_emitted_when_asked_for(upstream_url: str, recorded: Recorded) -> None:
    async for _, client in _client(upstream_url, recorded, langdb_attributes=True):
        await client.post("/v1/chat/completions", json=CHAT)
    attributes: dict[str, Any] = dict(recorded.one(SpanKind.CLIENT).attributes or {})
    assert attributes["langdb.thread_id"] == "thread-42"
    assert attributes["langdb.run_id"] == "run-7"
    assert attributes["langdb.label"] == "summariser"


async def test_token_usage_and_duration_metrics(client: httpx.AsyncClient, recorded: Recorded) -> None:
    response = await client.post("/v1/chat/completions", json=CHAT)
    usage = response.json()["usage"]
    tokens = {
        point.attributes["gen_ai.token.type"]: point.sum
        for point in recorded.metric_points("gen_ai.client.token.usage")
    }
    assert tokens == {"input": usage["prompt_tokens"], "output": usage["completion_tokens"]}
    (duration,) = recorded.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.attributes["gen_ai.request.model"] == "gpt-4o"
    assert "error.type" not in duration.attributes


async def test_telemetry_off_makes_no_spans(upstream_url: str, recorded: Recorded) -> None:
    async for _, client in _client(upstream_url, recorded, enabled=False):
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 200
        assert len(response.headers["x-trace-id"]) == 32
    assert recorded.finished() == []


async def test_in_a_host_app_with_its_own_asgi_instrumentation_the_host_span_is_annotated(
    upstream_url: str, recorded: Recorded, fake_upstream: FakeOpenAI
) -> None:
    from examples.fastapi_app import build_app

    gateway = Gateway(make_settings(upstream_url), tracer_provider=recorded.tracer_provider)
    app = build_app(gateway, tracer_provider=recorded.tracer_provider)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://host", headers=HEADERS) as client:
            response = await client.post("/llm/v1/chat/completions", json=CHAT)
            streamed = await client.post("/llm/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200 and streamed.status_code == 200
    servers = [span for span in recorded.finished() if span.kind == SpanKind.SERVER]
    calls = [span for span in recorded.finished() if span.kind == SpanKind.CLIENT]
    # The host's server span per request (no second one from relaygate, no span per SSE chunk).
    assert len(servers) == 2 and len(calls) == 2
    assert all(
        span.instrumentation_scope is not None
        and span.instrumentation_scope.name == "opentelemetry.instrumentation.asgi"
        for span in servers
    )
    for server, call in zip(servers, calls, strict=True):
        assert format(server.context.trace_id, "032x") == TRACE_ID
        assert call.parent is not None and call.parent.span_id == server.context.span_id
        attributes = dict(server.attributes or {})
        assert attributes["gen_ai.conversation.id"] == "thread-42"
        assert attributes["relaygate.run.id"] == "run-7"
        assert attributes["relaygate.project.id"] == "proj-a"
    assert response.headers["x-trace-id"] == TRACE_ID
    assert fake_upstream.last("/chat/completions").headers["traceparent"].split("-")[1] == TRACE_ID


async def test_guard_results_reach_a_host_span_that_ends_with_the_last_byte(
    upstream_url: str, recorded: Recorded, fake_upstream: FakeOpenAI
) -> None:
    from examples.fastapi_app import build_app

    guards = {
        "pii_in": GuardSettings(type="pii", stage="input", action="observe"),
        "pii_out": GuardSettings(type="pii", stage="output", action="observe"),
    }
    gateway = Gateway(make_settings(upstream_url, guards=guards), tracer_provider=recorded.tracer_provider)
    app = build_app(gateway, tracer_provider=recorded.tracer_provider)
    body = {**CHAT, "model": "upstream/echo", "extra": {"guards": ["pii_in", "pii_out"]}}
    body["messages"] = [{"role": "user", "content": "write to jane@example.com"}]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://host", headers=HEADERS) as client:
            whole = await client.post("/llm/v1/chat/completions", json=body)
            streamed = await client.post("/llm/v1/chat/completions", json={**body, "stream": True})
    assert whole.status_code == 200 and streamed.status_code == 200
    # The host's instrumentation drops the caller's baggage at the gateway too: nothing of it goes upstream.
    assert "baggage" not in fake_upstream.last("/chat/completions").headers
    servers = [span for span in recorded.finished() if span.kind == SpanKind.SERVER]
    assert len(servers) == 2
    for server in servers:
        attributes = dict(server.attributes or {})
        assert attributes["relaygate.guard.ids"] == ("pii_in", "pii_out")
        assert attributes["relaygate.guard.failed_ids"] == ("pii_in", "pii_out")  # observed, not blocked
        assert [event.name for event in server.events].count("relaygate.guard") == 2


async def test_an_answer_an_output_guard_refused_is_no_failure_of_the_provider(
    upstream_url: str, recorded: Recorded
) -> None:
    guards = {"pii_out": GuardSettings(type="pii", stage="output", action="block")}
    settings = make_settings(upstream_url, guards=guards)
    gateway = Gateway(settings, tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider)
    body = {**CHAT, "model": "upstream/echo", "extra": {"guards": ["pii_out"]}}
    body["messages"] = [{"role": "user", "content": "write to jane@example.com"}]
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=HEADERS) as client:
            refused = await client.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "guard_violation"
    call = recorded.one(SpanKind.CLIENT)
    assert call.status.status_code != StatusCode.ERROR
    assert "error.type" not in (call.attributes or {})
    (duration,) = recorded.metric_points("gen_ai.client.operation.duration")
    assert "error.type" not in duration.attributes
    assert dict(recorded.one(SpanKind.SERVER).attributes or {})["relaygate.guard.failed_ids"] == ("pii_out",)


async def test_span_names_stay_few_whatever_the_paths(upstream_url: str, recorded: Recorded) -> None:
    async for _, client in _client(upstream_url, recorded):
        await client.get("/threads/conv-123/cost")
        await client.get("/proj-a/v1/threads/conv-456/messages")
        await client.get("/wp-admin/setup-config.php")
        await client.get("/v1/models/upstream/gpt-4o")
    names = [span.name for span in recorded.finished() if span.kind == SpanKind.SERVER]
    assert names == [
        "GET /threads/{thread_id}/cost",
        "GET /{project_id}/v1/threads/{thread_id}/messages",
        "GET",  # no route: the method alone, as the HTTP conventions name it
        "GET /v1/models/{model}",
    ]
    unrouted = [span for span in recorded.finished() if span.name == "GET"][0]
    assert "http.route" not in (unrouted.attributes or {})


async def test_an_over_long_id_is_refused_and_kept_out_of_the_trace(upstream_url: str, recorded: Recorded) -> None:
    async for _, client in _client(upstream_url, recorded):
        response = await client.post("/v1/chat/completions", json=CHAT, headers={"x-thread-id": "t" * 300})
    assert response.status_code == 400 and response.json()["error"]["param"] == "x-thread-id"
    attributes = dict(recorded.one(SpanKind.SERVER).attributes or {})
    assert "gen_ai.conversation.id" not in attributes
    assert not any("t" * 300 in str(value) for value in attributes.values())


def test_an_export_endpoint_is_logged_without_its_credentials() -> None:
    from relaygate.telemetry.export import _shown

    assert (
        _shown("https://user:s3cret@otlp.example.com:4318/v1/traces") == "https://***@otlp.example.com:4318/v1/traces"
    )
    assert _shown("http://127.0.0.1:4318/v1/traces") == "http://127.0.0.1:4318/v1/traces"


@pytest.mark.parametrize(
    ("kind", "base_url", "expected"),
    [
        ("openai", "https://api.openai.com/v1", "openai"),
        ("openai", "https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini"),
        ("openai", "https://my-team.openai.azure.com/openai/v1", "azure.ai.openai"),
        ("openai", "https://api.groq.com/openai/v1", "groq"),
        ("openai", "http://127.0.0.1:8000/v1", "openai"),  # a vLLM or Ollama server speaks OpenAI's API
        ("anthropic", None, "anthropic"),
        ("gemini", None, "gcp.gemini"),
    ],
)
def test_the_provider_is_named_as_the_conventions_name_it(kind: str, base_url: str | None, expected: str) -> None:
    from relaygate.telemetry.spans import _provider_name

    assert _provider_name(kind, base_url) == expected
