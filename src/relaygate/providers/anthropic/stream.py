"""Anthropic's Messages stream as OpenAI ``chat.completion.chunk`` frames, event by event.

Events map as each network read arrives. Tool calls get their own index counter (Anthropic numbers
content blocks, OpenAI numbers tool calls); ``ping``, thinking, signature and citation events have no
OpenAI counterpart and are dropped; a mid-stream ``error`` event becomes the final
``data: {"error": ...}`` frame, without ``[DONE]``. A body that ends without ``message_stop`` is
complete if the finish reason had arrived, else it ends with an ``upstream_stream_incomplete`` error.
"""

from __future__ import annotations

from typing import Any

from relaygate.context import RequestContext
from relaygate.errors import UpstreamError, sse_error_frame
from relaygate.providers.anthropic.errors import stream_failure
from relaygate.providers.anthropic.mapping import finish_reason, openai_usage
from relaygate.providers.streaming import DONE_FRAME, ChunkMapper
from relaygate.sse import SSEEvent

__all__ = ["AnthropicStream"]

JSON = dict[str, Any]


class AnthropicStream(ChunkMapper):
    """One stream's state: Anthropic events in, OpenAI ``chat.completion.chunk`` frames out."""

    def __init__(self, provider: str, ctx: RequestContext, *, usage_chunk: bool, json_mode: bool) -> None:
        super().__init__(provider, ctx, usage_chunk=usage_chunk)
        self.json_mode = json_mode
        self.started = False
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}  # content block index -> OpenAI tool_calls index
        self.tool_has_arguments: set[int] = set()
        self.finished = False

    def error_in(self, payload: JSON, event: SSEEvent) -> UpstreamError | None:
        if _kind(payload, event) != "error":
            return None
        return stream_failure(self.provider, payload.get("error"))

    def on_event(self, payload: JSON, event: SSEEvent) -> tuple[bytes, bool]:
        kind = _kind(payload, event)
        if kind == "message_start":
            return self._message_start(payload.get("message")), False
        if kind == "content_block_start":
            return self._block_start(payload.get("index"), payload.get("content_block")), False
        if kind == "content_block_delta":
            return self._block_delta(payload.get("index"), payload.get("delta")), False
        if kind == "content_block_stop":
            return self._block_stop(payload.get("index")), False
        if kind == "message_delta":
            return self._message_delta(payload.get("delta"), payload.get("usage")), False
        if kind == "message_stop":
            return self._finish(), True
        # ping and event types added after this adapter carry nothing an OpenAI client could use
        return b"", False

    def end(self) -> bytes:
        """The end of a stream that closed without ``message_stop``."""
        if self.finished:
            return self._finish()  # the answer was complete; only the terminator went missing
        error = UpstreamError(
            f"Provider '{self.provider}' ended the stream before the message was complete.",
            code="upstream_stream_incomplete",
        )
        self.ctx.error = error.code
        return sse_error_frame(error)

    def has_usage(self) -> bool:
        return self.started

    def usage_so_far(self) -> JSON:
        return openai_usage(self.usage)

    def _message_start(self, message: Any) -> bytes:
        if not isinstance(message, dict):
            return b""
        self.started = True
        self.id = str(message.get("id") or self.id)
        self.model = str(message.get("model") or self.model)
        self._merge_usage(message.get("usage"))
        return self._emit({"role": "assistant", "content": ""})

    def _block_start(self, index: Any, block: Any) -> bytes:
        if not isinstance(block, dict):
            return b""
        if block.get("type") == "text" and block.get("text"):
            return self._emit({"content": block["text"]})
        if block.get("type") != "tool_use" or not isinstance(index, int):
            return b""
        position = self.tool_index[index] = len(self.tool_index)
        if self.json_mode:
            return b""
        function = {"name": block.get("name"), "arguments": ""}
        return self._emit(
            {"tool_calls": [{"index": position, "id": block.get("id"), "type": "function", "function": function}]}
        )

    def _block_delta(self, index: Any, delta: Any) -> bytes:
        if not isinstance(delta, dict):
            return b""
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return self._emit({"content": delta["text"]})
        if kind == "input_json_delta" and self._is_tool(index) and delta.get("partial_json"):
            self.tool_has_arguments.add(index)
            return self._arguments(index, str(delta["partial_json"]))
        return b""  # thinking, signatures and citations have no OpenAI field

    def _block_stop(self, index: Any) -> bytes:
        if self._is_tool(index) and index not in self.tool_has_arguments:
            self.tool_has_arguments.add(index)
            return self._arguments(index, "{}")  # a tool without parameters still gets parseable arguments
        return b""

    def _is_tool(self, index: Any) -> bool:
        return isinstance(index, int) and index in self.tool_index

    def _arguments(self, index: int, arguments: str) -> bytes:
        if self.json_mode:
            return self._emit({"content": arguments})
        return self._emit({"tool_calls": [{"index": self.tool_index[index], "function": {"arguments": arguments}}]})

    def _message_delta(self, delta: Any, usage: Any) -> bytes:
        self._merge_usage(usage)
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if stop_reason is None or self.finished:
            return b""
        self.finished = True
        return self._emit({}, finish_reason(stop_reason, self.json_mode))

    def _finish(self) -> bytes:
        out = b"" if self.finished else self._emit({}, "stop")
        self.finished = True
        return out + self.usage_frame() + DONE_FRAME

    def _merge_usage(self, usage: Any) -> None:
        # message_delta repeats the counts cumulatively (output_tokens is the final total): latest wins.
        if isinstance(usage, dict):
            self.usage.update((key, value) for key, value in usage.items() if value is not None)

    def _emit(self, delta: JSON, finish: str | None = None) -> bytes:
        return self.emit([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])


def _kind(payload: JSON, event: SSEEvent) -> Any:
    """The event's type: the payload says it, and so does the SSE event name."""
    return payload.get("type") or (event.event.decode(errors="replace") if event.event else None)
