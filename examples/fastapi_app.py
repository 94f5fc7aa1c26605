"""relaygate mounted at ``/llm`` inside a FastAPI app that has routes and start-up work of its own.

Run it from the repository root::

    .venv/bin/uvicorn examples.fastapi_app:app --port 8000

    curl -s http://127.0.0.1:8000/hello
    curl -s http://127.0.0.1:8000/llm/v1/chat/completions \\
      -H 'Content-Type: application/json' \\
      -d '{"model": "mock/echo", "messages": [{"role": "user", "content": "Hello"}]}'

The gateway comes from ``Gateway.from_config()``: ``$RELAYGATE_CONFIG`` or ``./relaygate.yaml`` when
present, else the embedded default (the built-in ``mock`` provider, no API keys).

The host app has its own OpenTelemetry ASGI instrumentation: its server span is the request's span,
relaygate annotates it (thread, run, project, ...), names it after the gateway's route below the mount
(``POST /llm/v1/chat/completions``, ``GET /llm/threads/{thread_id}/cost``, with ``http.route``) and hangs
its GenAI CLIENT spans under it. Spans go
to the host's TracerProvider (the global one unless ``tracer_provider`` is given); configure one, e.g.
with ``opentelemetry-instrument``, to export them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.trace import TracerProvider

from relaygate import Gateway


def build_app(gateway: Gateway | None = None, *, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """A FastAPI app serving ``GET /hello`` itself and the gateway under ``/llm``."""
    llm = gateway if gateway is not None else Gateway.from_config()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # FastAPI does not run a mounted app's lifespan: the gateway's start-up and shutdown run here.
        async with llm.lifespan(app):
            app.state.greeting = "hello from the host app"  # the host's own start-up
            yield
            # the host's own shutdown goes here; the gateway's runs after it

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello")
    async def hello(request: Request) -> dict[str, str]:
        greeting: str = request.app.state.greeting
        return {"message": greeting}

    app.mount("/llm", llm.app)  # POST /llm/v1/chat/completions, /llm/{project_id}/v1/..., ...
    # The host's own tracing; without exclude_spans every SSE chunk would become a span of its own.
    app.add_middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"], tracer_provider=tracer_provider)
    return app


app = build_app()
