"""One model call of a streamed tool loop: which of its frames reach the client, and which tools it called.

Text streams to the client as the model writes it, whichever call of the loop it comes from. What only the
end of a call tells apart, a step of the loop from the final answer, is held back until the call's stream
ends: its finish chunk, its usage chunk and ``[DONE]``. The deltas of calls to MCP tools never reach the
client; those of the caller's own tools do (they are the caller's to run).
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.sse import DONE, frame

__all__ = ["StreamStep", "progress_comment"]

DATA = b"data: "


class StreamStep:
    """The frames of one model call's stream, filtered (see the module docstring)."""

    def __init__(self, mcp_names: set[str] | dict[str, Any], *, first: bool) -> None:
        self.mcp_names = mcp_names
        self.first = first
        # Tool calls by their index in the stream: id, name, arguments; and whether each is an MCP tool's.
        self.calls: dict[int, dict[str, str]] = {}
        self.mcp: dict[int, bool] = {}
        # The caller's own calls, renumbered from 0 in the order they came (the MCP calls between are left out).
        self.own_index: dict[int, int] = {}
        self.held: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.done = False
        self.failed = False

    def feed(self, data: bytes) -> bytes:
        """The frames to send now of what the adapter gave (one or more SSE events)."""
        out = b""
        for line in data.split(b"\n"):
            if not line.startswith(DATA):
                continue
            payload = line[len(DATA) :]
            if payload == DONE:
                self.done = True
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                self.failed = True
                out += frame(payload)
                continue
            out += self._chunk(chunk)
        return out

    def _chunk(self, chunk: dict[str, Any]) -> bytes:
        choices = chunk.get("choices")
        if not choices:
            if chunk.get("usage"):
                self.usage = chunk
            return b""
        kept = []
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            assert isinstance(delta, dict)
            calls = [self._tool_delta(call) for call in delta.get("tool_calls") or () if isinstance(call, dict)]
            own = [call for call in calls if call is not None]
            delta = {key: value for key, value in delta.items() if key != "tool_calls"}
            if own:
                delta["tool_calls"] = own
            if choice.get("finish_reason"):
                self.held.append({**chunk, "choices": [{**choice, "delta": delta}]})
                continue
            if not self.first and set(delta) <= {"role", "content"} and not delta.get("content"):
                continue  # a later call's opening role delta: the client has had one
            if delta:
                kept.append({**choice, "delta": delta})
        if not kept:
            return b""
        return frame(orjson.dumps({**chunk, "choices": kept}))

    def _tool_delta(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """Note a tool call's delta; the delta to send on, or ``None`` for an MCP tool's."""
        index = call.get("index", 0)
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        assert isinstance(function, dict)
        known = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if call.get("id"):
            known["id"] = call["id"]
        if function.get("name"):
            known["name"] += function["name"]
            self.mcp[index] = known["name"] in self.mcp_names
        if isinstance(function.get("arguments"), str):
            known["arguments"] += function["arguments"]
        if self.mcp.get(index, False):
            return None
        renumbered = self.own_index.setdefault(index, len(self.own_index))
        return call if renumbered == index else {**call, "index": renumbered}

    @property
    def mcp_calls(self) -> list[dict[str, str]]:
        return [call for index, call in sorted(self.calls.items()) if self.mcp.get(index)]

    @property
    def own_calls(self) -> bool:
        return any(not self.mcp.get(index, False) for index in self.calls)

    def finish(self, *, usage: dict[str, Any] | None, usage_chunk: bool) -> bytes:
        """The held frames of the final call: its finish chunk, its usage chunk (with the loop's ``usage``)
        when the client asked for one, ``[DONE]``."""
        out = b"".join(frame(orjson.dumps(chunk)) for chunk in self.held)
        if usage_chunk and self.usage is not None:
            out += frame(orjson.dumps({**self.usage, "usage": usage or self.usage.get("usage")}))
        return out + frame(DONE)


def progress_comment(text: str) -> bytes:
    """An SSE comment: clients (the OpenAI SDKs among them) skip it, a person watching the stream reads it."""
    return b": relaygate: " + text.replace("\n", " ").encode() + b"\n\n"
