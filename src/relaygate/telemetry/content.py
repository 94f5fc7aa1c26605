"""Prompts and answers in the shape the GenAI conventions give ``gen_ai.input.messages`` and
``gen_ai.output.messages`` (a JSON string on spans: Python span attributes cannot hold structures).

Only built when content capture is switched on. Whatever shape a message has (the adapters accept a bare
string for ``image_url``, and callers send odder things), capture never fails: what it cannot read is left
out. Each captured attribute is capped (:func:`capped`): a collector refuses an export of many megabytes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["TRUNCATED_MARK", "capped", "input_messages", "output_message"]

TRUNCATED_MARK = "…[truncated {} bytes]"


def capped(value: str, limit: int) -> tuple[str, bool]:
    """``value`` cut to at most ``limit`` bytes of UTF-8 (a character is never split), marked with how many
    bytes were cut; and whether it was cut. ``limit`` 0 means no cap."""
    encoded = value.encode("utf-8", "surrogatepass")
    if limit <= 0 or len(encoded) <= limit:
        return value, False
    mark = TRUNCATED_MARK.format(len(encoded))
    keep = max(limit - len(mark.encode()), 0)
    return encoded[:keep].decode("utf-8", "ignore") + mark, True


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _image_uri(image: Any) -> str:
    url = image.get("url") if isinstance(image, dict) else image
    url = _text(url)
    # Inline images are data, not a message: keep that one was there, not its bytes.
    return "data:…" if url.startswith("data:") else url


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            parts.append({"type": "text", "content": _text(part.get("text"))})
        elif part.get("type") == "image_url":
            parts.append({"type": "uri", "modality": "image", "uri": _image_uri(part.get("image_url"))})
    return parts


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        arguments = function.get("arguments")
        out.append(
            {
                "type": "tool_call",
                "id": _text(call.get("id")) or None,
                "name": _text(function.get("name")) or None,
                "arguments": arguments if isinstance(arguments, str | dict) else None,
            }
        )
    return out


def input_messages(messages: Any) -> tuple[str, str | None]:
    """(``gen_ai.input.messages``, ``gen_ai.system_instructions`` or None) as JSON strings."""
    conversation: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        role = role if isinstance(role, str) else None
        if role in ("system", "developer"):
            system += _parts(message.get("content"))
        elif role == "tool":
            call_id = _text(message.get("tool_call_id")) or None
            response = {"type": "tool_call_response", "id": call_id, "response": message.get("content")}
            conversation.append({"role": "tool", "parts": [response]})
        else:
            parts = _parts(message.get("content")) + _tool_calls(message.get("tool_calls"))
            conversation.append({"role": role, "parts": parts})
    return _dumps(conversation), _dumps(system) if system else None


def output_message(text: str, tool_calls: list[dict[str, Any]], finish_reason: str | None) -> str:
    parts: list[dict[str, Any]] = [{"type": "text", "content": text}] if text else []
    parts += _tool_calls(tool_calls)
    return _dumps([{"role": "assistant", "parts": parts, "finish_reason": finish_reason or ""}])


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, which JSON allows: the standard library writes it
        return json.dumps(value, ensure_ascii=False, default=str)
