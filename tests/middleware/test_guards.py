"""GuardsMiddleware alone, around small ASGI apps, driven by hand to see every message it sends."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.types import Receive, Scope, Send

from relaygate import GuardsMiddleware
from relaygate._asgi import read_json_body
from relaygate.context import get_context
from relaygate.guards import Guards
from relaygate.settings import GuardSettings
from tests.asgi import Exchange, http_scope, run

pytestmark = pytest.mark.anyio

GUARDS = Guards(
    {
        "no_pii": GuardSettings(type="pii", stage="input", action="redact"),
        "short": GuardSettings(type="word_count", stage="input", parameters={"max_words": 3}),
        "pii_out": GuardSettings(type="pii", stage="output", action="redact"),
        "json_out": GuardSettings(type="json_schema", stage="output", parameters={"schema": {"type": "object"}}),
    },
    projects={"p": ["no_pii"]},
)
CHAT = "/v1/chat/completions"


def request(content: str, **extra: Any) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}], **extra})


async def echo_body(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the body it would send upstream, as a chat completion recorded on the context."""
    body = await read_json_body(scope, receive, 1 << 20)
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": body["messages"][0]["content"]}}]}
    get_context(scope).record_response(answer)
    raw = orjson.dumps(answer)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


async def stream_of(scope: Scope, receive: Receive, send: Send) -> None:
    """Streams its prompt's words as chunks through the context's output filter, as the stream mapper does."""
    body = await read_json_body(scope, receive, 1 << 20)
    ctx = get_context(scope)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for word in body["messages"][0]["content"].split(" "):
        chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
        assert ctx.output_filter is not None
        for out in ctx.output_filter.on_chunk(chunk) or [chunk]:
            await send(
                {"type": "http.response.body", "body": b"data: " + orjson.dumps(out) + b"\n\n", "more_body": True}
            )
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_input_redaction_is_what_the_app_reads_from_the_context() -> None:
    app = GuardsMiddleware(echo_body, guards=GUARDS)
    scope = http_scope(CHAT)
    get_context(scope).project_id = "p"
    exchange = await run(app, scope, Exchange(request("mail me: a@b.io")))
    assert exchange.status == 200
    assert orjson.loads(exchange.text)["choices"][0]["message"]["content"] == "mail me: [EMAIL]"


async def test_a_refused_request_never_reaches_the_app() -> None:
    async def unreachable(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app was called")

    exchange = await run(
        GuardsMiddleware(unreachable, guards=GUARDS),
        http_scope(CHAT),
        Exchange(request("one two three four", extra={"guards": ["short"]})),
    )
    assert exchange.status == 400
    assert [message["type"] for message in exchange.messages] == ["http.response.start", "http.response.body"]


async def test_a_redacted_answer_gets_a_new_content_length_and_one_start() -> None:
    body = request("call +1 415 555 0132", extra={"guards": ["pii_out"]})
    exchange = await run(GuardsMiddleware(echo_body, guards=GUARDS), http_scope(CHAT), Exchange(body))
    starts = [message for message in exchange.messages if message["type"] == "http.response.start"]
    assert len(starts) == 1
    assert exchange.headers["content-length"] == str(len(exchange.chunks[0]))
    assert orjson.loads(exchange.text)["choices"][0]["message"]["content"] == "call [PHONE]"


async def test_a_held_stream_is_released_whole_or_replaced_by_one_error_response() -> None:
    app = GuardsMiddleware(stream_of, guards=GUARDS)
    held = await run(
        app, http_scope(CHAT), Exchange(request("not json at all", stream=True, extra={"guards": ["json_out"]}))
    )
    assert [message["type"] for message in held.messages] == ["http.response.start", "http.response.body"]
    assert held.status == 400 and orjson.loads(held.text)["error"]["code"] == "guard_violation"

    ok = await run(app, http_scope(CHAT), Exchange(request("{}", stream=True, extra={"guards": ["json_out"]})))
    assert ok.status == 200 and ok.text.endswith("data: [DONE]\n\n")
    assert sum(message["type"] == "http.response.start" for message in ok.messages) == 1


async def test_other_paths_methods_and_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"] + " " + scope.get("path", ""))

    middleware = GuardsMiddleware(app, guards=GUARDS)
    await middleware({"type": "lifespan"}, Exchange().receive, Exchange().send)
    await middleware(http_scope("/v1/models", method="GET"), Exchange().receive, Exchange().send)
    await middleware(http_scope(CHAT, method="GET"), Exchange().receive, Exchange().send)
    assert seen == ["lifespan ", "http /v1/models", "http /v1/chat/completions"]
