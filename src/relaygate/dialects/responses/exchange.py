"""One request of the Responses API: :class:`ResponsesExchange`."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Scope, Send

from relaygate._asgi import send_json
from relaygate.dialects.base import DialectRoute, Exchange, NativeRequest, StreamTranslator
from relaygate.dialects.responses.answer import Shape, item_id
from relaygate.dialects.responses.native import native_request
from relaygate.dialects.responses.request import Untranslatable, chat_request, check_request, input_items
from relaygate.dialects.responses.stream import ResponsesStream
from relaygate.errors import InvalidRequestError
from relaygate.middleware.auth import OPEN_PROJECT
from relaygate.requests import parse_json_object
from relaygate.sse import SSEDecoder

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.dialects.responses import ResponsesDialect
    from relaygate.providers.base import Provider
    from relaygate.routing import Target

__all__ = ["ResponsesExchange"]

JSON = dict[str, Any]

# Chat Completions parameters an adapter may name in an error, as the Responses API calls them.
PARAMS = (
    (re.compile(r"^(max_completion_tokens|max_tokens)\b"), "max_output_tokens"),
    (re.compile(r"^response_format\.json_schema\b"), "text.format"),
    (re.compile(r"^response_format\b"), "text.format"),
    (re.compile(r"^reasoning_effort\b"), "reasoning.effort"),
    (re.compile(r"^tools\[(\d+)\]\.function\b"), r"tools[\1]"),
    (re.compile(r"^tool_choice\.function\b"), "tool_choice"),
    (re.compile(r"^messages(\[\d+\])?"), "input"),
)
# Events of a native stream that carry the whole response.
RESPONSE_EVENTS = frozenset({"response.created", "response.in_progress", "response.completed", "response.incomplete"})


class ResponsesExchange(Exchange):
    dialect: ResponsesDialect

    def __init__(
        self, dialect: ResponsesDialect, ctx: RequestContext, route: DialectRoute, params: dict[str, str]
    ) -> None:
        super().__init__(dialect, ctx, route, params)
        self.request: JSON = {}
        # The whole input of the call: the stored conversation of previous_response_id, then the request's.
        self.input: list[JSON] = []
        self.expanded = False
        self.untranslatable: list[Untranslatable] = []
        self.shape = Shape({}, item_id("resp"), int(time.time()))
        self._decoder: SSEDecoder | None = None

    @property
    def project(self) -> str:
        return self.ctx.project_id or OPEN_PROJECT

    # --- the request --------------------------------------------------------------------------------------

    async def canonical(self, raw: bytes) -> JSON:
        body = parse_json_object(raw)
        check_request(body)
        self.request = body
        self.shape = Shape(body, self.shape.id, self.shape.created_at)
        items = input_items(body.get("input"), self.untranslatable)
        previous = body.get("previous_response_id")
        if previous:
            history = await self.dialect.conversations.history(self.project, previous)
            items = [*input_items(history, self.untranslatable), *items]
            self.expanded = True
        self.input = items
        return chat_request(body, items, self.untranslatable)

    def native_request(self, provider: Provider, model: str) -> NativeRequest | None:
        return native_request(self, provider, model)

    def check_translatable(self, target: Target) -> None:
        if self.untranslatable:
            raise self.untranslatable[0].error()

    # --- what leaves ---------------------------------------------------------------------------------------

    async def answer(self, body: JSON) -> bytes:
        response = self.shape.response(body)
        await self.keep(response)
        return orjson.dumps(response)

    async def native_answer(self, raw: bytes) -> bytes:
        response = orjson.loads(raw)
        if not isinstance(response, dict):
            return raw
        if self._restore_previous(response):
            raw = orjson.dumps(response)
        await self.keep(response)
        return raw

    def stream(self) -> StreamTranslator:
        return _NativeEvents(self) if self.native else ResponsesStream(self)

    def error(self, status: int, error: JSON) -> tuple[int, bytes]:
        # The Responses API answers errors in the OpenAI shape; only a Chat Completions parameter an adapter
        # named becomes the Responses API's.
        param = error.get("param")
        if isinstance(param, str):
            for pattern, name in PARAMS:
                if pattern.match(param):
                    param = pattern.sub(name, param, count=1)
                    break
        body = {
            "error": {
                "message": error.get("message") or "The request failed.",
                "type": error.get("type") or "server_error",
                "param": param,
                "code": error.get("code"),
            }
        }
        return status, orjson.dumps(body)

    async def keep(self, response: JSON) -> None:
        """Store ``response`` for previous_response_id and GET, unless the request said ``store: false``.

        Its id becomes the call's response id (the span's ``gen_ai.response.id``): the id the client got.
        """
        self.ctx.response_id = str(response.get("id") or self.ctx.response_id)
        await self.dialect.conversations.save(self.project, response, self.input)

    def _restore_previous(self, response: JSON) -> bool:
        """A native answer to an expanded request names the previous response the client named."""
        if not self.expanded:
            return False
        response["previous_response_id"] = self.request.get("previous_response_id")
        return True

    # --- GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items -----------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        conversations = self.dialect.conversations
        response_id = self.params["id"]
        name = self.route.name
        if name == "retrieve":
            if b"stream=true" in scope.get("query_string", b""):
                raise InvalidRequestError(
                    "Streaming a stored response again is not supported; retrieve it without stream.",
                    param="stream",
                    code="unsupported_parameter",
                )
            body = await conversations.retrieve(self.project, response_id)
        elif name == "delete":
            body = await conversations.delete(self.project, response_id)
        else:
            body = await conversations.input_items(self.project, response_id, scope.get("query_string", b""))
        await send_json(send, 200, orjson.dumps(body))


class _NativeEvents(StreamTranslator):
    """A native stream: its events relayed as they came; the response they end with is stored, and names
    the previous response the client named."""

    def __init__(self, exchange: ResponsesExchange) -> None:
        self.exchange = exchange
        self.decoder = SSEDecoder()

    async def native(self, data: bytes, *, last: bool) -> bytes:
        out = b""
        events = self.decoder.feed(data) + (self.decoder.close() if last else [])
        for event in events:
            payload = _json(event.data)
            response = payload.get("response") if payload is not None else None
            name = event.event or (str(payload.get("type")).encode() if payload is not None else b"")
            if payload is not None and isinstance(response, dict) and payload.get("type") in RESPONSE_EVENTS:
                if self.exchange._restore_previous(response):
                    event = event._replace(data=orjson.dumps(payload))
                if payload["type"] in ("response.completed", "response.incomplete"):
                    await self.exchange.keep(response)
            out += (b"event: " + name + b"\n" if name else b"") + b"data: " + event.data + b"\n\n"
        return out

    def chunk(self, chunk: JSON) -> bytes:
        return b""

    async def done(self) -> bytes:
        return b""

    async def failed(self, error: JSON) -> bytes:
        return b""


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
