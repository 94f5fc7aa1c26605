"""Streaming through the whole stack, watched message by message with a collecting ``send``."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest

from relaygate import Gateway, RequestContext, get_context
from relaygate.settings import ProviderSettings, Settings
from tests.asgi import Exchange, http_scope, run
from tests.conftest import KEY_A, make_settings
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {KEY_A}", "content-type": "application/json"}


def chat(model: str, **extra: Any) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": True, **extra})


async def test_stream_messages_come_in_order_with_whole_events(gateway: Gateway) -> None:
    exchange = await run(
        gateway.app, http_scope("/v1/chat/completions", headers=AUTH), Exchange(chat("upstream/paced"))
    )
    types = [m["type"] for m in exchange.messages]
    assert types[0] == "http.response.start" and types.count("http.response.start") == 1
    assert exchange.status == 200
    assert exchange.headers["content-type"].startswith("text/event-stream")
    assert exchange.headers["x-accel-buffering"] == "no"
    assert "x-trace-id" in exchange.headers
    bodies = exchange.messages[1:]
    assert all(m["more_body"] for m in bodies[:-1]) and bodies[-1] == {
        "type": "http.response.body",
        "body": b"",
        "more_body": False,
    }
    assert len(exchange.chunks) > 3, "frames are relayed as they arrive, not gathered into one body"
    for chunk in exchange.chunks:
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
    assert exchange.chunks[-1].endswith(b"data: [DONE]\n\n")


async def test_client_leaving_mid_stream_closes_the_upstream_at_once(
    gateway: Gateway, fake_upstream: FakeOpenAI
) -> None:
    scope = http_scope("/v1/chat/completions", headers=AUTH)
    exchange = Exchange(chat("upstream/endless"), disconnect_after_chunks=3)
    with anyio.fail_after(5):
        await run(gateway.app, scope, exchange)
    assert await anyio.to_thread.run_sync(fake_upstream.disconnected.wait, 3), "the upstream saw the disconnect"
    assert get_context(scope).error == "client_disconnected"
    assert exchange.messages[-1].get("more_body") is True, "nothing is sent after the client left"


async def test_client_leaving_a_mock_stream_stops_it() -> None:
    gateway = Gateway(Settings(providers={"mock": ProviderSettings(kind="mock", chunk_delay=0.2)}))
    scope = http_scope("/v1/chat/completions", headers={"content-type": "application/json"})
    exchange = Exchange(chat("mock/echo"), disconnect_after_chunks=2)
    async with gateway.lifespan():
        with anyio.fail_after(1):  # the whole reply would take 6 x 0.2 s
            await run(gateway.app, scope, exchange)
    assert b"[DONE]" not in b"".join(exchange.chunks)


async def test_silence_before_the_first_chunk_is_a_504_not_a_stream(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    gateway = Gateway(make_settings(upstream_url, provider={"timeouts": {"first_chunk": 0.3}}))
    async with gateway.lifespan():
        exchange = await run(
            gateway.app, http_scope("/v1/chat/completions", headers=AUTH), Exchange(chat("upstream/sleep-1"))
        )
    assert exchange.status == 504
    assert exchange.headers["content-type"] == "application/json"
    assert orjson.loads(exchange.text)["error"]["code"] == "upstream_timeout"


async def test_an_upstream_error_status_on_a_stream_is_a_json_error(gateway: Gateway) -> None:
    exchange = await run(
        gateway.app, http_scope("/v1/chat/completions", headers=AUTH), Exchange(chat("upstream/status-429"))
    )
    assert exchange.status == 429
    assert exchange.headers["retry-after"] == "7"
    assert orjson.loads(exchange.text)["error"]["message"] == "fake failure 429"


class Recorder:
    def __init__(self) -> None:
        self.chunks: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.ended: list[RequestContext] = []

    def on_response(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        self.responses.append(body)

    def on_chunk(self, ctx: RequestContext, chunk: dict[str, Any]) -> None:
        self.chunks.append(chunk)

    def on_end(self, ctx: RequestContext) -> None:
        self.ended.append(ctx)


@pytest.mark.parametrize("stream", [True, False])
async def test_observers_see_parsed_chunks_usage_and_the_end(gateway: Gateway, stream: bool) -> None:
    recorder = Recorder()
    scope = http_scope("/v1/chat/completions", headers={**AUTH, "x-thread-id": "th-1"})
    get_context(scope).observers.append(recorder)
    body = chat("upstream/gpt-4o", stream=stream)
    exchange = await run(gateway.app, scope, Exchange(body))
    assert exchange.status == 200
    (ctx,) = recorder.ended
    assert ctx.status == 200 and ctx.error is None
    assert ctx.usage is not None and (ctx.usage.prompt_tokens, ctx.usage.cached_tokens) == (11, 3)
    assert ctx.finish_reasons == ["stop"]
    assert ctx.project_id == "proj-a" and ctx.thread_id == "th-1"
    assert ctx.route is not None and ctx.route.provider.name == "upstream" and ctx.route.model == "gpt-4o"
    if stream:
        assert len(recorder.chunks) >= 5 and not recorder.responses
        assert recorder.chunks[-1]["usage"]["total_tokens"] == 16, "the dropped usage chunk is still observed"
        assert ctx.first_chunk_at is not None
    else:
        assert recorder.responses[0]["id"] == "chatcmpl-fake" and not recorder.chunks
