"""`relaygate serve` exporting spans and metrics over OTLP/HTTP to a real receiver that decodes them.

The gateway runs as its own process with only the standard ``OTEL_*`` variables set; what is asserted
is what reached the receiver, protobuf-decoded, after the process stopped (so shutdown flushed it).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from relaygate import Gateway
from relaygate.settings import RetrySettings
from tests.conftest import ADMIN_KEY, KEY_A, UPSTREAM_KEY, make_settings
from tests.otlp import OtlpReceiver, RecordedSpan
from tests.servers import relaygate_serve

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
CONFIG = """\
providers:
  upstream:
    kind: openai
    base_url: {upstream_url}
    api_key: {upstream_key}
projects:
  - id: proj-a
    keys: ["{key}"]
admin_key: {admin_key}
retry: {{max_attempts: 1}}  # one CLIENT span per request, the failed one included
"""


def _calls(spans: list[RecordedSpan]) -> list[RecordedSpan]:
    return sorted((span for span in spans if span.kind == "CLIENT"), key=lambda span: span.start_time_unix_nano)


def test_serve_exports_the_callers_trace_with_every_attribute_and_no_secret(tmp_path: Path, upstream_url: str) -> None:
    config = tmp_path / "relaygate.yaml"
    config.write_text(
        CONFIG.format(upstream_url=upstream_url, upstream_key=UPSTREAM_KEY, key=KEY_A, admin_key=ADMIN_KEY)
    )
    headers = {
        "authorization": f"Bearer {KEY_A}",
        "x-admin-key": ADMIN_KEY,
        "x-thread-id": "thread-export",
        "x-run-id": "run-export",
        "x-label": "exporter",
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
    }
    chat = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "relaygate-under-test",
            # Nothing is exported on a timer during the test: only the flush at shutdown can deliver.
            "OTEL_BSP_SCHEDULE_DELAY": "60000",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }
        with relaygate_serve(["--config", str(config)], env=env, cwd=tmp_path) as base_url:
            with httpx.Client(base_url=base_url, headers=headers) as client:
                whole = client.post("/v1/chat/completions", json=chat)
                with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as streamed:
                    lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
                failed = client.post("/v1/chat/completions", json={**chat, "model": "upstream/status-500"})
        # The process has stopped: whatever its batch processor still held was flushed at shutdown.
        spans = receiver.spans
        raw = b"".join(receiver.raw_exports)
        metric_names = {metric.name for metric in receiver.metrics}
    assert whole.status_code == 200 and streamed.status_code == 200 and lines[-1] == "data: [DONE]"
    assert failed.status_code == 500

    calls = _calls(spans)
    assert [span.name for span in calls] == ["chat gpt-4o", "chat gpt-4o", "chat status-500"]
    servers = {span.span_id: span for span in spans if span.kind == "SERVER" and span.name.startswith("POST")}
    assert len(servers) == 3
    for call in calls:
        server = servers[call.parent_span_id]  # each call's parent is its request's server span
        assert call.trace_id == server.trace_id == TRACE_ID
        assert server.parent_span_id == PARENT_ID
        assert server.name == "POST /v1/chat/completions"
        assert server.resource["service.name"] == call.resource["service.name"] == "relaygate-under-test"
        assert server.attributes["gen_ai.conversation.id"] == "thread-export"
        assert call.attributes["gen_ai.conversation.id"] == "thread-export"
        assert call.attributes["relaygate.run.id"] == "run-export"
        assert call.attributes["relaygate.label"] == "exporter"
        assert call.attributes["relaygate.project.id"] == "proj-a"
        assert call.attributes["relaygate.key.id"].startswith("key_")
        assert call.attributes["gen_ai.provider.name"] == "openai"
        assert call.attributes["gen_ai.request.model"] == call.name.removeprefix("chat ")
        assert call.attributes["server.address"] == "127.0.0.1"
        assert call.scope_name == "relaygate"

    ok, stream, error = calls
    assert ok.status_code == "UNSET"
    assert ok.attributes["gen_ai.response.id"] == whole.json()["id"]
    assert ok.attributes["gen_ai.usage.input_tokens"] == whole.json()["usage"]["prompt_tokens"]
    assert ok.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert stream.attributes["gen_ai.request.stream"] is True
    assert stream.attributes["gen_ai.response.time_to_first_chunk"] > 0
    last_chunk = orjson.loads(lines[-2].removeprefix("data: "))
    assert last_chunk["choices"][0]["finish_reason"] == "stop"
    # The client asked for no usage chunk, yet the gateway knew the usage (it asked upstream itself).
    assert stream.attributes["gen_ai.usage.output_tokens"] > 0
    assert error.status_code == "ERROR"
    assert error.attributes["error.type"]
    assert servers[error.parent_span_id].status_code == "ERROR"
    assert servers[error.parent_span_id].attributes["http.response.status_code"] == 500

    # Nothing secret anywhere in what left the process: not the client's key, the admin key or the
    # provider's key, in any attribute, resource or event.
    for secret in (KEY_A, ADMIN_KEY, UPSTREAM_KEY):
        assert secret.encode() not in raw
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= metric_names


@pytest.mark.anyio
async def test_the_fastapi_example_with_its_own_asgi_instrumentation_exports_one_trace(upstream_url: str) -> None:
    from examples.fastapi_app import build_app

    with OtlpReceiver() as receiver:
        provider = TracerProvider(resource=Resource.create({"service.name": "host-app"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_url)))
        # One attempt per request, so one CLIENT span each (the failed request's too).
        gateway = Gateway(make_settings(upstream_url, retry=RetrySettings(max_attempts=1)), tracer_provider=provider)
        app = build_app(gateway, tracer_provider=provider)
        headers = {
            "authorization": f"Bearer {KEY_A}",
            "x-thread-id": "thread-host",
            "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
        }
        chat = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://host", headers=headers) as client:
                whole = await client.post("/llm/v1/chat/completions", json=chat)
                streamed = await client.post("/llm/v1/chat/completions", json={**chat, "stream": True})
                failed = await client.post("/llm/v1/chat/completions", json={**chat, "model": "upstream/status-502"})
        provider.force_flush()
        provider.shutdown()
        spans = receiver.spans
        raw = b"".join(receiver.raw_exports)
    assert (whole.status_code, streamed.status_code, failed.status_code) == (200, 200, 502)
    servers = {span.span_id: span for span in spans if span.kind == "SERVER"}
    calls = _calls(spans)
    # The host's ASGI instrumentation made the server spans (one per request, none per SSE chunk);
    # relaygate annotated them and hung its calls under them, all in the caller's trace.
    assert len(servers) == 3 and len(calls) == 3
    assert {span.scope_name for span in servers.values()} == {"opentelemetry.instrumentation.asgi"}
    for call in calls:
        server = servers[call.parent_span_id]
        assert call.trace_id == server.trace_id == TRACE_ID
        assert server.attributes["gen_ai.conversation.id"] == "thread-host"
        assert server.attributes["relaygate.project.id"] == "proj-a"
        assert call.resource["service.name"] == "host-app"
    assert calls[1].attributes["gen_ai.request.stream"] is True
    assert calls[2].status_code == "ERROR" and calls[2].attributes["error.type"]
    assert KEY_A.encode() not in raw and UPSTREAM_KEY.encode() not in raw
