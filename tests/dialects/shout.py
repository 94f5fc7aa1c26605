"""A toy dialect for the framework's tests, and the smallest example of one.

``POST /v1/shout`` takes ``{"model", "say", "stream"?}`` and answers ``{"shouted": <the answer in
capitals>, "tokens": <total tokens>}``; streamed, ``event: piece`` per chunk and ``event: end``. Errors
are ``{"oops": {"message", "code"}}``, with 418 for a missing or wrong key (auth's 401). Its key may come
as ``x-shout-key``. ``GET /v1/shout/{id}`` is served by the dialect itself. A provider named in
``native`` speaks the dialect: it gets ``{"model", "messages"}`` on its chat path, and the client gets its
answer as it came.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

import orjson
from starlette.types import Receive, Scope, Send

from relaygate._asgi import send_json
from relaygate.context import RequestContext
from relaygate.dialects import Dialect, DialectRoute, Exchange, NativeRequest, StreamTranslator, sse_event
from relaygate.errors import InvalidRequestError
from relaygate.providers.base import Provider, json_answer
from relaygate.providers.openai import _PassThrough
from relaygate.requests import parse_json_object
from relaygate.routes import Route

JSON = dict[str, Any]


# What the OpenAPI document says of each route (a dialect route without one is refused at start-up).
SHOUT = Route(
    "POST", "/v1/shout", "shout", "Shout", "Shout", model_call=True, body=dict[str, Any], answer=dict[str, Any]
)
ECHO = Route("GET", "/v1/shout/{id}", "echoShout", "Echo", "Shout", answer=JSON)


class ShoutDialect(Dialect):
    name: ClassVar[str] = "shout"
    routes: ClassVar[tuple[DialectRoute, ...]] = (
        DialectRoute("POST", "/v1/shout", canonical="/v1/chat/completions", name="shout", doc=SHOUT),
        DialectRoute("GET", r"/v1/shout/(?P<id>[^/]{1,64})", name="echo", doc=ECHO),
    )

    def __init__(self, *, native: Collection[str] = ()) -> None:
        self.native = frozenset(native)

    def prepare(self, scope: Scope) -> Scope:
        headers = scope["headers"]
        key = next((value for name, value in headers if name == b"x-shout-key"), None)
        if key is None:
            return scope
        return {**scope, "headers": [*headers, (b"authorization", b"Bearer " + key)]}

    def exchange(self, ctx: RequestContext, route: DialectRoute, params: dict[str, str]) -> ShoutExchange:
        return ShoutExchange(self, ctx, route, params)


class ShoutExchange(Exchange):
    dialect: ShoutDialect

    async def canonical(self, raw: bytes) -> JSON:
        body = parse_json_object(raw)
        if not isinstance(body.get("say"), str):
            raise InvalidRequestError("Say something: 'say' must be a string.", param="say", code="invalid_value")
        self.say = body["say"]
        out: JSON = {"model": body.get("model"), "messages": [{"role": "user", "content": self.say}]}
        for key in ("stream", "extra"):
            if key in body:
                out[key] = body[key]
        if body.get("stream"):
            out["stream_options"] = {"include_usage": True}
        return out

    def native_request(self, provider: Provider, model: str) -> NativeRequest | None:
        if provider.name not in self.dialect.native:
            return None
        name = provider.name

        def answer(raw: bytes, ctx: RequestContext) -> bytes:
            ctx.record_response(json_answer(raw, name))
            return raw

        stream = bool(self.ctx.body and self.ctx.body.get("stream"))
        body: JSON = {"model": model, "messages": [{"role": "user", "content": self.say}], "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        # Sent as these bytes (indented), as a dialect that relays the caller's own bytes would.
        content = orjson.dumps(body, option=orjson.OPT_INDENT_2)
        return NativeRequest(
            "/chat/completions",
            body,
            answer,
            lambda ctx: _PassThrough(name, ctx, usage_chunk=True),
            {"x-native": "yes"},
            content,
        )

    async def answer(self, body: JSON) -> bytes:
        content = body["choices"][0]["message"]["content"] or ""
        return orjson.dumps({"shouted": content.upper(), "tokens": (body.get("usage") or {}).get("total_tokens")})

    def stream(self) -> StreamTranslator:
        return ShoutStream()

    def error(self, status: int, error: JSON) -> tuple[int, bytes]:
        body = {"oops": {"message": error.get("message"), "code": error.get("code"), "param": error.get("param")}}
        return (418 if status == 401 else status), orjson.dumps(body)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, orjson.dumps({"id": self.params["id"], "project": self.ctx.project_id}))


class ShoutStream(StreamTranslator):
    def chunk(self, chunk: JSON) -> bytes:
        out = b""
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                out += sse_event("piece", {"text": content.upper()})
        return out

    async def done(self) -> bytes:
        return sse_event("end", {})

    async def failed(self, error: JSON) -> bytes:
        return sse_event("oops", {"message": error.get("message"), "code": error.get("code")})
