"""Mounted at ``/llm``, the request's server span is named after the gateway's route, mount point included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.testclient import TestClient

from examples import fastapi_app, starlette_app
from relaygate import Gateway
from relaygate.settings import Settings

CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def exported() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]


def call_routes(app: Any) -> None:
    with TestClient(app) as client:
        assert client.post("/llm/v1/chat/completions", json=CHAT).status_code == 200
        assert client.get("/llm/threads/conv-9/cost").status_code == 404  # no such thread: still the route
        assert client.get("/llm/some-project/v1/models/mock/echo").status_code == 200
        assert client.get("/llm/wp-login.php").status_code == 404


EXPECTED = [
    "POST /llm/v1/chat/completions",
    "GET /llm/threads/{thread_id}/cost",
    "GET /llm/{project_id}/v1/models/{model}",
]
ROUTES = [name.split(" ", 1)[1] for name in EXPECTED]


def test_relaygates_own_span_is_named_after_the_route_below_the_mount(
    exported: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = exported
    gateway = Gateway(Settings(database="sqlite:///:memory:"), tracer_provider=provider)
    call_routes(starlette_app.build_app(gateway))  # the host has no instrumentation: relaygate's span is the server's
    spans = server_spans(exporter)
    assert [span.name for span in spans] == [*EXPECTED, "GET"]
    assert [(span.attributes or {}).get("http.route") for span in spans] == [*ROUTES, None]


def test_a_hosts_span_named_after_the_path_is_renamed_after_the_route(
    exported: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = exported
    gateway = Gateway(Settings(database="sqlite:///:memory:"), tracer_provider=provider)
    call_routes(fastapi_app.build_app(gateway, tracer_provider=provider))
    spans = server_spans(exporter)
    # One server span per request, the host's: relaygate names it and gives it http.route.
    assert [span.name for span in spans] == [*EXPECTED, "GET /llm/wp-login.php"]
    assert [(span.attributes or {}).get("http.route") for span in spans] == [*ROUTES, None]


def test_a_span_the_host_named_itself_keeps_its_name_and_gets_the_route(
    exported: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = exported
    gateway = Gateway(Settings(database="sqlite:///:memory:"), tracer_provider=provider)
    app = FastAPI(lifespan=gateway.lifespan)
    app.mount("/llm", gateway.app)
    app.add_middleware(
        OpenTelemetryMiddleware,
        tracer_provider=provider,
        exclude_spans=["receive", "send"],
        default_span_details=lambda scope: ("host request", {}),
    )
    with TestClient(app) as client:
        assert client.get("/llm/threads/conv-9/cost").status_code == 404
    (span,) = server_spans(exporter)
    assert span.name == "host request"
    assert (span.attributes or {})["http.route"] == "/llm/threads/{thread_id}/cost"
