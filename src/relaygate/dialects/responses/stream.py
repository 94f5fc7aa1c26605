"""A canonical chat stream as the Responses API's event stream.

Events go out as the chunks come, each with the next ``sequence_number`` (from 0):
``response.created`` and ``response.in_progress`` with the first chunk; for each output item
``response.output_item.added``, its deltas and its ``.done`` events (a message's
``response.content_part.added``/``response.output_text.delta``/``.done``, a function call's
``response.function_call_arguments.delta``/``.done``, a reasoning text's summary events); then
``response.completed`` (or ``response.incomplete``) with the whole response, once stored. A failure
(an error event of the inner stream: the provider's, a guard's) ends the stream with ``response.failed``.

An item is done when the next one starts (chat streams give a message's text, then its tool calls one
after another) or when the stream ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relaygate.dialects.base import StreamTranslator, sse_event
from relaygate.dialects.responses.answer import item_id, obj, output_text

if TYPE_CHECKING:
    from relaygate.dialects.responses.exchange import ResponsesExchange

__all__ = ["ResponsesStream"]

JSON = dict[str, Any]


@dataclass(slots=True)
class _Open:
    """The output item being streamed."""

    index: int
    item: JSON
    # A message's parts as (kind, pieces of text so far); a function call's arguments; a reasoning summary.
    parts: list[tuple[str, list[str]]] = field(default_factory=list)
    call: int | None = None  # the canonical tool call index of a function call


class ResponsesStream(StreamTranslator):
    def __init__(self, exchange: ResponsesExchange) -> None:
        self.exchange = exchange
        self.shape = exchange.shape
        self.sequence = 0
        self.started = False
        self.model = str(exchange.request.get("model") or "")
        self.items: list[JSON] = []
        self.open: _Open | None = None
        self.calls: dict[int, _Open] = {}
        self.finish: str | None = None
        self.usage: JSON | None = None

    def _event(self, kind: str, payload: JSON) -> bytes:
        data = {"type": kind, **payload, "sequence_number": self.sequence}
        self.sequence += 1
        return sse_event(kind, data)

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        skeleton = self.shape.skeleton(self.model)
        return self._event("response.created", {"response": skeleton}) + self._event(
            "response.in_progress", {"response": skeleton}
        )

    # --- canonical chunks in ---------------------------------------------------------------------------

    def chunk(self, chunk: JSON) -> bytes:
        if not self.started and isinstance(chunk.get("model"), str) and chunk["model"]:
            self.model = chunk["model"]
        out = self._start()
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = obj(choice.get("delta"))
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out += self._reasoning(reasoning)
            if isinstance(delta.get("content"), str) and delta["content"]:
                out += self._message_part("output_text", delta["content"])
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                out += self._message_part("refusal", delta["refusal"])
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out += self._call(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def _reasoning(self, text: str) -> bytes:
        out = b""
        current = self.open
        if current is None or current.item["type"] != "reasoning":
            out += self._close()
            current, added = self._open({"type": "reasoning", "id": item_id("rs"), "summary": []})
            out += added
            current.parts.append(("summary_text", []))
            out += self._event(
                "response.reasoning_summary_part.added",
                {**self._where(current), "summary_index": 0, "part": {"type": "summary_text", "text": ""}},
            )
        current.parts[0][1].append(text)
        return out + self._event(
            "response.reasoning_summary_text.delta", {**self._where(current), "summary_index": 0, "delta": text}
        )

    def _message_part(self, kind: str, text: str) -> bytes:
        out = b""
        current = self.open
        if current is None or current.item["type"] != "message":
            out += self._close()
            current, added = self._open(
                {"type": "message", "id": item_id("msg"), "status": "in_progress", "role": "assistant", "content": []}
            )
            out += added
        if not current.parts or current.parts[-1][0] != kind:
            current.parts.append((kind, []))
            out += self._event(
                "response.content_part.added",
                {**self._where(current), "content_index": len(current.parts) - 1, "part": _part(kind, "")},
            )
        current.parts[-1][1].append(text)
        where = {**self._where(current), "content_index": len(current.parts) - 1}
        if kind == "refusal":
            return out + self._event("response.refusal.delta", {**where, "delta": text})
        return out + self._event("response.output_text.delta", {**where, "delta": text, "logprobs": []})

    def _call(self, call: JSON) -> bytes:
        out = b""
        index = call.get("index", 0)
        function = obj(call.get("function"))
        current = self.calls.get(index)
        if current is None:
            out += self._close()
            item = {
                "type": "function_call",
                "id": item_id("fc"),
                "call_id": call.get("id") or item_id("call"),
                "name": function.get("name") or "",
                "arguments": "",
                "status": "in_progress",
            }
            current, added = self._open(item, call=index)
            out += added
            current.parts.append(("arguments", []))
            self.calls[index] = current
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            current.parts[0][1].append(arguments)
            out += self._event("response.function_call_arguments.delta", {**self._where(current), "delta": arguments})
        return out

    # --- items -------------------------------------------------------------------------------------------

    def _open(self, item: JSON, call: int | None = None) -> tuple[_Open, bytes]:
        """A new item, open, and its ``response.output_item.added`` event."""
        current = self.open = _Open(len(self.items), item, call=call)
        self.items.append(item)
        return current, self._event("response.output_item.added", {"output_index": current.index, "item": dict(item)})

    def _where(self, current: _Open) -> JSON:
        return {"item_id": current.item["id"], "output_index": current.index}

    def _close(self, status: str = "completed") -> bytes:
        """The done events of the open item, which becomes final in ``self.items``."""
        current, self.open = self.open, None
        if current is None:
            return b""
        item, where = current.item, self._where(current)
        out = b""
        texts = [(kind, "".join(pieces)) for kind, pieces in current.parts]
        if item["type"] == "message":
            for position, (kind, text) in enumerate(texts):
                at = {**where, "content_index": position}
                if kind == "refusal":
                    out += self._event("response.refusal.done", {**at, "refusal": text})
                else:
                    out += self._event("response.output_text.done", {**at, "text": text, "logprobs": []})
                out += self._event("response.content_part.done", {**at, "part": _part(kind, text)})
            item["content"] = [_part(kind, text) for kind, text in texts]
            item["status"] = status
        elif item["type"] == "function_call":
            arguments = texts[0][1]
            out += self._event(
                "response.function_call_arguments.done", {**where, "name": item["name"], "arguments": arguments}
            )
            item["arguments"] = arguments
            item["status"] = status
        else:
            text = texts[0][1]
            out += self._event("response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": text})
            part = {"type": "summary_text", "text": text}
            out += self._event("response.reasoning_summary_part.done", {**where, "summary_index": 0, "part": part})
            item["summary"] = [part]
        return out + self._event("response.output_item.done", {"output_index": current.index, "item": item})

    # --- the end -----------------------------------------------------------------------------------------

    async def done(self) -> bytes:
        out = self._start()
        incomplete = self.finish in ("length", "content_filter")
        out += self._close("incomplete" if incomplete else "completed")
        response = self.shape.finished(self.model, self.items, self.finish, self.usage)
        await self.exchange.keep(response)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return out + self._event(kind, {"response": response})

    async def failed(self, error: JSON) -> bytes:
        out = self._start()
        if self.open is not None:
            self.open.item["status"] = "incomplete"
            self.open = None
        response = self.shape.failed(self.model, self.items, error)
        self.exchange.ctx.response_id = response["id"]
        return out + self._event("response.failed", {"response": response})


def _part(kind: str, text: str) -> JSON:
    return {"type": "refusal", "refusal": text} if kind == "refusal" else output_text(text)
