"""A gateway with guards in front of the fake OpenAI upstream, and what each request left on its context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate import Gateway, RequestContext, Settings, get_context
from relaygate.settings import GuardOptions, ProjectSettings, ProviderSettings, RetrySettings
from tests.conftest import KEY_A, UPSTREAM_KEY


def chat(content: str | list[Any], model: str = "upstream/echo", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def sse(text: str) -> list[Any]:
    """The events of an SSE body: parsed JSON, or the string ``[DONE]``."""
    events = [block.removeprefix("data: ") for block in text.split("\n\n") if block.startswith("data: ")]
    return [event if event == "[DONE]" else orjson.loads(event) for event in events]


def streamed_text(events: list[Any]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events
        if isinstance(event, dict) and "choices" in event
        for choice in event["choices"]
    )


def finish_reasons(events: list[Any]) -> list[str]:
    return [
        choice["finish_reason"]
        for event in events
        if isinstance(event, dict) and "choices" in event
        for choice in event["choices"]
        if choice.get("finish_reason")
    ]


@dataclass
class Guarded:
    client: httpx.AsyncClient
    contexts: list[RequestContext]
    spans: InMemorySpanExporter
    gateway: Gateway

    @property
    def ctx(self) -> RequestContext:
        return self.contexts[-1]

    def results(self) -> dict[str, Any]:
        return {result.id: result for result in self.ctx.guard_results}

    def server_span(self) -> ReadableSpan:
        spans = [span for span in self.spans.get_finished_spans() if span.name.startswith("POST ")]
        return spans[-1]


@dataclass
class _Recorder:
    """Keeps each request's context once the gateway has answered it."""

    app: ASGIApp
    contexts: list[RequestContext] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.contexts.append(get_context(scope))


@asynccontextmanager
async def guarded(
    upstream_url: str,
    guards: Mapping[str, Any],
    *,
    project_guards: Sequence[str] = (),
    **options: Any,
) -> AsyncIterator[Guarded]:
    settings = Settings(
        providers={"upstream": ProviderSettings(kind="openai", base_url=upstream_url, api_key=UPSTREAM_KEY)},
        # request_scripts: seed 001's example request carries a script router, which routes it to model "test".
        projects=[ProjectSettings(id="proj-a", keys=[KEY_A], guards=list(project_guards), request_scripts=True)],
        default_provider="upstream",
        guards=dict(guards),
        guard_options=GuardOptions(**options),
        retry=RetrySettings(max_attempts=1),  # upstream failures are relayed as they come, not retried
        database="sqlite:///:memory:",
    )
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    gateway = Gateway(settings, tracer_provider=tracer_provider)
    recorder = _Recorder(gateway.app)
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=recorder)
        headers = {"authorization": f"Bearer {KEY_A}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            yield Guarded(client, recorder.contexts, spans, gateway)
