"""One request of the Messages API: :class:`MessagesExchange`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Scope, Send

from relaygate._asgi import read_body, send_json
from relaygate.dialects.base import DialectRoute, Exchange, NativeRequest, StreamTranslator
from relaygate.dialects.messages.answer import error_body, message
from relaygate.dialects.messages.content import Untranslatable
from relaygate.dialects.messages.count import HEADER, count_tokens
from relaygate.dialects.messages.models import model_page, one_model
from relaygate.dialects.messages.native import native_request
from relaygate.dialects.messages.request import chat_request, check_request
from relaygate.dialects.messages.stream import MessagesStream, NativeEvents
from relaygate.errors import InvalidRequestError, NotFoundError
from relaygate.providers.params import invalid
from relaygate.requests import parse_json_object

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.dialects.messages import MessagesDialect
    from relaygate.providers.base import Provider
    from relaygate.routing import Target

__all__ = ["MessagesExchange"]

JSON = dict[str, Any]


class MessagesExchange(Exchange):
    dialect: MessagesDialect

    def __init__(
        self, dialect: MessagesDialect, ctx: RequestContext, route: DialectRoute, params: dict[str, str]
    ) -> None:
        super().__init__(dialect, ctx, route, params)
        self.raw = b""
        self.request: JSON = {}
        # The caller's request headers (set by MessagesDialect.prepare): anthropic-beta goes to Anthropic.
        self.headers: dict[bytes, bytes] = {}
        self.untranslatable: list[Untranslatable] = []

    @property
    def model(self) -> str:
        """The model the caller asked for."""
        return str(self.request.get("model") or "")

    def note_id(self, message_id: str) -> str:
        """``message_id`` is the id the client gets: the call's response id too (the span's)."""
        if message_id:
            self.ctx.response_id = message_id
        return message_id

    # --- the request --------------------------------------------------------------------------------------

    async def canonical(self, raw: bytes) -> JSON:
        body = parse_json_object(raw)
        check_request(body)
        self.raw, self.request = raw, body
        anthropic = self.dialect.anthropic_only(body["model"], body)
        return chat_request(body, anthropic=anthropic, untranslatable=self.untranslatable)

    def native_request(self, provider: Provider, model: str) -> NativeRequest | None:
        return native_request(self, provider, model)

    def check_translatable(self, target: Target) -> None:
        if self.untranslatable:
            raise self.untranslatable[0].error()

    # --- what leaves ---------------------------------------------------------------------------------------

    async def answer(self, body: JSON) -> bytes:
        answer = message(body, model=self.model)
        self.note_id(answer["id"])
        return orjson.dumps(answer)

    def stream(self) -> StreamTranslator:
        return NativeEvents(self) if self.native else MessagesStream(self)

    def error(self, status: int, error: JSON) -> tuple[int, bytes]:
        return error_body(status, error, self.ctx.trace_id or None)

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        # Anthropic's request id header: the SDKs keep it on every answer and error (``_request_id``).
        return [(b"request-id", self.ctx.trace_id.encode())] if self.ctx.trace_id else []

    # --- count_tokens, the models, and the rest of /v1/messages/... --------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self.route.name
        if name == "count_tokens":
            self.raw = await read_body(scope, receive, self.dialect.max_body_bytes)
            body = parse_json_object(self.raw)
            if not isinstance(body.get("model"), str) or not body["model"]:
                raise InvalidRequestError("model: Field required", param="model", code="missing_required_parameter")
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise invalid("messages", "expected a non-empty array of messages")
            self.request = body
            answer, kind = await count_tokens(self, body)
            await send_json(send, 200, answer, [(HEADER, kind)])
        elif name == "models":
            page = model_page(await self.dialect.model_entries(self.ctx), scope.get("query_string", b""))
            await send_json(send, 200, orjson.dumps(page))
        elif name == "model":
            model = one_model(await self.dialect.model_entries(self.ctx), self.params["id"])
            await send_json(send, 200, orjson.dumps(model))
        else:
            raise NotFoundError(f"Not found: {scope['method']} {scope['path']}.", code="unknown_url")
