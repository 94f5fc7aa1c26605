"""The assistant's answer of a chat call, put together from a whole response or from stream chunks.

The ledger stores it as the thread's next message, and tracing records it when content capture is on;
both get it from :class:`AnswerCollector`, fed by the context's observer calls, so the answer is built
once from chunks the proxy already parsed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnswerCollector"]


class AnswerCollector:
    """The first choice's text and tool calls, from ``on_response`` or successive ``on_chunk`` calls."""

    __slots__ = ("_text", "_tool_calls", "refusal")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self.refusal: str | None = None

    def add_response(self, body: dict[str, Any]) -> None:
        choices = body.get("choices") or []
        message = (choices[0].get("message") or {}) if choices and isinstance(choices[0], dict) else {}
        if isinstance(message.get("content"), str):
            self._text.append(message["content"])
        if isinstance(message.get("refusal"), str):
            self.refusal = message["refusal"]
        for index, call in enumerate(message.get("tool_calls") or ()):
            self._tool_calls[index] = call

    def add_chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self._text.append(delta["content"])
            if isinstance(delta.get("refusal"), str):
                self.refusal = (self.refusal or "") + delta["refusal"]
            for call in delta.get("tool_calls") or ():
                held = self._tool_calls.setdefault(
                    call.get("index", 0), {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
                )
                held["id"] = call.get("id") or held["id"]
                function = call.get("function") or {}
                held["function"]["name"] = function.get("name") or held["function"]["name"]
                held["function"]["arguments"] += function.get("arguments") or ""

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [self._tool_calls[index] for index in sorted(self._tool_calls)]

    @property
    def empty(self) -> bool:
        return not self._text and not self._tool_calls and self.refusal is None
