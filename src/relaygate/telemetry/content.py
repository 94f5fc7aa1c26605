"""Prompts and answers in the shape the GenAI conventions give ``gen_ai.input.messages`` and
``gen_ai.output.messages`` (a JSON string on spans: Python span attributes cannot hold structures).

Only built when content capture is switched on.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["input_messages", "output_message"]


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            parts.append({"type": "text", "content": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            # Inline images are data, not a message: keep that one was there, not its bytes.
            parts.append({"type": "uri", "modality": "image", "uri": url if not url.startswith("data:") else "data:…"})
    return parts


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") or {} if isinstance(call, dict) else {}
        out.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments"),
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
        if role in ("system", "developer"):
            system += _parts(message.get("content"))
        elif role == "tool":
            conversation.append(
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": message.get("tool_call_id"),
                                            "response": message.get("content")}]}
            )  # fmt: skip
        else:
            parts = _parts(message.get("content")) + _tool_calls(message.get("tool_calls"))
            conversation.append({"role": role, "parts": parts})
    return orjson.dumps(conversation).decode(), orjson.dumps(system).decode() if system else None


def output_message(text: str, tool_calls: list[dict[str, Any]], finish_reason: str | None) -> str:
    parts: list[dict[str, Any]] = [{"type": "text", "content": text}] if text else []
    parts += _tool_calls(tool_calls)
    return orjson.dumps([{"role": "assistant", "parts": parts, "finish_reason": finish_reason or ""}]).decode()
