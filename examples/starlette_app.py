"""relaygate mounted at ``/llm`` inside a Starlette app that has routes and start-up work of its own.

Run it from the repository root::

    .venv/bin/uvicorn examples.starlette_app:app --port 8000

    curl -s http://127.0.0.1:8000/hello
    curl -s http://127.0.0.1:8000/llm/v1/chat/completions \\
      -H 'Content-Type: application/json' \\
      -d '{"model": "mock/echo", "messages": [{"role": "user", "content": "Hello"}]}'

The gateway comes from ``Gateway.from_config()``: ``$RELAYGATE_CONFIG`` or ``./relaygate.yaml`` when
present, else the embedded default (the built-in ``mock`` provider, no API keys).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relaygate import Gateway


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"message": request.app.state.greeting})


def build_app(gateway: Gateway | None = None) -> Starlette:
    """A Starlette app serving ``GET /hello`` itself and the gateway under ``/llm``."""
    llm = gateway if gateway is not None else Gateway.from_config()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Starlette does not run a mounted app's lifespan: the gateway's start-up and shutdown run here.
        async with llm.lifespan(app):
            app.state.greeting = "hello from the host app"  # the host's own start-up
            yield
            # the host's own shutdown goes here; the gateway's runs after it

    app = Starlette(routes=[Route("/hello", hello)], lifespan=lifespan)
    app.mount("/llm", llm.app)  # POST /llm/v1/chat/completions, /llm/{project_id}/v1/..., ...
    return app


app = build_app()
