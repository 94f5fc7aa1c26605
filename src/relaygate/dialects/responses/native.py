"""Native pass-through: a provider that serves the Responses API itself gets the caller's request as it is.

An OpenAI provider with ``native_responses: true`` takes ``POST {base_url}/responses`` with the caller's
body, the model name replaced and the gateway's own fields (``extra``, ...) taken out; a
``previous_response_id`` is expanded from the gateway's store (every response is the project's own, and
one answered by another provider is no id upstream would know). Built-in tools, reasoning items and every
field pass through untouched, and the answer comes back as the provider wrote it.

The ledger, limits and spans still need the canonical answer: :func:`chat_completion` reads a whole
response, :class:`ResponsesEvents` a stream's events into canonical chunks, recorded on the context while
the native bytes are relayed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relaygate.dialects.base import NativeRequest
from relaygate.dialects.responses.answer import chat_completion, chat_usage, obj
from relaygate.errors import UpstreamError
from relaygate.providers.base import Provider, json_answer
from relaygate.providers.errors import stream_error
from relaygate.providers.streaming import DONE_FRAME, ChunkMapper
from relaygate.requests import GATEWAY_FIELDS
from relaygate.sse import SSEEvent

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.dialects.responses.exchange import ResponsesExchange

__all__ = ["ResponsesEvents", "native_request"]

JSON = dict[str, Any]
# Roles whose input messages carry no id in the API: ids the gateway gave them when it stored them stay here.
INPUT_ROLES = frozenset({"user", "system", "developer"})


def native_request(exchange: ResponsesExchange, provider: Provider, model: str) -> NativeRequest | None:
    """The request for ``provider`` when it serves the Responses API itself; else ``None``."""
    if provider.kind != "openai" or not provider.settings.native_responses:
        return None
    body = {key: value for key, value in exchange.request.items() if key not in GATEWAY_FIELDS}
    body["model"] = model
    if exchange.expanded:
        body.pop("previous_response_id", None)
        body["input"] = [_sendable(item) for item in exchange.input]
    name = provider.name

    def answer(raw: bytes, ctx: RequestContext) -> bytes:
        ctx.record_response(chat_completion(json_answer(raw, name)))
        return raw

    return NativeRequest("/responses", body, answer, lambda ctx: ResponsesEvents(name, ctx, usage_chunk=False))


def _sendable(item: JSON) -> JSON:
    if item.get("type") == "message" and item.get("role") in INPUT_ROLES and "id" in item:
        return {key: value for key, value in item.items() if key not in ("id", "status")}
    return item


class ResponsesEvents(ChunkMapper):
    """A Responses API event stream read into canonical chunks (recorded on the context)."""

    def __init__(self, provider: str, ctx: RequestContext, *, usage_chunk: bool) -> None:
        super().__init__(provider, ctx, usage_chunk=usage_chunk)
        self.started = False
        self.usage: JSON = {}
        self.calls: dict[str, int] = {}  # function call item id -> canonical tool call index
        self.finished = False

    def error_in(self, payload: JSON, event: SSEEvent) -> UpstreamError | None:
        kind = payload.get("type")
        if kind == "error":
            return stream_error(self.provider, payload)
        if kind == "response.failed":
            response = obj(payload.get("response"))
            return stream_error(self.provider, response.get("error"))
        return None

    def on_event(self, payload: JSON, event: SSEEvent) -> tuple[bytes, bool]:
        kind = payload.get("type")
        if kind == "response.created":
            response = obj(payload.get("response"))
            self.started = True
            self.id = str(response.get("id") or "")
            self.model = str(response.get("model") or self.model)
            return self._emit({"role": "assistant", "content": ""}), False
        if kind == "response.output_text.delta" and isinstance(payload.get("delta"), str):
            return self._emit({"content": payload["delta"]}), False
        if kind == "response.output_item.added":
            item = obj(payload.get("item"))
            if item.get("type") != "function_call":
                return b"", False
            position = self.calls[str(item.get("id"))] = len(self.calls)
            call = {"index": position, "id": item.get("call_id"), "type": "function"}
            call["function"] = {"name": item.get("name"), "arguments": item.get("arguments") or ""}
            return self._emit({"tool_calls": [call]}), False
        if kind == "response.function_call_arguments.delta":
            known = self.calls.get(str(payload.get("item_id")))
            if known is None or not isinstance(payload.get("delta"), str):
                return b"", False
            return self._emit({"tool_calls": [{"index": known, "function": {"arguments": payload["delta"]}}]}), False
        if kind in ("response.completed", "response.incomplete"):
            response = obj(payload.get("response"))
            if isinstance(response.get("usage"), dict):
                self.usage = chat_usage(response["usage"])
            finish = chat_completion(response)["choices"][0]["finish_reason"]
            self.finished = True
            return self._emit({}, finish) + self.usage_frame() + DONE_FRAME, True
        return b"", False

    def has_usage(self) -> bool:
        return self.started

    def usage_so_far(self) -> JSON:
        return self.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

    def _emit(self, delta: JSON, finish: str | None = None) -> bytes:
        return self.emit([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
