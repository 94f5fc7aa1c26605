"""A canonical chat stream as Anthropic's event stream, and a native one passed through.

:class:`MessagesStream` writes Anthropic's sequence as the chunks come: ``message_start`` (usage so far)
and a ``ping`` with the first chunk; for each content block ``content_block_start``, its deltas
(``thinking_delta`` for reasoning text, ``text_delta``, ``input_json_delta`` for a tool call's arguments)
and ``content_block_stop`` when the next block starts or the stream ends; then ``message_delta`` with the
``stop_reason`` and the whole usage, and ``message_stop``. A failure (the provider's, a guard's) ends the
stream with an ``error`` event, as Anthropic ends one.

:class:`NativeEvents` relays an Anthropic provider's own events untouched; only what the gateway itself
says mid-stream (an upstream cut off, a read that timed out) is written as Anthropic's ``error`` event,
and a stream that ends before ``message_stop`` gets one too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relaygate.dialects.base import StreamTranslator, sse_event
from relaygate.dialects.messages.answer import error_body, message_id, obj, status_of, usage
from relaygate.providers.anthropic.mapping import stop_reason
from relaygate.sse import SSEDecoder

if TYPE_CHECKING:
    from relaygate.dialects.messages.exchange import MessagesExchange

__all__ = ["MessagesStream", "NativeEvents"]

JSON = dict[str, Any]

INCOMPLETE: JSON = {"message": "The stream ended before the message was complete.", "type": "server_error"}


def error_event(exchange: MessagesExchange, error: JSON) -> bytes:
    """Anthropic's ``error`` event for the OpenAI-shaped ``error`` object."""
    _, body = error_body(status_of(error), error, exchange.ctx.trace_id or None)
    return b"event: error\ndata: " + body + b"\n\n"


class MessagesStream(StreamTranslator):
    def __init__(self, exchange: MessagesExchange) -> None:
        self.exchange = exchange
        self.started = False
        self.index = -1  # of the open content block
        self.kind: str | None = None  # its type: thinking, text or tool_use
        self.calls: dict[int, int] = {}  # canonical tool call index -> content block index
        self.finish: str | None = None
        self.usage: JSON | None = None

    def _start(self, chunk: JSON) -> bytes:
        if self.started:
            return b""
        self.started = True
        model = chunk.get("model") if isinstance(chunk.get("model"), str) and chunk.get("model") else None
        message: JSON = {
            "id": self.exchange.note_id(message_id(chunk.get("id"))),
            "type": "message",
            "role": "assistant",
            "model": model or self.exchange.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage(chunk.get("usage")),
        }
        return sse_event("message_start", {"type": "message_start", "message": message}) + sse_event(
            "ping", {"type": "ping"}
        )

    def chunk(self, chunk: JSON) -> bytes:
        out = self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = obj(choice.get("delta"))
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                out += self._delta({"type": "thinking_delta", "thinking": reasoning})
            for key in ("content", "refusal"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    out += self._open("text", {"type": "text", "text": ""})
                    out += self._delta({"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out += self._call(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def _call(self, call: JSON) -> bytes:
        out = b""
        position = call.get("index", 0)
        function = obj(call.get("function"))
        block = self.calls.get(position)
        if block is None:
            opening: JSON = {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._open("tool_use", opening, new=True)
            self.calls[position] = self.index
        elif block != self.index:
            return b""  # arguments of a call whose block is closed already: chat streams do not interleave them
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def _open(self, kind: str, block: JSON, *, new: bool = False) -> bytes:
        """The start of a block of ``kind``, closing the open one, unless a block of that kind is open."""
        if self.kind == kind and not new:
            return b""
        out = self._close()
        self.index += 1
        self.kind = kind
        payload = {"type": "content_block_start", "index": self.index, "content_block": block}
        return out + sse_event("content_block_start", payload)

    def _delta(self, delta: JSON) -> bytes:
        return sse_event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})

    def _close(self) -> bytes:
        if self.kind is None:
            return b""
        self.kind = None
        return sse_event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    async def done(self) -> bytes:
        out = self._start({}) + self._close()
        delta = {"stop_reason": stop_reason(self.finish), "stop_sequence": None}
        out += sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage(self.usage)})
        return out + sse_event("message_stop", {"type": "message_stop"})

    async def failed(self, error: JSON) -> bytes:
        return error_event(self.exchange, error)


class NativeEvents(StreamTranslator):
    """An Anthropic provider's stream, relayed as it came (see the module docstring)."""

    def __init__(self, exchange: MessagesExchange) -> None:
        self.exchange = exchange
        self.decoder = SSEDecoder()
        self.ended = False

    async def native(self, data: bytes, *, last: bool) -> bytes:
        if data.startswith(b"data: {"):
            # The proxy's own error frame (an upstream cut off mid-answer), OpenAI-shaped: not the provider's.
            error = _json(data[6:].strip())
            if error is not None and isinstance(error.get("error"), dict):
                self.ended = True
                return error_event(self.exchange, error["error"])
        for event in self.decoder.feed(data) + (self.decoder.close() if last else []):
            if event.event in (b"message_stop", b"error"):
                self.ended = True
            elif event.event is None and b'"message_stop"' in event.data:
                self.ended = True
        if last and not self.ended:
            self.ended = True
            return data + error_event(self.exchange, dict(INCOMPLETE))
        return data

    def chunk(self, chunk: JSON) -> bytes:
        return b""

    async def done(self) -> bytes:
        return b""

    async def failed(self, error: JSON) -> bytes:
        return error_event(self.exchange, error)


def _json(data: bytes) -> JSON | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
